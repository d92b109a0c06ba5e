"""k8s/: Argo CD applications per environment, the retraining specs and the PyTorchJob health check."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_checks import (
    CHART,
    CRDS,
    K8S,
    ROOT,
    ident,
    load_all,
    pod_views,
    policy_problems,
    render,
    run,
    validate_object,
)

pytestmark = pytest.mark.k8s

KUSTOMIZATIONS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
OVERLAYS = [d for d in KUSTOMIZATIONS if d.parent.name == "overlays"]
RETRAINING = K8S / "retraining"
SPECS = sorted(p for p in RETRAINING.glob("*.yaml") if p.name != "kustomization.yaml")
LUA = K8S / "argocd" / "config" / "health" / "pytorchjob.lua"
HEALTH_KEY = "resource.customizations.health.kubeflow.org_PyTorchJob"


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.fixture(scope="module")
def kustomized(k8s_tools) -> dict[Path, list[dict[str, Any]]]:
    """`kubectl kustomize` of every folder of k8s/ that has a kustomization.yaml."""
    out = {}
    for folder in KUSTOMIZATIONS:
        proc = run([k8s_tools.kubectl, "kustomize", folder])
        assert proc.returncode == 0, f"kubectl kustomize {rel(folder)} failed:\n{proc.stderr}"
        out[folder] = load_all(proc.stdout)
    return out


def test_layout():
    assert {d.name for d in OVERLAYS} == {"staging", "production"}
    assert (K8S / "argocd" / "config") in KUSTOMIZATIONS and RETRAINING in KUSTOMIZATIONS
    for env in ("staging", "production"):
        assert (K8S / "environments" / env / "values.yaml").is_file()
    # k8s/crds holds upstream CRDs as validation schemas only: nothing kustomizes them.
    assert not [d for d in KUSTOMIZATIONS if d == CRDS or CRDS in d.parents]
    assert sorted(CRDS.glob("*.yaml")), "k8s/crds has no CRD"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=rel)
def test_every_kustomization_renders_valid_objects(kustomized, crd_schemas, folder):
    objs = kustomized[folder]
    assert objs, f"{rel(folder)} renders nothing"
    problems = [f"{ident(o)}: {p}" for o in objs for p in validate_object(o, crd_schemas)]
    assert not problems, "\n".join(problems)
    for o in objs:
        labels = o["metadata"].get("labels", {})
        assert "app.kubernetes.io/name" in labels and "app.kubernetes.io/part-of" in labels, ident(o)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda d: d.name)
def test_applications_point_at_real_sources(kustomized, overlay):
    objs = kustomized[overlay]
    projects = {o["metadata"]["name"]: o for o in objs if o["kind"] == "AppProject"}
    apps = [o for o in objs if o["kind"] == "Application"]
    assert apps and projects
    for app in apps:
        spec = app["spec"]
        project = projects[spec["project"]]["spec"]
        assert spec["source"]["repoURL"] in project["sourceRepos"], ident(app)
        dest = spec["destination"]
        assert any(
            d["namespace"] == dest["namespace"] and d["server"] == dest["server"]
            for d in project["destinations"]
        ), f"{ident(app)}: destination {dest} not allowed by project {spec['project']}"
        source_path = ROOT / spec["source"]["path"]
        assert source_path.is_dir(), f"{ident(app)}: {spec['source']['path']} does not exist"
        assert source_path.resolve() != CRDS and CRDS not in source_path.resolve().parents, (
            f"{ident(app)}: deploys k8s/crds, which holds validation schemas only"
        )
        for values in spec["source"].get("helm", {}).get("valueFiles", []):
            resolved = (source_path / values).resolve()
            assert resolved.is_file() and ROOT in resolved.parents, (
                f"{ident(app)}: values {values} not in the repo"
            )
            assert overlay.name in values, f"{ident(app)}: {overlay.name} uses another environment's values"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda d: d.name)
def test_project_allows_every_kind_its_applications_create(k8s_tools, kustomized, overlay):
    objs = kustomized[overlay]
    project = next(o for o in objs if o["kind"] == "AppProject")["spec"]
    allowed = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
    assert project["clusterResourceWhitelist"] == []
    created: list[dict[str, Any]] = []
    for app in (o for o in objs if o["kind"] == "Application"):
        source = app["spec"]["source"]
        if "helm" in source:
            values = [(ROOT / source["path"] / v).resolve() for v in source["helm"]["valueFiles"]]
            created += render(k8s_tools, values)
        else:
            created += kustomized[ROOT / source["path"]]
    kinds = {(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in created}
    assert kinds <= allowed, f"kinds the project refuses: {kinds - allowed}"
    assert not {o["kind"] for o in created} & {"ClusterRole", "ClusterRoleBinding", "Namespace"}


# ---------------------------------------------------------------- retraining specs


def test_retraining_kustomization_lists_every_spec():
    kust = yaml.safe_load((RETRAINING / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == [p.name for p in SPECS]
    assert SPECS, "no retraining spec committed"
    for spec in SPECS:
        assert (ROOT / "training" / "configs" / spec.name).is_file(), (
            f"{rel(spec)}: no training/configs/{spec.name}"
        )


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_retraining_spec_equals_a_fresh_render(spec):
    """CI check: the committed job is what `pbt train submit --dry-run` renders from its config now
    (re-render with `make retraining-specs` after changing the config)."""
    argv = ["train", "submit", "--config", f"training/configs/{spec.name}", "--dry-run"]
    proc = run([sys.executable, "-m", "pbt.cli.main", *argv], cwd=ROOT)
    assert proc.returncode == 0, f"pbt train submit --dry-run failed:\n{proc.stderr}"
    fresh = load_all(proc.stdout)
    committed = load_all(spec.read_text())
    if committed != fresh:
        diff = difflib.unified_diff(
            yaml.safe_dump_all(committed).splitlines(),
            yaml.safe_dump_all(fresh).splitlines(),
            "committed",
            "fresh render",
            lineterm="",
        )
        pytest.fail(
            f"{rel(spec)} is stale: run `make retraining-specs` and commit the result\n"
            + "\n".join(list(diff)[:60])
        )
    assert [o["kind"] for o in fresh].count("PyTorchJob") == 1


def test_retraining_jobs_follow_the_workload_policy(kustomized):
    jobs = [o for o in kustomized[RETRAINING] if o["kind"] == "PyTorchJob"]
    assert len(jobs) == len(SPECS)
    problems = [p for job in jobs for view in pod_views(job) for p in policy_problems(view)]
    assert not problems, "\n".join(problems)


def test_retraining_jobs_reach_the_production_store(k8s_tools, kustomized):
    """The jobs' store endpoint, bucket and Secret are the ones the production release provides,
    and the MinIO NetworkPolicy lets their pods in."""
    prod = render(k8s_tools, [K8S / "environments" / "production" / "values.yaml"])
    values = yaml.safe_load((K8S / "environments" / "production" / "values.yaml").read_text())
    services = {
        (o["metadata"]["name"], p["port"]) for o in prod if o["kind"] == "Service" for p in o["spec"]["ports"]
    }
    policy = next(o for o in prod if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("minio"))
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    for job in (o for o in kustomized[RETRAINING] if o["kind"] == "PyTorchJob"):
        for view in pod_views(job):
            env = {e["name"]: e for e in view.containers[0]["env"]}
            host, _, port = env["S3_ENDPOINT"]["value"].removeprefix("http://").partition(":")
            assert (host, int(port)) in services, (
                f"{view.owner}: no Service {host}:{port} in the production release"
            )
            assert env["S3_BUCKET"]["value"] == values["store"]["bucket"]
            secret = env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"]
            assert secret == values["store"]["existingSecret"], view.owner
            assert all(view.pod_labels.get(k) == v for k, v in allowed.items()), (
                f"{view.owner}: MinIO refuses it"
            )
            assert job["metadata"]["namespace"] == "pbt"


def test_chart_training_job_agrees_with_pbt_train_submit(k8s_tools):
    """The chart's PyTorchJob template and `pbt train submit` (the committed specs) run training the
    same way: container, command, config mount, rendezvous port and environment."""
    chart_job = next(
        o for o in render(k8s_tools, [CHART / "ci" / "jobs-values.yaml"]) if o["kind"] == "PyTorchJob"
    )
    chart = next(pod_views(chart_job)).containers[0]

    def mounts(container: dict[str, Any]) -> dict[str, str | None]:
        return {m["mountPath"]: m.get("subPath") for m in container["volumeMounts"]}

    for spec in SPECS:
        job = next(o for o in load_all(spec.read_text()) if o["kind"] == "PyTorchJob")
        c = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
        assert (c["name"], c["command"]) == (chart["name"], chart["command"])
        assert c["args"][0] == chart["args"][0] == "-m" and c["args"][2:] == chart["args"][2:]
        assert mounts(c).items() <= mounts(chart).items()
        assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [
            (p["name"], p["containerPort"]) for p in chart["ports"]
        ]
        missing = {e["name"] for e in c["env"]} - {e["name"] for e in chart["env"]}
        assert not missing, f"the chart's PyTorchJob lacks {missing}"


def test_promoted_adapter_comes_from_a_retraining_run(kustomized):
    """Production's agent B serves an adapter that a committed retraining job writes
    (<store_prefix>/<run_id>/adapter, run_id = the job's pbt.io/run-id label)."""
    values = yaml.safe_load((K8S / "environments" / "production" / "values.yaml").read_text())
    b = values["agents"]["roles"]["b"]
    served = next(a for a in b["adapters"] if a["name"] == b["servedAdapter"])
    runs = {
        o["metadata"]["labels"]["pbt.io/run-id"] for o in kustomized[RETRAINING] if o["kind"] == "PyTorchJob"
    }
    assert served["path"] in {f"training/{r}/adapter" for r in runs}, (served, runs)


# ---------------------------------------------------------------- Argo CD health check


def test_argocd_cm_carries_the_lua_health_check(kustomized):
    cm = kustomized[K8S / "argocd" / "config"]
    assert [(o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in cm] == [
        ("ConfigMap", "argocd-cm", "argocd")
    ]
    assert cm[0]["data"][HEALTH_KEY] == LUA.read_text()


def _condition(kind: str, status: str = "True", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": f"PyTorchJob{kind}", "message": message}


def _job(conditions: list[dict[str, str]] | None, replicas: dict | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "j"}}
    if conditions is not None:
        job["status"] = {"conditions": conditions}
        if replicas:
            job["status"]["replicaStatuses"] = replicas
    return job


@pytest.fixture(scope="module")
def health():
    """The Lua script run the way Argo CD runs it (Lua 5.1, like gopher-lua; `obj` global)."""
    lua51 = pytest.importorskip("lupa.lua51")
    script = LUA.read_text()

    def check(obj: dict[str, Any]) -> dict[str, str]:
        runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
        runtime.globals().obj = runtime.table_from(obj, recursive=True)
        result = runtime.execute(script)
        return dict(result.items())

    return check


def test_health_of_each_training_state(health):
    running = {"Master": {"active": 1}, "Worker": {"active": 2, "failed": 0}}
    cases = [
        (_job(None), "Progressing", "Waiting for the training operator"),
        (_job([_condition("Created")]), "Progressing", "Created; pods starting"),
        (
            _job([_condition("Created"), _condition("Running")], running),
            "Progressing",
            "Training (Master 1 active, 0 succeeded, 0 failed; Worker 2 active, 0 succeeded, 0 failed)",
        ),
        (
            _job(
                [
                    _condition("Created"),
                    _condition("Running", "False"),
                    _condition("Restarting", message="pod 1 restarted"),
                ]
            ),
            "Progressing",
            "pod 1 restarted",
        ),
        (
            _job(
                [
                    _condition("Created"),
                    _condition("Running", "False"),
                    _condition("Succeeded", message="done"),
                ]
            ),
            "Healthy",
            "done",
        ),
        (
            _job(
                [_condition("Running", "False"), _condition("Failed", message="OOMKilled")],
                {"Master": {"failed": 1}},
            ),
            "Degraded",
            "OOMKilled (Master 0 active, 0 succeeded, 1 failed)",
        ),
        (_job([_condition("Created"), _condition("Suspended")]), "Suspended", "PyTorchJob suspended"),
        (_job([_condition("Running", "False")]), "Progressing", "Waiting for the training operator"),
    ]
    for obj, status, message in cases:
        got = health(obj)
        assert (got["status"], got["message"]) == (status, message), obj.get("status")


def test_failed_wins_over_running_conditions(health):
    got = health(_job([_condition("Running"), _condition("Failed")]))
    assert got == {"status": "Degraded", "message": "PyTorchJob failed"}


def test_counts_print_as_integers_when_numbers_are_floats(health):
    """Argo CD decodes JSON numbers as floats; the message must still read "1 active"."""
    got = health(_job([_condition("Running")], {"Master": {"active": 1.0, "succeeded": 0.0}}))
    assert got["message"] == "Training (Master 1 active, 0 succeeded, 0 failed)"
