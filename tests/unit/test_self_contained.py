"""The repository is self-contained: no code, test, bench or doc points at a path outside it.

A clone with nothing beside it must pass the tests and run the demo, the benches and the docs'
examples. What they need from elsewhere is vendored (examples/data, k8s/crds); this test fails on
any reference to the ``shared`` folder that once sat beside the checkout (a relative path up into
it, a path into its ``data``/``crds``, a Python path built from a parent and "shared") or to the
development machine's absolute paths (``/work/...``). The examples below spell that folder's name
through ``S`` so that a plain grep of the code for those paths does not find this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
S = "shared"
SCANNED_DIRS = ("pbt", "services", "training", "tests", "bench", "docs", "protos", "charts", "k8s")
SCANNED_FILES = ("Makefile", "README.md", "pyproject.toml", ".ci/run")
SKIPPED = (
    "k8s/crds",  # upstream CRDs, vendored unchanged
    "examples/data",  # dataset excerpts, vendored verbatim
    "tests/unit/test_self_contained.py",  # this file spells the patterns out
)
SKIPPED_PARTS = {"__pycache__", ".venv", ".tools", ".git", ".pytest_cache", ".ruff_cache"}

OUTSIDE = {
    "the folder beside the checkout": re.compile(r"\.\.[/\\]shared\b"),
    "a path into the shared folder": re.compile(r"(?<![\w.-])shared/(?:data|crds|hooks)\b"),
    "a method or design note of the shared folder": re.compile(
        r"(?<![\w.-])shared/(?:PBT-METHOD|DESIGN|STYLE|WORLD-NOTES|README)\.md"
    ),
    "a Python path built into the shared folder": re.compile(
        r"""(?:/|joinpath\(|["']\.\.["']\s*,)\s*["']shared["']"""
    ),
    "the development machine's absolute path": re.compile(r"(?<![\w.~-])/work/"),
}


def outside_references(text: str) -> list[str]:
    """`line: what (the match)` for each reference in `text` to a path outside the repository."""
    return [
        f"{n}: {what} ({m.group(0)!r})"
        for n, line in enumerate(text.splitlines(), 1)
        for what, pattern in OUTSIDE.items()
        for m in pattern.finditer(line)
    ]


def scanned_files() -> list[Path]:
    paths = [ROOT / f for f in SCANNED_FILES if (ROOT / f).is_file()]
    paths += [p for p in (ROOT / "examples").iterdir() if p.is_file()]
    for folder in SCANNED_DIRS:
        paths += [p for p in (ROOT / folder).rglob("*") if p.is_file()]
    rel = {p: p.relative_to(ROOT).as_posix() for p in paths}
    return sorted(
        p
        for p in paths
        if not SKIPPED_PARTS & set(p.relative_to(ROOT).parts)
        and not any(rel[p] == s or rel[p].startswith(s + "/") for s in SKIPPED)
    )


def test_scans_the_code_and_the_docs():
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    for expected in ("Makefile", "tests/conftest.py", "bench/evaluator.py", "docs/training.md"):
        assert expected in names
    assert not any(n.startswith(("k8s/crds/", "examples/data/")) for n in names)


def test_nothing_points_outside_the_repository():
    problems = []
    for path in scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        problems += [f"{path.relative_to(ROOT)}:{p}" for p in outside_references(text)]
    assert not problems, "paths outside the repository (vendor what is needed):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        f"see ../{S}/crds for the schemas",
        f"--validate-crd ../{S}/crds/kubeflow.org_pytorchjobs.yaml",
        f'SHARED = ROOT.parent / "{S}"',
        f"NQ = Path(__file__).resolve().parent.parent.parent / '{S}' / 'data'",
        f'ROOT.parents[1].joinpath("{S}")',
        f'os.path.join(ROOT, "..", "{S}", "data")',
        f"path: {S}/data/farm/NQ1.jsonl",
        f"(`{S}/PBT-METHOD.md` §6)",
        "open('/work/main/examples/data/farm/NQ1.jsonl')",
        "cd /work/wt-data && make test",
    ],
)
def test_flags_paths_outside(text):
    assert outside_references(text), text


@pytest.mark.parametrize(
    "text",
    [
        '"""Fixtures shared by every test folder."""',
        '{"endpoint": "shared", "max_in_flight": 3}',
        "storageUri: s3://shared-models/extractors/qwen2.5-0.5b-instruct",
        "the shared 2-core machine; shared messages in common.proto",
        "path: /data/NQ-open.dev.jsonl",
        "mountPath: /workspace/cache",
        "examples/data/nq_open/NQ-open.dev.jsonl and k8s/crds/kubeflow.org_pytorchjobs.yaml",
    ],
)
def test_leaves_ordinary_words_and_in_repo_paths_alone(text):
    assert outside_references(text) == []


def outside_links(root: Path) -> list[str]:
    """Symbolic links git tracks under ``root`` whose target is absolute or leaves the tree."""
    import subprocess

    listing = subprocess.run(
        ["git", "ls-files", "-s"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    problems = []
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        if meta.split()[0] != "120000":  # git's mode for a symbolic link
            continue
        target = (root / path).readlink() if (root / path).is_symlink() else None
        if target is None:
            continue
        if target.is_absolute() or not (root / path).parent.joinpath(target).resolve().is_relative_to(root):
            problems.append(f"{path} -> {target}")
    return problems


def test_no_tracked_link_leads_outside_the_repository():
    """A clone holds no link to the development machine's folders (a `.pbt` link to a worktree's
    cache was once committed: every clone's tests then read and wrote that machine's cache)."""
    assert not outside_links(ROOT), outside_links(ROOT)


def test_flags_a_committed_link_to_outside(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "inside.txt").write_text("x")
    (repo / "ok").symlink_to("inside.txt")
    (repo / ".pbt").symlink_to(tmp_path)
    (repo / "up").symlink_to("../elsewhere")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    assert sorted(outside_links(repo)) == [f".pbt -> {tmp_path}", "up -> ../elsewhere"]
