"""agents.adapterVolume: the chart creates the ReadWriteMany claim the pipeline's load step writes
and the Hugging Face runtime agents mount read-only (or mounts the operator's existingClaim);
wrong settings fail naming the value."""

from __future__ import annotations

import pytest
from k8s_checks import SCENARIOS, by_kind, helm_template, render, scenario_values, validate_object

pytestmark = pytest.mark.k8s

ON = ["agents.adapterVolume.enabled=true"]


def _claims(objs):
    return {o["metadata"]["name"]: o for o in by_kind(objs, "PersistentVolumeClaim")}


def _agent_claims(objs):
    """role -> (claim, mount) of the adapter volume in each InferenceService that mounts it."""
    out = {}
    for isvc in by_kind(objs, "InferenceService"):
        pred = isvc["spec"]["predictor"]
        vol = next((v for v in pred.get("volumes", []) if v["name"] == "pipeline-adapters"), None)
        if vol:
            mount = next(m for m in pred["model"]["volumeMounts"] if m["name"] == "pipeline-adapters")
            out[isvc["metadata"]["labels"]["pbt.io/agent-role"]] = (vol["persistentVolumeClaim"], mount)
    return out


def test_enabled_the_chart_creates_the_claim_the_agents_mount(k8s_tools, crd_schemas):
    objs = render(
        k8s_tools,
        sets=[*ON, "agents.roles.extractor.runtime=pbt", "agents.adapterVolume.size=5Gi"],
    )
    claim = _claims(objs)["pbt-adapters"]
    assert validate_object(claim, crd_schemas) == []
    assert claim["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "5Gi"}}}
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "adapters"
    mounted = _agent_claims(objs)
    assert set(mounted) == {"a", "b"}  # the Hugging Face agents; the pbt-runtime extractor takes store keys
    for pvc, mount in mounted.values():
        assert pvc == {"claimName": "pbt-adapters", "readOnly": True}
        assert mount == {"name": "pipeline-adapters", "mountPath": "/mnt/pbt-adapters", "readOnly": True}


def test_storage_class_is_set_only_when_given(k8s_tools):
    objs = render(k8s_tools, sets=[*ON, "agents.adapterVolume.storageClassName=nfs-rwx"])
    assert _claims(objs)["pbt-adapters"]["spec"]["storageClassName"] == "nfs-rwx"
    assert "storageClassName" not in _claims(render(k8s_tools, sets=ON))["pbt-adapters"]["spec"]


def test_an_existing_claim_is_mounted_and_nothing_is_created(rendered):
    objs = rendered["gpu-agents"]
    assert _claims(objs) == {}
    values = scenario_values("gpu-agents")["agents"]["adapterVolume"]
    assert values["existingClaim"] == "rwx-adapters"
    for pvc, mount in _agent_claims(objs).values():
        assert pvc == {"claimName": "rwx-adapters", "readOnly": True}
        assert mount["mountPath"] == "/mnt/pipeline-adapters"
    assert set(_agent_claims(objs)) == {"a", "b"}


def test_off_by_default(rendered):
    assert _claims(rendered["default"]) == {} and _agent_claims(rendered["default"]) == {}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_agents_adapter_claim_is_rendered_or_the_operators(rendered, scenario):
    objs = rendered[scenario]
    existing = scenario_values(scenario)["agents"]["adapterVolume"]["existingClaim"]
    for role, (pvc, _mount) in _agent_claims(objs).items():
        assert pvc["claimName"] in _claims(objs) or pvc["claimName"] == existing, (scenario, role)


@pytest.mark.parametrize(
    "sets, says",
    [
        (
            ["agents.adapterVolume.create=false"],
            "agents.adapterVolume.existingClaim: required when agents.adapterVolume.create is false",
        ),
        (
            ["agents.adapterVolume.claimName=Not_A_Name"],
            'agents.adapterVolume.claimName: "Not_A_Name" is not a DNS label',
        ),
        (
            ["agents.adapterVolume.size="],
            "agents.adapterVolume.size: required when the chart creates the claim",
        ),
    ],
    ids=["create-false-without-existing-claim", "bad-claim-name", "no-size"],
)
def test_wrong_adapter_volume_settings_are_named(k8s_tools, sets, says):
    proc = helm_template(k8s_tools, sets=[*ON, *sets], extra=["--skip-schema-validation"])
    assert proc.returncode != 0 and says in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "sets, path",
    [
        (["agents.adapterVolume.claimName=Not_A_Name"], "/agents/adapterVolume/claimName"),
        (["agents.adapterVolume.size=lots"], "/agents/adapterVolume/size"),
        (["agents.adapterVolume.existingClaim=UPPER"], "/agents/adapterVolume/existingClaim"),
        (["agents.adapterVolume.create=maybe"], "/agents/adapterVolume/create"),
    ],
)
def test_the_schema_refuses_wrong_adapter_volume_values(k8s_tools, sets, path):
    proc = helm_template(k8s_tools, sets=[*ON, *sets])
    assert proc.returncode != 0 and path in proc.stderr, proc.stderr
