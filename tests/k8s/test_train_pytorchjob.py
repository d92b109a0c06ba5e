"""`pbt train submit`: the rendered PyTorchJob validates against the training-operator CRD."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from k8s_checks import CRDS

from pbt.cli.main import cli
from pbt.errors import UnavailableError, ValidationError
from pbt.jobs.pytorchjob import load_job_config, render, submit, validate_job

pytestmark = pytest.mark.k8s

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
PAPER = sorted(p for p in CONFIGS.glob("*.yaml") if "job" in yaml.safe_load(p.read_text()))


@pytest.fixture(scope="module")
def crd() -> Path:
    return CRDS / "kubeflow.org_pytorchjobs.yaml"


def _variant(tmp_path: Path, file_stem: str, **job) -> Path:
    config = yaml.safe_load((CONFIGS / "dpo-llama3-8b.yaml").read_text())
    config["job"].update(job)
    path = tmp_path / f"{file_stem}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _container(obj: dict, replica: str = "Master") -> dict:
    return obj["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]["containers"][0]


def test_shipped_configs_have_job_blocks():
    assert {p.name for p in PAPER} >= {
        "dpo-llama3-8b.yaml",
        "dpo-llama3-70b.yaml",
        "dpo-llama3-70b-fsdp.yaml",
    }


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.name)
def test_shipped_configs_render_valid_jobs(path, crd):
    stage, config, job, text = load_job_config(path)
    config_map, pytorch_job = render(stage, config, job, text)
    validate_job(pytorch_job, crd)
    kubernetes_validate.validate(config_map, "1.33.0", strict=True)
    assert pytorch_job["apiVersion"] == "kubeflow.org/v1" and pytorch_job["kind"] == "PyTorchJob"
    specs = pytorch_job["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1
    assert specs.get("Worker", {}).get("replicas", 0) == job.num_nodes - 1
    assert pytorch_job["spec"]["nprocPerNode"] == str(job.nproc_per_node)
    c = _container(pytorch_job)
    assert c["name"] == "pytorch" and c["command"] == ["torchrun"]
    assert c["args"][:4] == ["-m", f"training.{stage}", "--config", "/etc/pbt/training.yaml"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == str(job.gpus_per_node)
    env = {e["name"]: e for e in c["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == job.store_secret
    assert env["S3_ENDPOINT"]["value"] == job.store_endpoint
    assert config_map["data"]["training.yaml"] == text  # the exact config travels to the pods
    volumes = {v["name"]: v for v in c["volumeMounts"]}
    assert volumes["config"]["mountPath"] == "/etc/pbt/training.yaml"


def test_variants_validate(tmp_path, crd):
    cases = {
        "multi-node": dict(num_nodes=4, nproc_per_node=8, gpus_per_node=8),
        "cpu-only": dict(gpus_per_node=0, nproc_per_node=2, cpu="4", memory="8Gi"),
        "auto-procs": dict(
            nproc_per_node="gpu",
            node_selector={"gpu": "h100"},
            ttl_seconds_after_finished=3600,
            env={"NCCL_DEBUG": "INFO"},
            args=["--mode", "resist"],
            name="resist-12",
        ),
    }
    for name, job in cases.items():
        stage, config, spec, text = load_job_config(_variant(tmp_path, name, **job))
        _, pytorch_job = render(stage, config, spec, text)
        validate_job(pytorch_job, crd)
    assert pytorch_job["metadata"]["name"] == "resist-12"
    assert _container(pytorch_job)["args"][-2:] == ["--mode", "resist"]
    _, cpu_job = render(*load_job_config(_variant(tmp_path, "cpu", gpus_per_node=0)))
    assert "nvidia.com/gpu" not in (_container(cpu_job)["resources"].get("limits") or {})


def test_schema_check_catches_a_broken_job(crd):
    stage, config, job, text = load_job_config(CONFIGS / "dpo-llama3-8b.yaml")
    _, pytorch_job = render(stage, config, job, text)
    pytorch_job["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    _container(pytorch_job)["imagePullPolicy2"] = "Always"
    with pytest.raises(ValidationError, match="2 schema violation"):
        validate_job(pytorch_job, crd)


def test_bad_job_blocks_are_clear_errors(tmp_path):
    with pytest.raises(ValidationError, match="job.gpus_per_node"):
        load_job_config(_variant(tmp_path, "neg", gpus_per_node=-1))
    with pytest.raises(ValidationError, match="job.replicas"):
        load_job_config(_variant(tmp_path, "typo", replicas=2))
    with pytest.raises(ValidationError, match="DNS-1123"):
        load_job_config(_variant(tmp_path, "name", name="Bad_Name"))
    with pytest.raises(ValidationError, match="job.store_endpoint"):
        load_job_config(_variant(tmp_path, "noendpoint", store_endpoint=None))
    local = yaml.safe_load((CONFIGS / "dpo-llama3-8b.yaml").read_text()) | {"pairs": "/home/me/pairs.jsonl"}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(local))
    with pytest.raises(ValidationError, match="local path"):
        load_job_config(tmp_path / "local.yaml")


def test_cli_dry_run_prints_configmap_and_job(crd):
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "submit",
            "--config",
            str(CONFIGS / "dpo-llama3-70b.yaml"),
            "--dry-run",
            "--validate-crd",
            str(crd),
        ],
    )
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    assert [d["kind"] for d in docs] == ["ConfigMap", "PyTorchJob"]
    assert docs[0]["data"]["training.yaml"] == (CONFIGS / "dpo-llama3-70b.yaml").read_text()
    validate_job(docs[1], crd)


def test_submit_without_a_cluster_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    stage, config, job, text = load_job_config(CONFIGS / "dpo-llama3-8b.yaml")
    with pytest.raises(UnavailableError, match="no Kubernetes cluster configured"):
        submit(*render(stage, config, job, text), kubeconfig=str(tmp_path / "missing-kubeconfig"))


class _FakeApiServer:
    """Just enough of the Kubernetes API on loopback to receive a ConfigMap and a PyTorchJob."""

    def __init__(self, configmap_exists: bool = False):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append((self.command, self.path, body))
                if self.command == "POST" and self.path.endswith("/configmaps") and configmap_exists:
                    self._reply(409, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "AlreadyExists", "code": 409})  # fmt: skip
                else:
                    self._reply(201 if self.command == "POST" else 200, body)

            do_POST = do_PUT = _handle

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def kubeconfig(self, path: Path) -> str:
        host, port = self.server.server_address
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://{host}:{port}"}}],
            "users": [{"name": "fake", "user": {"token": "t"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))  # fmt: skip
        return str(path)


@pytest.mark.parametrize("configmap_exists", [False, True], ids=["new", "configmap-replaced"])
def test_submit_creates_configmap_and_job_through_the_api(tmp_path, configmap_exists):
    with _FakeApiServer(configmap_exists) as api:
        result = CliRunner().invoke(
            cli,
            ["train", "submit", "--config", str(CONFIGS / "dpo-llama3-8b.yaml"),
             "--kubeconfig", api.kubeconfig(tmp_path / "kubeconfig")],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    stage, config, job, text = load_job_config(CONFIGS / "dpo-llama3-8b.yaml")
    config_map, pytorch_job = render(stage, config, job, text)
    calls = [(method, path) for method, path, _ in api.requests]
    expected = [("POST", "/api/v1/namespaces/pbt/configmaps")]
    if configmap_exists:
        expected.append(("PUT", f"/api/v1/namespaces/pbt/configmaps/{config_map['metadata']['name']}"))
    expected.append(("POST", "/apis/kubeflow.org/v1/namespaces/pbt/pytorchjobs"))
    assert calls == expected
    assert api.requests[-1][2] == pytorch_job and api.requests[0][2] == config_map
    assert f"submitted PyTorchJob pbt/{pytorch_job['metadata']['name']}" in result.output
