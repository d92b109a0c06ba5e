"""The demo world imports the product; nothing in the product imports the world."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("pbt", "services", "training")
WORLD = "pbt_world"


def _is_world(module: str | None) -> bool:
    return module is not None and (module == WORLD or module.startswith(f"{WORLD}."))


def world_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of the world in `source`: import statements and
    ``importlib.import_module`` / ``__import__`` of a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_world(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_world(node.module):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            arg = node.args[0].value
            if name in ("import_module", "__import__") and isinstance(arg, str) and _is_world(arg):
                found.append((node.lineno, arg))
    return found


def test_the_product_never_imports_the_world():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for top in PRODUCT
        for path in sorted((ROOT / top).rglob("*.py"))
        for line, module in world_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "the product imports the demo world:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        "import pbt_world",
        "import pbt_world.demo.pipeline as p",
        "from pbt_world.corpus import build_corpus",
        "def f():\n    from pbt_world import text",
        "import importlib\nimportlib.import_module('pbt_world.cli.demo')",
    ],
)
def test_the_check_sees_every_form_of_import(source):
    assert world_imports(source)


def test_the_check_ignores_look_alikes():
    assert not world_imports("import pbt.world_model\nfrom pbt import world\nx = 'pbt_world'")
