"""One shape for the training job: the chart's PyTorchJob (templates/training.yaml) equals what the
owner of the job's shape, `pbt.jobs.pytorchjob.render` (`pbt train submit`), renders from the same
settings, in every field that decides how the pods run."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from k8s_checks import CHART, render, scenario_values

from pbt.jobs.pytorchjob import CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT, JobSpec
from pbt.jobs.pytorchjob import render as render_job

pytestmark = pytest.mark.k8s

SCENARIOS = {"jobs": [CHART / "ci" / "jobs-values.yaml"]}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _python_job(values: dict[str, Any], chart_job: dict[str, Any]) -> dict[str, Any]:
    """The PyTorchJob `pbt train submit` renders with the chart's settings."""
    t = values["training"]
    chart_pod = chart_job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    env = _env(chart_pod["containers"][0])
    tag = (
        t["image"]["tag"]
        or values["image"]["tag"]
        or yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    )
    requests, limits = t["resources"]["requests"], t["resources"]["limits"]
    job = JobSpec(
        namespace="pbt",
        image=f"{values['image']['registry'].rstrip('/')}/{t['image']['repository']}:{tag}",
        image_pull_policy=values["image"]["pullPolicy"],
        num_nodes=t["workers"] + 1,
        nproc_per_node=t["nprocPerNode"],
        gpus_per_node=t["gpusPerNode"],
        cpu=str(requests["cpu"]),
        cpu_limit=str(limits["cpu"]),
        memory=requests["memory"],
        memory_limit=limits["memory"],
        store_endpoint=env["S3_ENDPOINT"],
        store_bucket=values["store"]["bucket"],
        store_secure=env["S3_SECURE"] == "true",
        store_region=values["store"]["region"],
        store_secret=env["AWS_ACCESS_KEY_ID"]["secretKeyRef"]["name"],
        service_account=chart_pod["serviceAccountName"],
        node_selector=t["nodeSelector"],
        tolerations=t["tolerations"],
        backoff_limit=t["backoffLimit"],
        ttl_seconds_after_finished=t["ttlSecondsAfterFinished"],
    )
    stage = t["module"].removeprefix("training.")
    _, obj = render_job(stage, t["config"], job, yaml.safe_dump(t["config"]))
    return obj


def _shape(job: dict[str, Any]) -> dict[str, Any]:
    """The fields that decide how the pods run: names of the job, its ConfigMap and labels aside."""
    job = copy.deepcopy(job)
    replicas = {}
    for kind, replica in job["spec"]["pytorchReplicaSpecs"].items():
        pod = replica["template"]["spec"]
        for volume in pod["volumes"]:
            if "configMap" in volume:
                volume["configMap"]["name"] = "<config>"
        labels = replica["template"]["metadata"]["labels"]
        replicas[kind] = {
            "replicas": replica["replicas"],
            "restartPolicy": replica["restartPolicy"],
            "store-client label": labels.get("pbt.io/store-client"),
            "pod": pod,
        }
    return {
        "nprocPerNode": job["spec"]["nprocPerNode"],
        "runPolicy": job["spec"]["runPolicy"],
        "replicas": replicas,
    }


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_job_equals_the_python_render(k8s_tools, scenario):
    values = scenario_values(scenario)
    chart_job = next(o for o in render(k8s_tools, SCENARIOS[scenario]) if o["kind"] == "PyTorchJob")
    chart, python = _shape(chart_job), _shape(_python_job(values, chart_job))
    assert set(chart["replicas"]) == set(python["replicas"]) == {"Master", "Worker"}
    for kind in chart["replicas"]:
        c, p = chart["replicas"][kind], python["replicas"][kind]
        for key in ("replicas", "restartPolicy", "store-client label"):
            assert c[key] == p[key], f"{kind}.{key}: chart {c[key]!r}, python {p[key]!r}"
        for key in sorted(set(c["pod"]) | set(p["pod"])):
            if key != "containers":
                assert c["pod"].get(key) == p["pod"].get(key), f"{kind} pod {key}"
        (cc,), (pc,) = c["pod"]["containers"], p["pod"]["containers"]
        for key in sorted(set(cc) | set(pc)):
            if key == "env":
                assert [e["name"] for e in cc["env"]] == [e["name"] for e in pc["env"]], f"{kind} env names"
            assert cc.get(key) == pc.get(key), f"{kind} container {key}"
    assert chart["nprocPerNode"] == python["nprocPerNode"]
    assert chart["runPolicy"] == python["runPolicy"]
    assert chart == python


def test_defaults_agree():
    """The chart's defaults (shm, security contexts) are the renderer's."""
    values = scenario_values("default")
    job = JobSpec()
    assert values["training"]["shmSize"] == job.shm_size
    assert values["podSecurityContext"] == job.pod_security_context == POD_SECURITY_CONTEXT
    assert values["containerSecurityContext"] == job.container_security_context == CONTAINER_SECURITY_CONTEXT
