"""Build the project's images (`make images`) and run each the way the chart does (`make images-check`).

    python3 docker/images.py tool                  print the builder found here (docker, buildah) or nothing
    python3 docker/images.py build [NAME ...]      build the images (all CPU ones by default)
    python3 docker/images.py check [NAME ...]      build, then smoke-run each (docker/smoke.py)
    python3 docker/images.py check training-gpu    the CUDA image, only when named (CUDA_TORCH_INDEX)
    python3 docker/images.py selftest              three broken copies of the Dockerfile must fail

Docker when an engine answers, else buildah (`bud --isolation chroot --network host --layers`): the
same docker/Dockerfile, the same targets and tags, each with its dependency group as the build
argument GROUP. Without a registry (PYTHON_IMAGE=local, the default with buildah), the base is a
Debian bookworm made here with mmdebstrap and imported once; pip inside the build then uses this
machine's pip settings (find-links, extra index, certificate bundle of an egress proxy), mounted
read-only. Every failure names the image and the step.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = "docker/Dockerfile"
IGNOREFILE = "docker/Dockerfile.dockerignore"
LOCAL_BASE = "localhost/pbt-python-base:bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"


@dataclass(frozen=True)
class Image:
    name: str  # the Dockerfile target
    repository: str  # under IMAGE_REGISTRY (charts/pbt/values.yaml)
    group: str  # its dependency group (pyproject.toml), the Dockerfile's GROUP
    suffix: str = ""  # tag suffix
    default: bool = True  # built by `make images` without names

    def tag(self, registry: str, version: str) -> str:
        return f"{registry}/{self.repository}:{version}{self.suffix}"


IMAGES = [
    Image("orchestrator", "pbt-orchestrator", "orchestrator"),
    Image("evaluator", "pbt-evaluator", "evaluator"),
    Image("agent", "pbt-agent", "agent"),
    Image("training", "pbt-training", "training"),
    # The CUDA build needs torch's CUDA wheels (2.7 GB): `make images-gpu-check`.
    Image("training-gpu", "pbt-training", "training", "-cuda", default=False),
]
BY_NAME = {i.name: i for i in IMAGES}


class Failure(Exception):
    """A failed image or step; the message names both."""


def run(cmd: list[str], *, image: str, step: str, log: Path | None = None, **kw) -> str:
    if log is None:
        out = subprocess.run(cmd, capture_output=True, text=True, **kw)
        if out.returncode:
            raise Failure(f"{image}: {step} failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
        return out.stdout
    with log.open("w") as fh:
        code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, **kw).returncode
    if code:
        tail = log.read_text().strip().splitlines()[-15:]
        where = next((ln for ln in reversed(tail) if "STEP" in ln or "step" in ln), "")
        raise Failure(
            f"{image}: {step} failed (exit {code}; log {log}){': ' + where if where else ''}\n  "
            + "\n  ".join(tail)
        )
    return ""


def builder() -> str | None:
    forced = os.environ.get("PBT_IMAGE_TOOL")
    if forced:
        return forced
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    if shutil.which("buildah") and subprocess.run(["buildah", "info"], capture_output=True).returncode == 0:
        return "buildah"
    return None


def local_base() -> str:
    """The Debian bookworm base this machine stands in for the registry's python image with."""
    if (
        subprocess.run(["buildah", "inspect", "--type", "image", LOCAL_BASE], capture_output=True).returncode
        == 0
    ):
        return LOCAL_BASE
    if not shutil.which("mmdebstrap"):
        raise Failure(
            "local base: mmdebstrap is missing (apt-get install -y --no-install-recommends mmdebstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="pbt-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        print(f"local base: mmdebstrap bookworm ({BASE_PACKAGES}) -> {LOCAL_BASE}", flush=True)
        run(
            ["mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(tar)],
            image="local base",
            step="mmdebstrap",
        )
        ctr = run(["buildah", "from", "scratch"], image="local base", step="buildah from").strip()
        try:
            run(["buildah", "add", ctr, str(tar), "/"], image="local base", step="buildah add")
            run(
                [
                    "buildah",
                    "config",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--env",
                    "LANG=C.UTF-8",
                    "--cmd",
                    "python3",
                    ctr,
                ],
                image="local base",
                step="buildah config",
            )
            run(["buildah", "commit", "-q", ctr, LOCAL_BASE], image="local base", step="buildah commit")
        finally:
            subprocess.run(["buildah", "rm", ctr], capture_output=True)
    return LOCAL_BASE


def host_pip(workdir: Path) -> tuple[list[str], list[str]]:
    """(build args, volume flags) giving pip in the build this machine's pip settings."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    settings: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        settings[key.rpartition(".")[2]] = value.strip().strip("'\"")
    for key in ("cert", "find-links", "extra-index-url", "index-url"):
        if os.environ.get(f"PIP_{key.upper().replace('-', '_')}"):
            settings[key] = os.environ[f"PIP_{key.upper().replace('-', '_')}"]
    conf = configparser.ConfigParser()
    conf["global"] = {}
    mounts: set[str] = set()
    for key in ("cert", "find-links", "index-url"):
        if settings.get(key):
            conf["global"][key] = settings[key]
            mounts.update(
                v.removeprefix("file://") for v in settings[key].split() if not v.startswith("http")
            )
    args = []
    extra = settings.get("extra-index-url", "").split()
    if extra:
        args += ["--build-arg", f"TORCH_INDEX={extra[0]}"]
        if len(extra) > 1:
            conf["global"]["extra-index-url"] = " ".join(extra[1:])
        mounts.update(v.removeprefix("file://") for v in extra if not v.startswith("http"))
    with (workdir / "pip.conf").open("w") as fh:
        conf.write(fh)
    volumes = ["-v", f"{workdir / 'pip.conf'}:/etc/pbt-build/pip.conf:ro"]
    # A file:// index's pages link to ../../files: mount the index's parent folder.
    mounts = {str(Path(m).parent) if Path(m).name == "simple" else m for m in mounts}
    for path in sorted(mounts):
        if Path(path).exists():
            volumes += ["-v", f"{path}:{path}:ro"]
    return args + ["--build-arg", "PIP_CONFIG_FILE=/etc/pbt-build/pip.conf"], volumes


def build(
    names: list[str], registry: str, version: str, python_image: str, logs: Path, dockerfile: str = DOCKERFILE
) -> dict[str, str]:
    tool = builder()
    if tool is None:
        raise Failure("no image builder here: neither a Docker engine nor buildah answers")
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pbt-images-") as workdir:
        args: list[str] = []
        volumes: list[str] = []
        if tool == "buildah" and python_image in ("", "local"):
            args += ["--build-arg", f"PYTHON_IMAGE={local_base()}"]
            extra_args, volumes = host_pip(Path(workdir))
            args += extra_args
        elif python_image not in ("", "local"):
            args += ["--build-arg", f"PYTHON_IMAGE={python_image}"]
        if os.environ.get("CUDA_TORCH_INDEX"):
            args += ["--build-arg", f"CUDA_TORCH_INDEX={os.environ['CUDA_TORCH_INDEX']}"]
        tags = {
            name: build_one(tool, name, registry, version, dockerfile, args, volumes, logs) for name in names
        }
    print("sizes: " + ", ".join(f"{name} {size(tool, tag)}" for name, tag in tags.items()), flush=True)
    return tags


def build_one(
    tool: str,
    name: str,
    registry: str,
    version: str,
    dockerfile: str,
    args: list[str],
    volumes: list[str],
    logs: Path,
) -> str:
    tag = BY_NAME[name].tag(registry, version)
    args = [*args, "--build-arg", f"GROUP={BY_NAME[name].group}"]
    if tool == "docker":
        cmd = ["docker", "build", "-f", dockerfile, "--target", name, "-t", tag, *args, "."]
    else:
        cmd = ["buildah", "bud", "--isolation", "chroot", "--network", "host", "--layers", "-f", dockerfile,
               "--ignorefile", IGNOREFILE, "--target", name, "-t", tag, *args, *volumes, "."]  # fmt: skip
    start = time.monotonic()
    print(f"== {name}: {tool} build -> {tag}", flush=True)
    log = logs / f"build-{name}.log"
    run(["nice", "-n", "10", *cmd], image=name, step=f"build ({tool})", log=log, cwd=ROOT)
    print(f"   {name}: built in {time.monotonic() - start:.0f} s, {size(tool, tag)}", flush=True)
    return tag


def size(tool: str, tag: str) -> str:
    """The image's size as the builder reports it (uncompressed, base included)."""
    if tool == "docker":
        out = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True
        )
        return f"{int(out.stdout.strip() or 0) / 1e6:.0f} MB"
    out = subprocess.run(["buildah", "images", "--json", tag], capture_output=True, text=True).stdout
    return json.loads(out)[0]["size"] if out.strip() else "?"


# name -> (text to replace in docker/Dockerfile, its broken replacement, words the failure must name)
BREAKAGES = {
    "missing COPY source": (
        "COPY services/ services/",
        "COPY services/no-such-dir/ services/",
        ["orchestrator", "STEP"],
    ),
    "wrong entry point": (
        'ENTRYPOINT ["pbt"]',
        'ENTRYPOINT ["pbt-no-such-command"]',
        ["orchestrator", "gRPC health"],
    ),
    "a write to the root filesystem at start": (
        'ENTRYPOINT ["pbt"]',
        'ENTRYPOINT ["sh", "-c", "touch /opt/pbt/started && exec pbt \\"$@\\"", "pbt"]',
        ["orchestrator", "gRPC health", "Read-only file system"],
    ),
}


def selftest(registry: str, version: str, python_image: str, logs: Path) -> None:
    """Each breakage of docker/Dockerfile must make `check orchestrator` fail naming the image and step."""
    from smoke import smoke_all

    text = (ROOT / DOCKERFILE).read_text()
    for name, (good, bad, words) in BREAKAGES.items():
        assert good in text, f"selftest: {good!r} is no longer in {DOCKERFILE}"
        with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False) as fh:
            fh.write(text.replace(good, bad))
        try:
            tags = build(["orchestrator"], registry, f"{version}-selftest", python_image, logs, fh.name)
            smoke_all(tags, logs)
        except Failure as exc:
            missing = [w for w in words if w not in str(exc)]
            if missing:
                raise Failure(f"selftest: {name}: the failure does not name {missing}:\n{exc}") from None
            print(f"selftest: {name}: fails as it should: {str(exc).splitlines()[0][:160]}", flush=True)
        else:
            raise Failure(f"selftest: {name}: the broken Dockerfile passed images-check")
        finally:
            os.unlink(fh.name)
    tool = builder()
    subprocess.run(
        [tool or "buildah", "rmi", BY_NAME["orchestrator"].tag(registry, f"{version}-selftest")],
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docker/images.py", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["tool", "build", "check", "selftest"])
    parser.add_argument("names", nargs="*", help=f"images (default: every CPU image): {', '.join(BY_NAME)}")
    parser.add_argument("--registry", default=os.environ.get("IMAGE_REGISTRY", "ghcr.io/pbt-project"))
    parser.add_argument("--tag", default=os.environ.get("IMAGE_TAG", "0.1.0"))
    parser.add_argument(
        "--python-image",
        default=os.environ.get("PYTHON_IMAGE", "local"),
        help="base image; 'local' (default) with buildah: a Debian bookworm made here",
    )
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "pbt-images")
    ns = parser.parse_args(argv)
    if ns.command == "tool":
        print(builder() or "")
        return 0
    unknown = [n for n in ns.names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown image {unknown}: choose from {', '.join(BY_NAME)}")
    names = ns.names or [i.name for i in IMAGES if i.default]
    try:
        start = time.monotonic()
        if ns.command == "selftest":
            selftest(ns.registry, ns.tag, ns.python_image, ns.logs)
            print(f"images selftest: ok in {time.monotonic() - start:.0f} s")
            return 0
        tags = build(names, ns.registry, ns.tag, ns.python_image, ns.logs)
        if ns.command == "check":
            from smoke import smoke_all

            smoke_all(tags, ns.logs)
        print(f"images {ns.command}: {len(tags)} image(s) ok in {time.monotonic() - start:.0f} s")
    except Failure as exc:
        print(f"images {ns.command}: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.modules.setdefault(
        "images", sys.modules[__name__]
    )  # smoke.py's `from images import Failure` is this one
    sys.exit(main())
