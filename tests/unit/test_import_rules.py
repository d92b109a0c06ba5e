"""The library's import rule, read from the source (nothing is imported): nothing under `pbt/`
imports the servers (`services`) or the pod code (`training`), not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "pbt"
FORBIDDEN = ("services", "training")


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module an ``import``/``from ... import`` names, anywhere in the tree."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def forbidden_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for line, module in imported_modules(tree)
        if module.split(".")[0] in FORBIDDEN
    ]


def test_the_library_imports_neither_services_nor_training():
    sources = sorted(LIBRARY.rglob("*.py"))
    assert len(sources) > 50, "the scan found too few files: is LIBRARY right?"
    problems = [p for path in sources for p in forbidden_imports(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import services.common",
        "from training.main import main",
        "def f():\n    from services.common import open_channel\n",
        "class C:\n    def m(self):\n        import training.args as a\n",
    ],
)
def test_the_rule_sees_every_form_of_import(source):
    assert [m for _, m in imported_modules(ast.parse(source)) if m.split(".")[0] in FORBIDDEN], source


def test_relative_and_lookalike_imports_are_allowed():
    tree = ast.parse("from . import training\nimport servicesx\nfrom pbt.jobs import training\n")
    assert [m for _, m in imported_modules(tree) if m.split(".")[0] in FORBIDDEN] == []
