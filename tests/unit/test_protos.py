"""The generated code in pbt/v1 matches protos/ exactly, and buf lint (STANDARD) is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "protos"
GENERATED = ROOT / "pbt" / "v1"
BUF_VERSION = "1.75.0"


def _protos() -> list[Path]:
    return sorted((PROTO_DIR / "pbt" / "v1").glob("*.proto"))


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    protos = _protos()
    assert protos, "no .proto files under protos/pbt/v1"
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}"]
    cmd += [f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}"]
    subprocess.run(cmd + [str(p) for p in protos], check=True, capture_output=True, text=True)
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "pbt" / "v1").iterdir() if p.is_file()}
    expected_names = {
        f"{p.stem}{suffix}" for p in protos for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    }
    assert set(fresh) == expected_names
    stale = [
        name
        for name, data in fresh.items()
        if not (GENERATED / name).is_file() or (GENERATED / name).read_bytes() != data
    ]
    assert not stale, f"pbt/v1 is stale for {stale}: run `make protos` and commit the result"
    leftovers = {p.name for p in GENERATED.glob("*_pb2*.py*")} - expected_names
    assert not leftovers, f"generated files without a .proto: {sorted(leftovers)}"


def test_generated_modules_import() -> None:
    from pbt.v1 import orchestrator_pb2, orchestrator_pb2_grpc

    service = orchestrator_pb2.DESCRIPTOR.services_by_name["DebateOrchestratorService"]
    assert service.full_name == "pbt.v1.DebateOrchestratorService"
    assert {m.name for m in service.methods} == {"BuildTrees", "GetTree", "RunDebate", "ExtractPreferences"}
    assert hasattr(orchestrator_pb2_grpc, "add_DebateOrchestratorServiceServicer_to_server")


def _buf(tmp_root: Path) -> Path | None:
    """The pinned buf CLI: .tools/ (from `make buf-lint`) or a fresh npm install; None when impossible."""
    local = ROOT / ".tools" / "node_modules" / ".bin" / "buf"
    if local.exists():
        return local
    npm = shutil.which("npm")
    if npm is None:
        return None
    proc = subprocess.run(
        [npm, "install", "--silent", "--prefix", str(tmp_root), f"@bufbuild/buf@{BUF_VERSION}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    candidate = tmp_root / "node_modules" / ".bin" / "buf"
    return candidate if proc.returncode == 0 and candidate.exists() else None


@pytest.mark.slow
def test_buf_lint_is_clean(tmp_path_factory: pytest.TempPathFactory) -> None:
    buf = _buf(tmp_path_factory.mktemp("buf"))
    if buf is None:
        pytest.skip("buf could not be installed (no npm or the npm registry is unreachable)")
    proc = subprocess.run([str(buf), "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"buf lint failed:\n{proc.stdout}{proc.stderr}"
