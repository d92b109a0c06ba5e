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


PACKAGES = ("pbt", "pbt_world", "services", "training")


def module_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file, TYPE_CHECKING included);
    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``."""
    files = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            if "v1" in path.relative_to(root).parts:  # generated protobuf code
                continue
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_the_projects_modules():
    graph = module_graph(ROOT, PACKAGES)
    assert len(graph) > 100, "the scan found too few modules"
    assert cycles(graph) == []


def test_the_cycle_check_sees_cycles_through_packages_and_lazy_imports(tmp_path):
    (tmp_path / "p" / "sub").mkdir(parents=True)
    (tmp_path / "p" / "__init__.py").write_text("from p import a\n")
    (tmp_path / "p" / "a.py").write_text("def f():\n    from p.sub import b\n")
    (tmp_path / "p" / "sub" / "__init__.py").write_text("")
    (tmp_path / "p" / "sub" / "b.py").write_text("from ..a import f\n")
    (tmp_path / "p" / "c.py").write_text("import p.a\n")
    assert cycles(module_graph(tmp_path, ("p",))) == [["p.a", "p.sub.b"]]


def test_no_import_cycle_between_the_projects_packages():
    """The same at the level of packages (``pbt.backends``, ``pbt.extract``, ``pbt_world.demo``, ...):
    a module of one package importing another package's module counts as the package doing so."""
    modules = module_graph(ROOT, PACKAGES)

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {package(m): set() for m in modules}
    for module, imports in modules.items():
        graph[package(module)] |= {package(t) for t in imports} - {package(module)}
    assert cycles(graph) == []
