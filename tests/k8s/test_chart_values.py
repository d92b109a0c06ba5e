"""Wrong values make `helm template` fail with a message that names the value.

Each case is checked at both layers: values.schema.json (the default) and the chart's
validateValues helper (with --skip-schema-validation, as when a schema check is bypassed).
"""

from __future__ import annotations

import pytest
from k8s_checks import CHART, helm_template, load_all

pytestmark = pytest.mark.k8s

SKIP_SCHEMA = ["--skip-schema-validation"]

# (id, --set values, text the schema error must contain, texts the helper error must contain)
CASES = [
    (
        "negative-replicas",
        ["orchestrator.replicas=-1"],
        ["/orchestrator/replicas", "-1"],
        ["orchestrator.replicas", "got -1"],
    ),
    (
        "unknown-runtime",
        ["agents.roles.a.runtime=triton"],
        ["/agents/roles/a/runtime", "huggingface", "pbt"],
        ["agents.roles.a.runtime", '"triton"', "huggingface, pbt"],
    ),
    (
        "missing-bucket",
        ["store.bucket="],
        ["/store/bucket"],
        ["store.bucket", "bucket name is required"],
    ),
    (
        "invalid-bucket",
        ["store.bucket=My_Bucket"],
        ["/store/bucket", "My_Bucket"],
        ["store.bucket", '"My_Bucket"', "not a valid S3 bucket name"],
    ),
]


@pytest.mark.parametrize(
    ("sets", "schema_says", "helper_says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_wrong_value_is_named(k8s_tools, sets, schema_says, helper_says):
    proc = helm_template(k8s_tools, sets=sets)
    assert proc.returncode != 0, f"helm template accepted {sets}"
    for text in schema_says:
        assert text in proc.stderr, f"schema error for {sets} lacks {text!r}:\n{proc.stderr}"
    proc = helm_template(k8s_tools, sets=sets, extra=SKIP_SCHEMA)
    assert proc.returncode != 0, f"validateValues accepted {sets}"
    assert "pbt chart: invalid values" in proc.stderr
    for text in helper_says:
        assert text in proc.stderr, f"validateValues error for {sets} lacks {text!r}:\n{proc.stderr}"


def test_schema_rejects_wrong_types_and_latest(k8s_tools):
    for sets, path in (
        (["orchestrator.replicas=two"], "/orchestrator/replicas"),
        (["orchestrator.image.tag=latest"], "/orchestrator/image/tag"),
        (["agents.roles.b.gpus=-2"], "/agents/roles/b/gpus"),
        (["agents.roles.tutor.enabled=true"], "/agents/roles"),
        (["minio.enabled=yes"], "/minio/enabled"),
        (["agents.roles.a.vllm.gpuMemoryUtilization=1.5"], "/agents/roles/a/vllm/gpuMemoryUtilization"),
    ):
        proc = helm_template(k8s_tools, sets=sets)
        assert proc.returncode != 0 and path in proc.stderr, f"{sets}: {proc.stderr}"


def test_helper_reports_every_problem_at_once(k8s_tools):
    """External S3 without endpoint or credentials, an adapter that does not exist, a pbt-runtime
    agent with two adapters and training without a config: one failure listing all five."""
    proc = helm_template(
        k8s_tools,
        sets=[
            "minio.enabled=false",
            "agents.roles.a.servedAdapter=ghost",
            "agents.roles.b.runtime=pbt",
            "agents.roles.b.adapters[0].name=x",
            "agents.roles.b.adapters[0].path=adapters/x",
            "agents.roles.b.adapters[1].name=y",
            "agents.roles.b.adapters[1].path=adapters/y",
            "training.enabled=true",
        ],
    )
    assert proc.returncode != 0
    for text in (
        "store.endpoint: required when minio.enabled is false",
        "store.existingSecret: required when minio.enabled is false",
        'agents.roles.a.servedAdapter: "ghost" is not among the adapters',
        "agents.roles.b.adapters: the pbt runtime serves one adapter (got 2)",
        "training.config: required when training.enabled is true",
    ):
        assert text in proc.stderr, f"missing {text!r} in:\n{proc.stderr}"


def test_valid_overrides_render(k8s_tools):
    """The same values paths accept correct values (the checks are not blanket refusals)."""
    proc = helm_template(
        k8s_tools,
        sets=["orchestrator.replicas=0", "agents.roles.a.runtime=pbt", "store.bucket=team.pbt-2"],
    )
    assert proc.returncode == 0, proc.stderr


def test_agent_rules(k8s_tools):
    proc = helm_template(
        k8s_tools, sets=["agents.roles.a.minReplicas=0", "agents.serviceAccount.create=false"]
    )
    assert proc.returncode != 0
    assert (
        "agents.roles.a.minReplicas: scale to zero (got 0) needs agents.deploymentMode Serverless"
        in proc.stderr
    )
    assert "agents.serviceAccount.name: required when agents.serviceAccount.create is false" in proc.stderr
    ok = helm_template(
        k8s_tools,
        sets=[
            "agents.deploymentMode=Serverless",
            "agents.roles.a.minReplicas=0",
            "agents.serviceAccount.create=false",
            "agents.serviceAccount.name=kserve-s3",
        ],
    )
    assert ok.returncode == 0, ok.stderr
    objs = load_all(ok.stdout)
    assert {
        o["spec"]["predictor"]["serviceAccountName"] for o in objs if o["kind"] == "InferenceService"
    } == {"kserve-s3"}
    assert not [o for o in objs if o["kind"] == "ServiceAccount" and o["metadata"]["name"].endswith("agents")]


def test_training_module_matches_the_config_stage(k8s_tools):
    jobs = CHART / "ci" / "jobs-values.yaml"
    proc = helm_template(k8s_tools, values=[jobs], sets=["training.module=training.sft"])
    assert proc.returncode != 0
    assert (
        'training.module: "training.sft" runs another stage than training.config.stage "dpo"' in proc.stderr
    )
