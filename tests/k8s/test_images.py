"""docker/Dockerfile: every path and command it refers to exists in the repository.

The Dockerfile is parsed (`make images-check` builds and runs the images where a builder runs):
COPY sources exist in the build context (the repository root) and pass its .dockerignore, base
images are pinned, each image's target runs as a non-root user, the entry point is the `pbt`
console script and the default command resolves to a real `pbt` subcommand with options it
accepts; `make images` (docker/images.py) builds every target under the chart's repositories.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from k8s_checks import CHART, ROOT, resolve_cli

pytestmark = pytest.mark.k8s

DOCKERFILE = ROOT / "docker" / "Dockerfile"
# image target -> the chart's default port of the service it builds (None: no server).
EXPECTED = {"orchestrator": 50051, "evaluator": 50052, "agent": 8080, "training": None, "training-gpu": None}
# image target -> where charts/pbt/values.yaml names its repository
CHART_REPOSITORY = {
    "orchestrator": ("orchestrator", "image"),
    "evaluator": ("evaluator", "image"),
    "agent": ("agents", "pbt", "image"),
    "training": ("training", "image"),
    "training-gpu": ("training", "image"),
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


def images_module():
    sys.path.insert(0, str(ROOT / "docker"))
    try:
        import images
    finally:
        sys.path.remove(str(ROOT / "docker"))
    return images


def chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage named `name` and the stages it starts FROM, base first."""
    by_name = {s.name: s for s in stages if s.name}
    out = [by_name[name]]
    while out[0].image in by_name:
        out.insert(0, by_name[out[0].image])
    return out


def test_one_dockerfile_builds_every_image():
    legacy = [p for pattern in ("services/*/Dockerfile*", "training/Dockerfile*") for p in ROOT.glob(pattern)]
    assert not legacy, f"one docker/Dockerfile builds every image; remove {legacy}"
    stages = parse(DOCKERFILE)
    assert set(EXPECTED) <= {s.name for s in stages}
    images = images_module()
    assert {i.name for i in images.IMAGES} == set(EXPECTED)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for image in images.IMAGES:
        node = values
        for key in CHART_REPOSITORY[image.name]:
            node = node[key]
        assert image.repository == node["repository"], f"{image.name}: chart repository {node['repository']}"
    assert images.BY_NAME["training-gpu"].suffix == "-cuda"
    makefile = (ROOT / "Makefile").read_text()
    assert "docker/images.py build" in makefile and "docker/images.py check" in makefile


def test_dockerfile_references_exist():
    stages = parse(DOCKERFILE)
    names = {s.name for s in stages if s.name}
    rules = ignore_rules(DOCKERFILE)
    copied: dict[str | None, set[str]] = {}
    for stage in stages:
        if stage.image in names:
            copied[stage.name] = set(copied.get(stage.image, set()))
            continue
        tag = stage.image.rsplit("/", 1)[-1].partition(":")[2]
        assert "@sha256:" in stage.image or (tag and tag != "latest"), f"{stage.name}: unpinned {stage.image}"
        copied[stage.name] = set()
    for stage in stages:
        for op, rest in stage.instructions:
            if op in ("COPY", "ADD"):
                words = shlex.split(rest)
                flags = [w for w in words if w.startswith("--")]
                paths = [w for w in words if not w.startswith("--")]
                sources, dest = paths[:-1], paths[-1]
                source_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
                if source_stage:
                    assert source_stage in names, f"{stage.name}: COPY --from={source_stage}: no such stage"
                    continue
                for src in sources:
                    target = ROOT / src
                    assert target.exists(), f"{stage.name}: COPY {src}: not in the repository"
                    assert not excluded(rules, src.rstrip("/")), f"{stage.name}: COPY {src} is .dockerignored"
                    copied[stage.name].add(Path(src).name if dest in ("./", ".") else src)
            if op == "RUN":
                copied[stage.name].update(re.findall(r">\s*(\S+)", rest))
                inherited = set().union(*(copied[s.name] for s in chain(stages, stage.name)))
                for constraint in re.findall(r"pip install[^&;]*?\s-c\s+(\S+)", rest):
                    assert constraint in inherited, (
                        f"{stage.name}: RUN uses {constraint}, never copied or made"
                    )
                for script in re.findall(r"python3 (\S+\.py)", rest):
                    assert script in inherited, f"{stage.name}: RUN runs {script}, never copied"


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_each_image_runs_pbt_as_a_non_root_user(target: str):
    stages = parse(DOCKERFILE)
    final = [ins for stage in chain(stages, target) for ins in stage.instructions]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    users = [rest for op, rest in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), f"{target}: runs as root"
    entry = [exec_form(rest) for op, rest in final if op == "ENTRYPOINT"]
    assert entry and entry[-1] == ["pbt"], f"{target}: entry point must be pbt, got {entry}"
    assert "pbt" in scripts, "pyproject defines no `pbt` console script"
    cmd = [exec_form(rest) for op, rest in final if op == "CMD"][-1]
    command, rest = resolve_cli(cmd)
    assert "not available in this build" not in (command.help or ""), (
        f"{target}: `pbt {' '.join(cmd)}` is registered but its module is missing"
    )
    known = {opt for p in command.params for opt in getattr(p, "opts", [])} | {"--help", "-h"}
    unknown = [a for a in rest if a.startswith("-") and a not in known]
    assert not unknown, f"{target}: CMD passes options `pbt {' '.join(cmd)}` does not accept: {unknown}"
    port = EXPECTED[target]
    exposed = [int(rest) for op, rest in final if op == "EXPOSE"]
    if port is not None:
        assert exposed == [port] and str(port) in cmd, f"{target}: serves {exposed}, chart expects {port}"
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        if target != "agent":
            assert values[target]["port"] == port
    else:
        assert not exposed, f"{target}: exposes {exposed} but serves nothing"


def test_copied_packages_are_importable_packages():
    for pkg in ("pbt", "services", "training"):
        assert (ROOT / pkg / "__init__.py").exists(), f"{pkg}/ is not a package"
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pkg in ("pbt", "services", "training"):
        assert any(fnmatch.fnmatch(pkg, pattern) for pattern in include["include"]), f"{pkg} is not installed"


def test_the_selftest_breakages_still_apply():
    """`make images-selftest` breaks docker/Dockerfile by text replacement; each text must be there."""
    text = DOCKERFILE.read_text()
    for name, (good, bad, words) in images_module().BREAKAGES.items():
        assert good in text and bad not in text, f"selftest {name!r}: {good!r} is not in docker/Dockerfile"
        assert "orchestrator" in words, name


def run_requirements(*args: str) -> subprocess.CompletedProcess:
    """docker/requirements.py as the deps stage runs it (in a folder holding pyproject.toml)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "docker" / "requirements.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_one_deps_stage_installs_each_images_group():
    stages = {s.name: s for s in parse(DOCKERFILE)}
    assert not [n for n in stages if n and n.startswith("deps-") and n != "deps-cuda"], "one deps stage"
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for image in images_module().IMAGES:
        assert image.group in groups, f"{image.name}: no dependency group {image.group}"
        final = chain(list(stages.values()), image.name)[-1]
        source = next(shlex.split(r)[0].split("=")[1] for op, r in final.instructions if op == "COPY")
        assert source == ("deps-cuda" if image.name == "training-gpu" else "deps"), image.name
        out = run_requirements(image.group)
        assert out.returncode == 0, out.stderr
        assert set(out.stdout.split()) == set(
            tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
            + groups[image.group]
        )
        unused = run_requirements("--unused", image.group).stdout.split()
        carried = {"training"} if image.group == "training" else {"services"}
        assert set(unused) == {"services", "training"} - carried, image.name
        check = run_requirements("--check", image.group).stdout.split()
        command, rest = resolve_cli(check)
        assert rest == ["--help"] and command.name == ("train" if image.group == "training" else image.group)


@pytest.mark.parametrize("args", [[], [""], ["dev"], ["--unused", "nope"], ["--bogus", "agent"]])
def test_a_missing_or_wrong_group_fails_the_build_naming_it(args):
    out = run_requirements(*args)
    assert out.returncode != 0 and not out.stdout
    assert "GROUP" in out.stderr, out.stderr


def test_the_pipeline_step_image_alone_carries_git_and_its_home_is_writable():
    """The push step runs git in PipelineSpec.images.steps, with HOME on the step's /tmp emptyDir."""
    from pbt.pipeline.spec import PipelineSpec
    from pbt.pipeline.workflow import render_workflow_template

    stages = parse(DOCKERFILE)
    spec = PipelineSpec.model_validate(
        {
            **yaml.safe_load((ROOT / "examples/pipeline/tiny.yaml").read_text()),
            "promotion": {
                "values_file": "v.yaml",
                "git_secret": "pbt-git",
                "git_remote": "file:///tmp/r.git",
            },
        }  # fmt: skip
    )
    repository = spec.images.steps.rsplit("/", 1)[-1].partition(":")[0]
    steps_image = next(i.name for i in images_module().IMAGES if i.repository == repository)
    for image in images_module().IMAGES:
        runs = [r for s in chain(stages, image.name) for op, r in s.instructions if op == "RUN"]
        installs_git = any("apt-get install" in r and "git" in r.split() for r in runs)
        assert installs_git == (image.name == steps_image), f"{image.name}: git installed: {installs_git}"
    push = next(t for t in render_workflow_template(spec)["spec"]["templates"] if t["name"] == "push")
    env = {e["name"]: e.get("value") for e in push["container"]["env"]}
    mounts = {m["mountPath"]: m for m in push["container"]["volumeMounts"]}
    assert env["HOME"] in mounts and not mounts[env["HOME"]].get("readOnly"), (env["HOME"], mounts)
