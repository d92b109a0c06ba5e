"""charts/pbt: lint, render every scenario (defaults, ci/*-values.yaml, k8s/environments), validate
every object, workload policy, references, isolation, RBAC, documented values, switches."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from k8s_checks import (
    CHART,
    CI_VALUES,
    SCENARIOS,
    STANDARD_LABELS,
    WORKLOAD_KINDS,
    by_kind,
    ident,
    pod_labels,
    pod_views,
    policy_problems,
    render,
    run,
    scenario_values,
    selects,
    validate_object,
)

pytestmark = pytest.mark.k8s

K8S_OBJECT_VALUES = {"resources", "podSecurityContext", "containerSecurityContext"}


def test_ci_scenarios_cover_the_issue():
    names = {f.name for f in CI_VALUES}
    assert {
        "cpu-minimal-values.yaml",
        "gpu-agents-values.yaml",
        "external-s3-values.yaml",
        "jobs-values.yaml",
    } <= names


def test_helm_lint_strict(k8s_tools):
    for files in SCENARIOS.values():
        cmd = [k8s_tools.helm, "lint", CHART, "--strict", "--kube-version", "1.33.0"]
        for f in files:
            cmd += ["-f", f]
        proc = run(cmd)
        assert proc.returncode == 0, f"helm lint {files} failed:\n{proc.stdout}\n{proc.stderr}"
        assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_object_validates(rendered, crd_schemas, scenario):
    objs = rendered[scenario]
    assert objs, f"{scenario}: nothing rendered"
    problems = []
    for obj in objs:
        if obj["kind"] == "ServiceMonitor":
            continue  # no CRD schema available offline; checked in test_service_monitor
        problems += [f"{ident(obj)}: {p}" for p in validate_object(obj, crd_schemas)]
    assert not problems, f"{scenario}: invalid objects:\n" + "\n".join(problems)


def test_oldest_supported_kubernetes(rendered, crd_schemas):
    """The chart's kubeVersion floor: every core object also validates against that version."""
    floor = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    version = re.match(r">=(\d+\.\d+\.\d+)", floor).group(1)
    problems = [
        f"{scenario} {ident(o)}: {p}"
        for scenario in ("default", "jobs", "gpu-agents")
        for o in rendered[scenario]
        if o["kind"] != "ServiceMonitor"
        for p in validate_object(o, crd_schemas, version=version)
    ]
    assert not problems, f"not valid on Kubernetes {version}:\n" + "\n".join(problems)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_workload_policy(rendered, scenario):
    objs = rendered[scenario]
    views = [v for o in objs if o["kind"] in WORKLOAD_KINDS for v in pod_views(o)]
    assert views, f"{scenario}: no workloads rendered"
    problems = [p for v in views for p in policy_problems(v)]
    assert not problems, f"{scenario}: policy violations:\n" + "\n".join(problems)
    for rt in by_kind(objs, "ServingRuntime"):
        for c in rt["spec"]["containers"]:
            tag = c["image"].rsplit(":", 1)[-1]
            assert ":" in c["image"] and tag != "latest", f"{ident(rt)}: unpinned image {c['image']}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_standard_labels_on_every_object(rendered, scenario):
    missing = {
        ident(o): [k for k in STANDARD_LABELS if k not in o["metadata"].get("labels", {})]
        for o in rendered[scenario]
    }
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"{scenario}: objects without standard labels: {missing}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_references_resolve(rendered, scenario):
    """Services select pods; ServiceAccounts, ConfigMaps and Secrets referenced are rendered
    (or are the user's existingSecret)."""
    objs = rendered[scenario]
    values = scenario_values(scenario)
    existing = {
        values["store"]["existingSecret"],
        values["grpc"]["authSecret"],
        values["grpc"]["tlsSecret"],
    } - {""}
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    pods = pod_labels(objs)
    problems = []
    for svc in by_kind(objs, "Service"):
        sel = svc["spec"]["selector"]
        if not any(selects(sel, labels) for _, labels in pods):
            problems.append(f"{ident(svc)} selects no pod: {sel}")
    for o in objs:
        if o["kind"] not in WORKLOAD_KINDS:
            continue
        for view in pod_views(o):
            sa = view.pod.get("serviceAccountName")
            if sa and ("ServiceAccount", sa) not in names:
                problems.append(f"{view.owner}: ServiceAccount {sa} not rendered")
            for vol in view.pod.get("volumes", []):
                cm = vol.get("configMap", {}).get("name")
                if cm and ("ConfigMap", cm) not in names:
                    problems.append(f"{view.owner}: ConfigMap {cm} not rendered")
                secret = vol.get("secret", {}).get("secretName")
                if secret and ("Secret", secret) not in names and secret not in existing:
                    problems.append(f"{view.owner}: Secret volume {secret} neither rendered nor existing")
            for c in view.containers:
                for env in c.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref and ("Secret", ref["name"]) not in names:
                        if ref["name"] not in existing:
                            problems.append(
                                f"{view.owner}: Secret {ref['name']} neither rendered nor existing"
                            )
    assert not problems, f"{scenario}:\n" + "\n".join(problems)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_network_policies_isolate_agents_and_store(rendered, scenario):
    objs = rendered[scenario]
    pods = pod_labels(objs)
    policies = {p["metadata"]["name"].rsplit("-", 1)[-1]: p for p in by_kind(objs, "NetworkPolicy")}
    agents = [(o, labels) for o, labels in pods if labels.get("app.kubernetes.io/component") == "agent"]
    if agents:
        pol = policies["agents"]
        assert all(selects(pol["spec"]["podSelector"]["matchLabels"], labels) for _, labels in agents)
        allowed = pol["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        clients = {labels["app.kubernetes.io/component"] for _, labels in pods if selects(allowed, labels)}
        assert clients and clients <= {"orchestrator", "evaluator", "generation"}, clients
    if any(o["kind"] == "StatefulSet" for o in objs):
        pol = policies["minio"]
        allowed = pol["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        clients = {labels["app.kubernetes.io/component"] for _, labels in pods if selects(allowed, labels)}
        assert "orchestrator" in clients and "minio" not in clients, clients


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rbac_least_privilege(rendered, scenario):
    objs = rendered[scenario]
    assert not by_kind(objs, "ClusterRole") and not by_kind(objs, "ClusterRoleBinding")
    creators = []
    for role in by_kind(objs, "Role"):
        for rule in role["rules"]:
            if "pytorchjobs" in rule["resources"] and "create" in rule["verbs"]:
                creators.append(role["metadata"]["name"])
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], ident(role)
    assert all(n.endswith("job-submitter") for n in creators), creators
    for rb in by_kind(objs, "RoleBinding"):
        assert [s["name"] for s in rb["subjects"]] == [rb["roleRef"]["name"]], ident(rb)
    for sa in by_kind(objs, "ServiceAccount"):
        if not sa["metadata"]["name"].endswith("job-submitter"):
            assert sa.get("automountServiceAccountToken") is False, ident(sa)
    for o in objs:
        if o["kind"] in WORKLOAD_KINDS:
            for view in pod_views(o):
                assert view.pod.get("automountServiceAccountToken") is False, (
                    f"{view.owner} mounts an API token"
                )


def test_credentials_never_in_values(rendered):
    for scenario, objs in rendered.items():
        secrets = by_kind(objs, "Secret")
        if scenario_values(scenario)["store"]["existingSecret"]:
            assert not secrets, f"{scenario}: must not generate a Secret with existingSecret set"
        for s in secrets:
            assert set(s["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
            assert "stringData" not in s
    # generated credentials are random per install, not a constant of the chart
    a = by_kind(rendered["default"], "Secret")[0]["data"]
    b = by_kind(rendered["cpu-minimal"], "Secret")[0]["data"]
    assert a != b


def test_names_fit_dns_labels_with_a_long_release(k8s_tools):
    objs = render(k8s_tools, sets=["fullnameOverride=" + "x" * 63])
    for o in objs:
        assert len(o["metadata"]["name"]) <= 63, ident(o)
    for isvc in by_kind(objs, "InferenceService"):
        assert len(isvc["metadata"]["name"] + "-predictor") <= 63, ident(isvc)


def test_values_documented_and_schema_complete():
    """Every value in values.yaml has a comment and a place in values.schema.json."""
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    lines = (CHART / "values.yaml").read_text().splitlines()

    def comment_above(i: int) -> str:
        block = []
        while i > 0 and lines[i - 1].lstrip().startswith("#"):
            i -= 1
            block.append(lines[i])
        return "\n".join(block)

    keys = []  # (line index, indent, key, comment block right above)
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        keys.append((i, len(line) - len(stripped), stripped.split(":")[0], comment_above(i)))
    undocumented = []
    for n, (i, indent, key, comment) in enumerate(keys):
        if lines[i].rstrip().endswith(":") and n + 1 < len(keys) and keys[n + 1][1] > indent:
            continue  # a section header: its values carry the documentation
        ancestors, level = [], indent
        for _i, pindent, pkey, pcomment in reversed(keys[:n]):
            if pindent < level:
                ancestors.append((pkey, pcomment))
                level = pindent
        # documented: a comment right above, or a block comment of an ancestor naming the key
        # (agent roles), or a field of a Kubernetes object given verbatim (resources, security contexts)
        documented = (
            bool(comment)
            or any(re.search(rf"\b{re.escape(key)}\b", pc) for _k, pc in ancestors)
            or any(pk in K8S_OBJECT_VALUES for pk, _c in ancestors)
        )
        if not documented:
            undocumented.append(f"values.yaml:{i + 1}: {lines[i].strip()}")
    assert not undocumented, "undocumented values:\n" + "\n".join(undocumented)

    def walk(values: Any, node: dict[str, Any], path: str) -> list[str]:
        if not isinstance(values, dict) or "properties" not in node:
            return []
        missing = []
        for key, value in values.items():
            if key not in node["properties"]:
                missing.append(f"{path}{key}")
            else:
                missing += walk(value, node["properties"][key], f"{path}{key}.")
        return missing

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert walk(values, schema, "") == []


def test_notes_say_how_to_reach_and_check_the_install(k8s_tools):
    # `helm install --dry-run=client` renders NOTES.txt without a cluster (helm template does not)
    cmd = [k8s_tools.helm, "install", "pbt", CHART, "-n", "pbt", "--dry-run=client"]
    proc = run(cmd + ["-f", CHART / "ci" / "jobs-values.yaml"])
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "port-forward svc/pbt-orchestrator 50051:50051" in notes
    assert "grpc.health.v1.Health/Check" in notes
    assert "http://pbt-agent-a-predictor.pbt.svc.cluster.local/openai/v1" in notes
    assert "get pytorchjob pbt-train-pbt-8b-r1" in notes and "get job pbt-trees-nq-2026-11" in notes


TOGGLES = {
    "no-orchestrator": ["orchestrator.enabled=false"],
    "no-evaluator": ["evaluator.enabled=false"],
    "no-network-policy-no-rbac": ["networkPolicy.enabled=false", "rbac.jobSubmitter=false"],
    "no-agents": [
        "agents.roles.a.enabled=false",
        "agents.roles.b.enabled=false",
        "agents.roles.extractor.enabled=false",
        "runConfig.extraction.mode=rules",
    ],
    "serverless-agents": ["agents.deploymentMode=Serverless", "agents.roles.a.minReplicas=0"],
    "no-pdb": [
        "orchestrator.podDisruptionBudget.enabled=false",
        "evaluator.podDisruptionBudget.enabled=false",
    ],
}


@pytest.mark.parametrize("sets", TOGGLES.values(), ids=TOGGLES.keys())
def test_switches_render_valid_objects(k8s_tools, crd_schemas, sets):
    objs = render(k8s_tools, sets=sets)
    problems = [f"{ident(o)}: {p}" for o in objs for p in validate_object(o, crd_schemas)]
    problems += [
        p for o in objs if o["kind"] in WORKLOAD_KINDS for v in pod_views(o) for p in policy_problems(v)
    ]
    assert not problems, "\n".join(problems)
