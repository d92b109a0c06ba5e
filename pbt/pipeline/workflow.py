"""Render a `PipelineSpec` as an Argo Workflows ``WorkflowTemplate`` (argoproj.io/v1alpha1).

One template per entry of `pbt.pipeline.steps.steps_for(spec)`, run in sequence by a ``steps``
template: container steps run ``pbt <step argv>``; ``train`` is a resource step that applies a
PyTorchJob whose pods run ``torchrun -m pbt <step argv>`` and waits until its Master succeeded (or
fails with the operator's state). With ``trees.indexed_job``, ``trees`` is two steps: an Indexed
Job whose pod i runs ``pbt <step argv> --shard i/N``, then the step itself, which finds every
tree built and records them. ``load`` mounts ``serving.adapter_volume``; ``push`` mounts the
``promotion.git_secret``. ``init`` gets the spec as a raw input artifact. Each step exports its
recorded store keys as output parameters. The run id is the workflow parameter ``run``.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from pbt.jobs.pytorchjob import CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT
from pbt.pipeline.spec import PipelineSpec
from pbt.pipeline.steps import Step, steps_for

SPEC_PATH = "/etc/pbt/pipeline.yaml"
OUTPUTS_DIR = "/tmp/pbt-outputs"
RUN_PARAM = "{{workflow.parameters.run}}"
DATA_PATH = "/data"
GIT_SECRET_PATH = "/etc/pbt/git"
#: git reads its credential from the mounted Secret (GIT_CONFIG_* needs git >= 2.31)
GIT_ENV = (
    ("GIT_CONFIG_COUNT", "1"),
    ("GIT_CONFIG_KEY_0", "credential.helper"),
    ("GIT_CONFIG_VALUE_0", f"store --file={GIT_SECRET_PATH}/credentials"),
    ("GIT_TERMINAL_PROMPT", "0"),
)
LABELS = {
    "app.kubernetes.io/name": "pbt",
    "app.kubernetes.io/part-of": "pbt",
    "app.kubernetes.io/component": "pipeline",
}


def template_name(spec: PipelineSpec) -> str:
    return f"pbt-retrain-{spec.name}"


def job_name(run: str) -> str:
    return f"{run}-train"


def trees_job_name(run: str) -> str:
    return f"{run}-trees"


def _volumes(spec: PipelineSpec) -> list[dict[str, Any]]:
    """The workflow's volumes; a pod gets those its containers mount."""
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if spec.cluster.data_claim:
        volumes.append(
            {
                "name": "data",
                "persistentVolumeClaim": {"claimName": spec.cluster.data_claim, "readOnly": True},
            }
        )
    if spec.serving.adapter_volume:
        volumes.append(
            {"name": "adapters", "persistentVolumeClaim": {"claimName": spec.serving.adapter_volume.claim}}
        )
    if spec.promotion.git_secret:
        volumes.append(
            {"name": "git", "secret": {"secretName": spec.promotion.git_secret, "defaultMode": 0o440}}
        )
    return volumes


def _mounts(spec: PipelineSpec, step: Step) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if step.name == "trees" and spec.cluster.data_claim:
        mounts.append({"name": "data", "mountPath": DATA_PATH, "readOnly": True})
    if step.name == "load" and spec.serving.adapter_volume:
        mounts.append({"name": "adapters", "mountPath": spec.serving.adapter_volume.mount_path})
    if step.name == "push":
        mounts.append({"name": "git", "mountPath": GIT_SECRET_PATH, "readOnly": True})
    return mounts


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


def _container_template(spec: PipelineSpec, step: Step, name: str | None = None) -> dict[str, Any]:
    env = _store_env(spec)
    if step.name == "push":
        env += [{"name": k, "value": v} for k, v in GIT_ENV]
    tpl: dict[str, Any] = {
        "name": name or step.name,
        "container": {
            "image": spec.images.steps,
            "command": ["pbt"],
            "args": step.argv(SPEC_PATH, RUN_PARAM),
            "env": env,
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "2", "memory": "4Gi"},
            },
            "securityContext": _security(),
            "volumeMounts": _mounts(spec, step),
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


def trees_job_manifest(spec: PipelineSpec, step: Step, run: str) -> dict[str, Any]:
    """The Indexed Job of the trees step: pod i runs the step's command line with ``--shard i/N``
    (the chart's generation Job, templates/generation.yaml, runs its pods the same way)."""
    job = spec.trees.indexed_job
    assert job is not None
    labels = {**LABELS, "app.kubernetes.io/component": "generation", "pbt.io/run-id": run}
    env = [
        {
            "name": "SHARD_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        },
        *_store_env(spec),
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": trees_job_name(run), "namespace": spec.cluster.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": job.shards,
            "parallelism": job.parallelism or job.shards,
            "backoffLimit": job.backoff_limit,
            "template": {
                "metadata": {
                    "labels": {**labels, "pbt.io/agent-client": "true", "pbt.io/store-client": "true"}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
                    "containers": [
                        {
                            "name": "trees",
                            "image": spec.images.steps,
                            "command": ["pbt"],
                            "args": [*step.argv(SPEC_PATH, run), "--shard", f"$(SHARD_INDEX)/{job.shards}"],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": job.cpu, "memory": job.memory},
                                "limits": {"cpu": job.cpu, "memory": job.memory},
                            },
                            "securityContext": _security(),
                            "volumeMounts": _mounts(spec, step),
                        }
                    ],
                    "volumes": [
                        v for v in _volumes(spec) if v["name"] in {m["name"] for m in _mounts(spec, step)}
                    ],
                },
            },
        },
    }


def _trees_job_templates(spec: PipelineSpec, step: Step) -> list[dict[str, Any]]:
    """``trees``: the Indexed Job (succeeded when every shard did; failed when the Job ran out of
    retries: ``status.failed > backoffLimit`` is the Job controller's own rule), then the step."""
    job = spec.trees.indexed_job
    assert job is not None
    shards, record = f"{step.name}-shards", f"{step.name}-record"
    return [
        {
            "name": step.name,
            "steps": [[{"name": "shards", "template": shards}], [{"name": "record", "template": record}]],
            "outputs": {
                "parameters": [
                    {
                        "name": out,
                        "valueFrom": {"parameter": f"{{{{steps.record.outputs.parameters.{out}}}}}"},
                    }
                    for out in step.outputs
                ]
            },
        },
        {
            "name": shards,
            "resource": {
                "action": "apply",
                "setOwnerReference": False,
                "successCondition": f"status.succeeded > {job.shards - 1}",
                "failureCondition": f"status.failed > {job.backoff_limit}",
                "manifest": yaml.safe_dump(
                    trees_job_manifest(spec, step, RUN_PARAM), sort_keys=False, width=120
                ),
            },
        },
        _container_template(spec, step, name=record),
    ]


def step_templates(spec: PipelineSpec, step: Step) -> list[dict[str, Any]]:
    """The Argo templates of one step; the first is the one the pipeline calls."""
    if step.kind == "pytorchjob":
        return [_resource_template(spec, step)]
    if step.kind == "indexed_job":
        return _trees_job_templates(spec, step)
    return [_container_template(spec, step)]


def render_workflow_template(spec: PipelineSpec) -> dict[str, Any]:
    steps = steps_for(spec)
    templates: list[dict[str, Any]] = [
        {"name": "pipeline", "steps": [[{"name": s.name, "template": s.name}] for s in steps]}
    ]
    for step in steps:
        templates += step_templates(spec, step)
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
            "securityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
            "volumes": _volumes(spec),
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
