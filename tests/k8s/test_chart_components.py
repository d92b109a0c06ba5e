"""charts/pbt, component by component: services, agents, store, jobs, run config, CLI commands."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from k8s_checks import (
    ROOT,
    SCENARIOS,
    by_kind,
    ident,
    one,
    pod_views,
    resolve_cli,
)

pytestmark = pytest.mark.k8s


def test_store_environment_matches_pbt_store(rendered):
    """The services get the variables pbt.store.open_store() reads, and none it ignores."""
    source = (ROOT / "pbt" / "store" / "__init__.py").read_text()
    read = {a or b for a, b in re.findall(r'os\.environ\.get\("(\w+)"|os\.environ\["(\w+)"\]', source)}
    for dep in by_kind(rendered["default"], "Deployment"):
        names = {e["name"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        store_vars = {n for n in names if n.startswith(("S3_", "AWS_"))}
        assert store_vars <= read, f"{ident(dep)} sets {store_vars - read}, which pbt.store never reads"
        assert {
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_SECURE",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        } <= names
    dep = one(rendered["external-s3"], "Deployment", "orchestrator")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["S3_ENDPOINT"]["value"] == "s3.eu-west-1.amazonaws.com"
    assert env["S3_BUCKET"]["value"] == "my-team-pbt"
    assert env["S3_SECURE"]["value"] == "true"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "pbt-s3-credentials", "key": key}
    dep = one(rendered["default"], "Deployment", "evaluator")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["S3_ENDPOINT"]["value"] == "pbt-minio.pbt.svc.cluster.local:9000"
    assert env["S3_SECURE"]["value"] == "false"


def test_grpc_auth_and_tls_reach_the_server_config(rendered):
    """PBT_GRPC_* variables are ServerConfig fields; TLS mounts the Secret and probes TCP."""
    from services.common.config import ENV_PREFIX, ServerConfig

    for comp in ("orchestrator", "evaluator"):
        plain = one(rendered["default"], "Deployment", comp)["spec"]["template"]["spec"]
        assert not [e for e in plain["containers"][0]["env"] if e["name"].startswith(ENV_PREFIX)]
        pod = one(rendered["external-s3"], "Deployment", comp)["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = {e["name"]: e for e in c["env"] if e["name"].startswith(ENV_PREFIX)}
        assert {n.removeprefix(ENV_PREFIX).lower() for n in env} <= set(ServerConfig.model_fields)
        assert env["PBT_GRPC_AUTH_TOKENS"]["valueFrom"]["secretKeyRef"] == {
            "name": "pbt-grpc-tokens",
            "key": "tokens",
        }
        mount = next(m for m in c["volumeMounts"] if m["name"] == "tls")
        assert env["PBT_GRPC_TLS_CERT_FILE"]["value"] == mount["mountPath"] + "/tls.crt"
        assert env["PBT_GRPC_TLS_KEY_FILE"]["value"] == mount["mountPath"] + "/tls.key"
        assert {"name": "tls", "secret": {"secretName": "pbt-grpc-tls"}} in pod["volumes"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["tcpSocket"]["port"] == c["ports"][0]["containerPort"] and "grpc" not in c[probe]


def test_grpc_services_probe_the_grpc_port(rendered):
    for comp in ("orchestrator", "evaluator"):
        dep = one(rendered["default"], "Deployment", comp)
        c = dep["spec"]["template"]["spec"]["containers"][0]
        port = c["ports"][0]["containerPort"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == port
        assert c["args"][:2] == ["serve", comp]
        assert c["args"][c["args"].index("--port") + 1] == str(port)
        pdb = one(rendered["default"], "PodDisruptionBudget", comp)
        assert (
            pdb["spec"]["selector"]["matchLabels"].items()
            <= dep["spec"]["template"]["metadata"]["labels"].items()
        )


def test_orchestrator_autoscaling(rendered):
    hpa = one(rendered["gpu-agents"], "HorizontalPodAutoscaler", "orchestrator")
    dep = one(rendered["gpu-agents"], "Deployment", "orchestrator")
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert not by_kind(rendered["default"], "HorizontalPodAutoscaler")


def test_gpu_agents_on_vllm_with_lora(rendered):
    objs = rendered["gpu-agents"]
    b = one(objs, "InferenceService", "agent-b")
    pred = b["spec"]["predictor"]
    model = pred["model"]
    assert model["modelFormat"]["name"] == "huggingface"
    assert model["runtime"] == "kserve-huggingfaceserver"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    args = model["args"]
    assert "--backend=vllm" in args and "--enable-prefix-caching" in args and "--enable-lora" in args
    assert "--max-model-len=4096" in args
    mounts = {u["mountPath"]: u["uri"] for u in pred["storageUris"]}
    assert mounts["/mnt/models/base"] == "s3://pbt-prod/models/llama-3.1-8b-instruct"
    assert mounts["/mnt/models/adapters/pbt-v1"] == "s3://pbt-prod/adapters/pbt/run-2026-11-20"
    lora = args[args.index("--lora-modules") + 1 :]
    assert "pbt-v1=/mnt/models/adapters/pbt-v1" in lora and "accept-v1=/mnt/models/adapters/accept-v1" in lora
    assert "--model_dir=/mnt/models/base" in args
    assert "storageUri" not in model
    a = one(objs, "InferenceService", "agent-a")
    assert a["spec"]["predictor"]["model"]["storageUri"] == "s3://pbt-prod/models/llama-3.1-8b-instruct"
    assert "--max-model-len=8192" in a["spec"]["predictor"]["model"]["args"]
    assert a["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    # the services ask agent B for the promoted adapter, at the predictor's OpenAI base URL
    run_cfg = yaml.safe_load(one(objs, "ConfigMap", "run-config")["data"]["run.yaml"])
    assert run_cfg["agents"]["b"] == {
        "endpoint": f"http://{b['metadata']['name']}-predictor.pbt.svc.cluster.local/openai/v1",
        "model": "pbt-v1",
    }
    # the CPU extractor runs on the project's agent server through the chart's ServingRuntime
    ext = one(objs, "InferenceService", "agent-extractor")["spec"]["predictor"]["model"]
    runtime = one(objs, "ServingRuntime", "agent-runtime")
    assert ext["runtime"] == runtime["metadata"]["name"]
    assert ext["storageUri"] == "s3://shared-models/extractors/qwen2.5-0.5b-instruct"
    assert runtime["spec"]["containers"][0]["args"][:2] == ["serve", "agent"]


def test_agents_service_account_carries_kserve_s3_settings(rendered):
    for scenario, endpoint, https in (
        ("default", "pbt-minio.pbt.svc.cluster.local:9000", "0"),
        ("external-s3", "s3.eu-west-1.amazonaws.com", "1"),
    ):
        objs = rendered[scenario]
        sa = one(objs, "ServiceAccount", "agents")
        ann = sa["metadata"]["annotations"]
        assert ann["serving.kserve.io/s3-endpoint"] == endpoint
        assert ann["serving.kserve.io/s3-usehttps"] == https
        for isvc in by_kind(objs, "InferenceService"):
            assert isvc["spec"]["predictor"]["serviceAccountName"] == sa["metadata"]["name"]
    assert one(rendered["external-s3"], "ServiceAccount", "agents")["secrets"] == [
        {"name": "pbt-s3-credentials"}
    ]


def test_one_inference_service_per_enabled_role(rendered):
    def roles(objs):
        return sorted(o["metadata"]["labels"]["pbt.io/agent-role"] for o in by_kind(objs, "InferenceService"))

    assert roles(rendered["default"]) == ["a", "b", "extractor"]
    assert roles(rendered["external-s3"]) == ["a", "b", "extractor", "judge"]
    for isvc in by_kind(rendered["cpu-minimal"], "InferenceService"):
        model = isvc["spec"]["predictor"]["model"]
        assert model["modelFormat"]["name"] == "pbt" and "nvidia.com/gpu" not in model["resources"]["limits"]


def test_minio_statefulset_and_bucket_job(rendered):
    objs = rendered["default"]
    sts = one(objs, "StatefulSet", "minio")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MINIO_ROOT_USER"]["valueFrom"]["secretKeyRef"]["key"] == "AWS_ACCESS_KEY_ID"
    job = one(objs, "Job", "create-bucket")
    assert "post-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert 'mc mb --ignore-existing "store/pbt"' in script
    assert not by_kind(rendered["external-s3"], "StatefulSet")


def test_training_and_generation_jobs(rendered):
    assert not by_kind(rendered["default"], "PyTorchJob"), "training is off by default"
    objs = rendered["jobs"]
    job = one(objs, "PyTorchJob", "train-pbt-8b-r1")
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert set(specs) == {"Master", "Worker"} and specs["Worker"]["replicas"] == 1
    assert job["spec"]["nprocPerNode"] == "4"
    c = specs["Master"]["template"]["spec"]["containers"][0]
    assert c["name"] == "pytorch"  # the training operator's container name
    assert c["command"] == ["torchrun"] and c["args"] == [
        "-m",
        "training.dpo",
        "--config",
        "/etc/pbt/training.yaml",
    ]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert c["image"].endswith("/pbt-training:0.1.0-cuda")
    cm = one(objs, "ConfigMap", "train-pbt-8b-r1")
    assert yaml.safe_load(cm["data"]["training.yaml"])["beta"] == 0.1
    gen = one(objs, "Job", "trees-nq-2026-11")
    assert gen["spec"]["completionMode"] == "Indexed"
    assert (gen["spec"]["completions"], gen["spec"]["parallelism"]) == (8, 4)
    gc = gen["spec"]["template"]["spec"]["containers"][0]
    assert gc["args"][:2] == ["trees", "build"] and "$(SHARD_INDEX)/8" in gc["args"]
    assert gc["args"][gc["args"].index("--job-id") + 1] == "nq-2026-11", "every shard writes one job's trees"
    shard_env = next(e for e in gc["env"] if e["name"] == "SHARD_INDEX")
    assert "job-completion-index" in shard_env["valueFrom"]["fieldRef"]["fieldPath"]
    run_cfg = yaml.safe_load(one(objs, "ConfigMap", "run-config")["data"]["run.yaml"])
    assert run_cfg["tree"]["branching"] == [1, 2, 3, 2] and set(run_cfg["agents"]) == {"a", "b", "extractor"}


def test_service_monitor(rendered):
    """No ServiceMonitor CRD is available offline: check its required structure by hand."""
    assert not by_kind(rendered["default"], "ServiceMonitor")
    sm = one(rendered["gpu-agents"], "ServiceMonitor", "agents")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    isvcs = {o["metadata"]["name"] for o in by_kind(rendered["gpu-agents"], "InferenceService")}
    expr = sm["spec"]["selector"]["matchExpressions"][0]
    assert expr["key"] == "serving.kserve.io/inferenceservice" and set(expr["values"]) == isvcs
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_run_config_is_a_valid_run_config(rendered, scenario, tmp_path):
    """The mounted run.yaml loads with the product's own RunConfig."""
    from pbt.config import RunConfig

    cm = one(rendered[scenario], "ConfigMap", "run-config")
    path = tmp_path / "run.yaml"
    path.write_text(cm["data"]["run.yaml"])
    config = RunConfig.from_yaml(path)
    isvcs = {
        o["metadata"]["labels"]["pbt.io/agent-role"]: o
        for o in by_kind(rendered[scenario], "InferenceService")
    }
    for role in ("a", "b", "extractor"):
        agent = getattr(config.agents, role)
        if role in isvcs:
            assert agent.endpoint.startswith(f"http://{isvcs[role]['metadata']['name']}-predictor.")
            assert agent.endpoint.endswith("/openai/v1")
    assert config.store.url.startswith("s3://")
    # a dataset file named by the run config is mounted in every pod that builds trees
    if config.dataset is not None and config.dataset.path:
        builders = [
            v
            for o in rendered[scenario]
            if o["kind"] in ("Deployment", "Job")
            for v in pod_views(o)
            if v.pod_labels.get("app.kubernetes.io/component") in ("orchestrator", "generation")
        ]
        assert builders
        for view in builders:
            mounts = [m["mountPath"] for c in view.containers for m in c.get("volumeMounts", [])]
            assert any(config.dataset.path.startswith(m.rstrip("/") + "/") for m in mounts), (
                f"{view.owner}: dataset {config.dataset.path} is on no mounted volume ({mounts})"
            )


def _pbt_commands(objs: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(owner, argv) of every container of the chart that runs the `pbt` entry point."""
    out = []
    for o in objs:
        if o["kind"] == "ServingRuntime":
            out += [(ident(o), c["args"]) for c in o["spec"]["containers"]]
        elif o["kind"] in ("Deployment", "Job") and o["kind"] != "StatefulSet":
            for c in o["spec"]["template"]["spec"]["containers"]:
                if "command" not in c and c["image"].split("/")[-1].startswith("pbt-"):
                    out.append((ident(o), c["args"]))
    return out


def test_chart_commands_exist_in_the_cli(rendered):
    """Every `pbt ...` the chart runs is a real subcommand and passes only options it accepts."""
    commands = _pbt_commands(rendered["cpu-minimal"]) + _pbt_commands(rendered["jobs"])
    assert {tuple(a[:2]) for _, a in commands} >= {
        ("serve", "orchestrator"),
        ("serve", "evaluator"),
        ("serve", "agent"),
        ("trees", "build"),
    }
    missing = []
    for owner, argv in commands:
        try:
            command, rest = resolve_cli(argv)
        except AssertionError:
            missing.append(f"{owner}: pbt {' '.join(argv[:2])}")
            continue
        if "not available in this build" in (command.help or ""):
            missing.append(f"{owner}: pbt {' '.join(argv[:2])}")
            continue
        known = {opt for p in command.params for opt in getattr(p, "opts", [])}
        unknown = [a for a in rest if a.startswith("--") and a not in known]
        assert not unknown, f"{owner}: `pbt {' '.join(argv)}` passes unknown options {unknown}"
    if missing:
        pytest.skip(f"not in this build yet (options unchecked): {missing}")


@pytest.mark.slow
def test_chart_training_config_is_understood_by_the_training_entry_point(rendered):
    """Every option of the mounted training.yaml is an option of `python -m <module>` (TRL's parser
    of the training code; hardware checks such as bf16 need the GPU node, so only names are checked)."""
    training_args = pytest.importorskip("training.args")
    objs = rendered["jobs"]
    job = next(o for o in objs if o["kind"] == "PyTorchJob")
    module = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["args"][1]
    stage = module.removeprefix("training.")
    config = yaml.safe_load(one(objs, "ConfigMap", job["metadata"]["name"])["data"]["training.yaml"])
    assert config.pop("stage", stage) == stage, f"config for another stage than {module}"
    config.pop("job", None)
    config.pop("env", None)
    unknown = training_args.make_parser(stage).set_defaults_with_config(**config)
    assert not unknown, f"options python -m {module} does not know: {unknown[::2]}"


def test_request_policy_reaches_both_services(rendered):
    """PBT_POLICY_* variables are RequestPolicy fields; by default requests may name exactly the
    chart's own InferenceServices, no local backends, no files without a data volume."""
    from services.common.policy import ENV_PREFIX, RequestPolicy

    agents = one(rendered["default"], "InferenceService", "agent-a")["metadata"]["name"]
    for comp in ("orchestrator", "evaluator"):
        c = one(rendered["default"], "Deployment", comp)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"] if e["name"].startswith(ENV_PREFIX)}
        assert {n.removeprefix(ENV_PREFIX).lower() for n in env} <= set(RequestPolicy.model_fields)
        policy = RequestPolicy.from_env({k: v for k, v in env.items() if v is not None})
        assert set(policy.agents) == {"a", "b", "extractor"}
        assert policy.agents["a"].startswith(f"http://{agents}-predictor.")
        assert not policy.allow_local_backends and not policy.agent_url_prefixes
        assert not policy.data_roots and not policy.agent_credentials


def test_huggingface_agents_allow_runtime_lora_updates(rendered, k8s_tools):
    """vLLM's runtime LoRA loading (the retraining pipeline's `load` step): --enable-lora and
    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True on Hugging Face runtime agents, slots for the adapters."""
    from k8s_checks import render

    objs = rendered["gpu-agents"]
    for role in ("a", "b"):
        model = one(objs, "InferenceService", f"agent-{role}")["spec"]["predictor"]["model"]
        env = {e["name"]: e.get("value") for e in model["env"]}
        assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
        assert "--enable-lora" in model["args"]
        slots = int(next(a for a in model["args"] if a.startswith("--max-loras=")).split("=")[1])
        assert slots >= 4
    ext = one(objs, "InferenceService", "agent-extractor")["spec"]["predictor"]["model"]
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in {e["name"] for e in ext["env"]}  # the pbt runtime
    off = render(k8s_tools, sets=["agents.roles.a.vllm.runtimeLora=false"])
    a = one(off, "InferenceService", "agent-a")["spec"]["predictor"]["model"]
    assert "--enable-lora" not in a["args"]
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in {e["name"] for e in a["env"]}


def test_grpc_services_start_at_the_charts_log_level(rendered):
    """Both servers get `--log-level` from grpc.logLevel (INFO by default), a flag both accept."""
    for comp in ("orchestrator", "evaluator"):
        pod = one(rendered["default"], "Deployment", comp)["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        assert args[:2] == ["serve", comp]
        assert args[args.index("--log-level") + 1] == "INFO"
