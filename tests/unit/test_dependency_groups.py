"""Each service runs on its own dependency group (pyproject `[project.optional-dependencies]`).

The orchestrator and evaluator images install only the base dependencies and their group, so
neither may load torch or transformers. A subprocess runs each server's command line (`--help`)
and starts the server with a health check; then every third-party module it loaded must come
from a distribution that `pip install pbt[<group>]` installs. The agent and training images are
checked the same way by their smoke runs on their own groups (`make images-check`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# Imported by a library only when present (grpc tries grpc_tools); never needed.
OPTIONAL = {"grpc_tools"}
HEAVY = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "kserve", "tokenizers")

PROBE = r"""
import asyncio, json, sys
before = set(sys.modules)
from click.testing import CliRunner
from pbt.cli.main import cli
service = sys.argv[1]
result = CliRunner().invoke(cli, ["serve", service, "--help"])
assert result.exit_code == 0, result.output
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pbt.store import open_store
if service == "orchestrator":
    from services.orchestrator.server import start_orchestrator as start
    name = "pbt.v1.DebateOrchestratorService"
    kwargs = {"store": open_store(sys.argv[2])}
else:
    from services.evaluator.server import start_evaluator as start
    name = "pbt.v1.EvaluatorService"
    kwargs = {}

async def run():
    server, port = await start("127.0.0.1:0", **kwargs)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
    await server.stop(0)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

status = asyncio.run(run())
loaded = sorted({m.partition(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"status": status, "modules": loaded}))
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def group_closure(group: str) -> set[str]:
    """Normalised names of every distribution `pip install pbt[group]` installs: the repository's
    pyproject (not the installed metadata, which may be stale) and the installed dependencies'."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = project["dependencies"] + project["optional-dependencies"][group]
    seen: set[str] = set()
    todo = [(r.name, frozenset(r.extras)) for r in map(Requirement, direct)]
    while todo:
        name, extras = todo.pop()
        seen.add(_norm(name))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                if _norm(req.name) not in seen or req.extras:
                    todo.append((req.name, frozenset(req.extras)))
    return seen


def test_the_groups_are_declared_and_make_setup_installs_them_all():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = project["optional-dependencies"]
    assert {"orchestrator", "evaluator", "agent", "training", "dev"} <= set(groups)
    base = " ".join(project["dependencies"])
    for heavy in ("torch", "transformers", "kserve", "trl"):
        assert heavy not in base, f"pyproject [project] dependencies: {heavy} belongs in a group"
    makefile = (ROOT / "Makefile").read_text()
    extras = re.search(r"^EXTRAS := (\S+)$", makefile, re.M)
    assert extras and set(extras.group(1).split(",")) == set(groups), "Makefile EXTRAS must list every group"


@pytest.mark.parametrize("service", ["orchestrator", "evaluator"])
def test_a_grpc_service_starts_on_its_own_group_without_torch(service, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, service, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["status"] == "SERVING"
    loaded = set(report["modules"])
    assert not loaded & set(HEAVY), f"pbt serve {service} loaded {sorted(loaded & set(HEAVY))}"
    assert_within_group(loaded, service)


def assert_within_group(loaded: set[str], group: str) -> None:
    allowed = group_closure(group)
    owners = packages_distributions()
    own = {"pbt", "services", "training", "pbt_world", "__main__"} | OPTIONAL
    outside = {
        module: owners[module]
        for module in loaded - own - set(sys.stdlib_module_names)
        if module in owners and not {_norm(d) for d in owners[module]} & allowed
    }
    assert not outside, f"modules loaded outside pbt[{group}]: {outside}"
