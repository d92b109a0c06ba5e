"""Dockerfiles: every path and command they refer to exists in the repository.

No Docker engine runs here, so the Dockerfiles are parsed: COPY sources exist in the build
context (the repository root) and pass the Dockerfile's .dockerignore, base images are pinned,
the final stage runs as a non-root user, the entry point is the `pbt` console script and the
default command resolves to a real `pbt` subcommand with options it accepts.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from k8s_checks import CHART, ROOT, resolve_cli

pytestmark = pytest.mark.k8s

DOCKERFILES = sorted(
    p
    for pattern in ("services/*/Dockerfile*", "training/Dockerfile*")
    for p in ROOT.glob(pattern)
    if not p.name.endswith(".dockerignore")
)
# Dockerfile -> the chart's default port of the service it builds (None: no server).
EXPECTED = {
    "services/agent/Dockerfile": 8080,
    "services/orchestrator/Dockerfile": 50051,
    "services/evaluator/Dockerfile": 50052,
    "training/Dockerfile": None,
    "training/Dockerfile.gpu": None,
}


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> list[Stage]:
    """Stages of a Dockerfile with ARG defaults substituted into FROM."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif op == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], words[0])
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        else:
            assert stages, f"{path}: {op} before FROM"
            stages[-1].instructions.append((op, rest))
    return stages


def exec_form(rest: str) -> list[str]:
    assert rest.startswith("["), f"use the exec (JSON) form: {rest}"
    return json.loads(rest)


def ignore_rules(dockerfile: Path) -> list[tuple[bool, str]]:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not ignore.exists():
        ignore = ROOT / ".dockerignore"
    if not ignore.exists():
        return []
    rules = []
    for line in ignore.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((not line.startswith("!"), line.lstrip("!").rstrip("/")))
    return rules


def excluded(rules: list[tuple[bool, str]], rel: str) -> bool:
    """Docker's rule: the last matching pattern decides (a `!` pattern re-includes)."""
    out = False
    for exclude, pattern in rules:
        if fnmatch.fnmatch(rel, pattern) or pattern == "**":
            out = exclude
    return out


def test_the_expected_dockerfiles_exist():
    assert {p.relative_to(ROOT).as_posix() for p in DOCKERFILES} == set(EXPECTED)


def test_make_images_builds_every_dockerfile():
    makefile = (ROOT / "Makefile").read_text()
    built = set(re.findall(r"docker build -f (\S+)", makefile))
    assert built == set(EXPECTED), built


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_dockerfile_references_exist(path: Path):
    rel_name = path.relative_to(ROOT).as_posix()
    stages = parse(path)
    names = {s.name for s in stages if s.name}
    rules = ignore_rules(path)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for stage in stages:
        tag = stage.image.rsplit("/", 1)[-1].partition(":")[2]
        assert "@sha256:" in stage.image or (tag and tag != "latest"), f"{rel_name}: unpinned {stage.image}"
        copied: set[str] = set()
        for op, rest in stage.instructions:
            if op in ("COPY", "ADD"):
                words = shlex.split(rest)
                flags = [w for w in words if w.startswith("--")]
                paths = [w for w in words if not w.startswith("--")]
                sources, dest = paths[:-1], paths[-1]
                source_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
                if source_stage:
                    assert source_stage in names, f"{rel_name}: COPY --from={source_stage}: no such stage"
                    continue
                for src in sources:
                    target = ROOT / src
                    assert target.exists(), f"{rel_name}: COPY {src}: not in the repository"
                    assert not excluded(rules, src.rstrip("/")), f"{rel_name}: COPY {src} is .dockerignored"
                    copied.add(Path(src).name if dest.endswith("/") and dest in ("./", ".") else src)
            if op == "RUN":
                for constraint in re.findall(r"(?:^|\s)-c\s+(\S+)", rest):
                    made_here = f"> {constraint}" in rest
                    assert constraint in copied or made_here, (
                        f"{rel_name}: RUN uses {constraint}, never copied"
                    )
    final = stages[-1].instructions
    users = [rest for op, rest in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), f"{rel_name}: final stage runs as root"
    entry = [exec_form(rest) for op, rest in final if op == "ENTRYPOINT"]
    assert entry and entry[-1] == ["pbt"], f"{rel_name}: entry point must be pbt, got {entry}"
    assert "pbt" in scripts, "pyproject defines no `pbt` console script"
    cmd = [exec_form(rest) for op, rest in final if op == "CMD"][-1]
    command, rest = resolve_cli(cmd)
    assert "not available in this build" not in (command.help or ""), (
        f"{rel_name}: `pbt {' '.join(cmd)}` is registered but its module is missing"
    )
    known = {opt for p in command.params for opt in getattr(p, "opts", [])} | {"--help", "-h"}
    unknown = [a for a in rest if a.startswith("-") and a not in known]
    assert not unknown, f"{rel_name}: CMD passes options `pbt {' '.join(cmd)}` does not accept: {unknown}"
    port = EXPECTED[rel_name]
    exposed = [int(rest) for op, rest in final if op == "EXPOSE"]
    if port is not None:
        assert exposed == [port] and str(port) in cmd, f"{rel_name}: serves {exposed}, chart expects {port}"
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        service = path.parent.name
        if service != "agent":
            assert values[service]["port"] == port


def test_copied_packages_are_importable_packages():
    for pkg in ("pbt", "services", "training"):
        assert (ROOT / pkg / "__init__.py").exists(), f"{pkg}/ is not a package"
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {"pbt*", "services*", "training*"} <= set(include["include"])
