"""Render a `PipelineSpec` as an Argo Workflows ``WorkflowTemplate`` (argoproj.io/v1alpha1).

One template per entry of `pbt.pipeline.steps.STEPS`, run in sequence by a ``steps`` template:
container steps run ``pbt <step argv>``; ``train`` is a resource step that applies a PyTorchJob
whose pods run ``torchrun -m pbt <step argv>`` and waits until its Master succeeded (or fails
with the operator's state). ``init`` gets the spec as a raw input artifact. Each step exports its
recorded store keys as output parameters. The run id is the workflow parameter ``run``.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from pbt.jobs.pytorchjob import CONTAINER_SECURITY_CONTEXT
from pbt.pipeline.spec import PipelineSpec
from pbt.pipeline.steps import STEPS, Step

SPEC_PATH = "/etc/pbt/pipeline.yaml"
OUTPUTS_DIR = "/tmp/pbt-outputs"
RUN_PARAM = "{{workflow.parameters.run}}"
LABELS = {
    "app.kubernetes.io/name": "pbt",
    "app.kubernetes.io/part-of": "pbt",
    "app.kubernetes.io/component": "pipeline",
}


def template_name(spec: PipelineSpec) -> str:
    return f"pbt-retrain-{spec.name}"


def job_name(run: str) -> str:
    return f"{run}-train"


def _store_env(spec: PipelineSpec) -> list[dict[str, Any]]:
    c = spec.cluster
    env: list[dict[str, Any]] = [
        {"name": "S3_ENDPOINT", "value": c.store_endpoint},
        {"name": "S3_BUCKET", "value": c.store_bucket},
        {"name": "HOME", "value": "/tmp"},
        {"name": "PBT_PIPELINE_OUTPUTS", "value": OUTPUTS_DIR},
    ]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": c.store_secret, "key": key}}})
    if c.grpc_token_secret:
        env.append(
            {
                "name": "PBT_GRPC_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": c.grpc_token_secret, "key": "token"}},
            }
        )
    return env


def _security() -> dict[str, Any]:
    return copy.deepcopy(CONTAINER_SECURITY_CONTEXT)


def _container_template(spec: PipelineSpec, step: Step) -> dict[str, Any]:
    tpl: dict[str, Any] = {
        "name": step.name,
        "container": {
            "image": spec.images.steps,
            "command": ["pbt"],
            "args": step.argv(SPEC_PATH, RUN_PARAM),
            "env": _store_env(spec),
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "2", "memory": "4Gi"},
            },
            "securityContext": _security(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "outputs": {
            "parameters": [
                {"name": out, "valueFrom": {"path": f"{OUTPUTS_DIR}/{out}", "default": ""}}
                for out in step.outputs
            ]
        },
    }
    # infrastructure errors (a lost node, an evicted pod) are retried: the step resumes from the store
    tpl["retryStrategy"] = {"limit": 2, "retryPolicy": "OnError"}
    if step.name == "init":
        tpl["inputs"] = {"artifacts": [{"name": "spec", "path": SPEC_PATH, "raw": {"data": spec.to_yaml()}}]}
    return tpl


def pytorchjob_manifest(spec: PipelineSpec, step: Step, run: str) -> dict[str, Any]:
    """The PyTorchJob of the train step (its pods run the step under torchrun)."""
    from pbt.jobs.pytorchjob import JobSpec, render

    t, c = spec.training, spec.cluster
    job = JobSpec(
        name=None,
        namespace=c.namespace,
        image=spec.images.training,
        nproc_per_node=t.nproc_per_node,
        gpus_per_node=t.gpus_per_node,
        cpu=t.cpu,
        memory=t.memory,
        store_secret=c.store_secret,
        store_endpoint=c.store_endpoint,
        store_bucket=c.store_bucket,
        labels={"app.kubernetes.io/part-of": "pbt"},
    )
    _, obj = render("dpo", {"run_id": "pipeline-train"}, job, "")
    obj["metadata"]["name"] = job_name(run)
    obj["metadata"]["labels"]["pbt.io/run-id"] = run
    for replica in obj["spec"]["pytorchReplicaSpecs"].values():
        pod = replica["template"]
        pod["metadata"]["labels"]["pbt.io/run-id"] = run
        pod["spec"]["volumes"] = [v for v in pod["spec"]["volumes"] if v["name"] != "config"]
        for container in pod["spec"]["containers"]:
            container["args"] = ["-m", "pbt", *step.argv(SPEC_PATH, run)]
            container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "config"]
    return obj


def _resource_template(spec: PipelineSpec, step: Step) -> dict[str, Any]:
    manifest = pytorchjob_manifest(spec, step, RUN_PARAM)
    return {
        "name": step.name,
        "resource": {
            # apply: a re-submitted run finds its finished job and goes on (training resumes from the store)
            "action": "apply",
            "setOwnerReference": False,
            "successCondition": "status.replicaStatuses.Master.succeeded > 0",
            "failureCondition": "status.replicaStatuses.Master.failed > 0",
            "manifest": yaml.safe_dump(manifest, sort_keys=False, width=120),
        },
    }


def render_workflow_template(spec: PipelineSpec) -> dict[str, Any]:
    templates: list[dict[str, Any]] = [
        {"name": "pipeline", "steps": [[{"name": s.name, "template": s.name}] for s in STEPS]}
    ]
    for step in STEPS:
        templates.append(
            _resource_template(spec, step) if step.kind == "pytorchjob" else _container_template(spec, step)
        )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {
            "name": template_name(spec),
            "namespace": spec.cluster.namespace,
            "labels": {**LABELS, "pbt.io/pipeline": spec.name},
            "annotations": {"pbt.io/pipeline-version": str(spec.version)},
        },
        "spec": {
            "entrypoint": "pipeline",
            "serviceAccountName": spec.cluster.service_account,
            "arguments": {"parameters": [{"name": "run", "value": spec.default_run}]},
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
            },
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "templates": templates,
        },
    }


def to_yaml(*objects: dict[str, Any]) -> str:
    """Multi-line strings (the spec, the job manifest) as literal blocks."""
    from pbt.jobs.pytorchjob import to_yaml as block_yaml

    return block_yaml(*objects)


def render_sync_workflow(spec: PipelineSpec) -> dict[str, Any]:
    """The Workflow that starts a run when Argo CD syncs a change (a PostSync hook).

    The run id is ``<name>-v<version>``: a commit that bumps the spec's version starts a new run; a
    sync without one re-submits the same run, which finds every step recorded and ends at once.
    """
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            # a fixed name: Argo CD deletes the previous run's hook before creating the next one
            "name": f"{template_name(spec)}-sync",
            "namespace": spec.cluster.namespace,
            "labels": {**LABELS, "pbt.io/pipeline": spec.name},
            "annotations": {
                "argocd.argoproj.io/hook": "PostSync",
                "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
            },
        },
        "spec": {
            "workflowTemplateRef": {"name": template_name(spec)},
            "arguments": {"parameters": [{"name": "run", "value": spec.default_run}]},
        },
    }
