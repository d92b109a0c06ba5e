"""Render (and submit) a Kubeflow ``kubeflow.org/v1`` PyTorchJob for a training config.

The job has a Master and ``num_nodes - 1`` Workers; each pod runs
``torchrun -m training.<stage> --config /etc/pbt/training.yaml``, and torchrun takes the
rendezvous settings (PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR,
PET_MASTER_PORT) from the environment the training operator injects. The config file travels in
a ConfigMap; store credentials come from a Secret (the same keys as the Helm chart's store
Secret). Objects are built with the ``kubeflow-training`` SDK's models and the ``kubernetes``
client's models, and serialised with the kubernetes ``ApiClient``.

The job settings live in the training YAML under ``job:`` (see `JobSpec`); the training entry
point ignores that block. This renderer owns the job's shape: the Helm chart's
``templates/training.yaml`` renders the same pods (``tests/k8s/test_training_job_parity.py``).
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from pbt.errors import UnavailableError, ValidationError, from_pydantic
from pbt.prefs.record import TRAIN_MODES, check_mode
from pbt.safeload import load_yaml, read_text

log = logging.getLogger(__name__)

STAGES = ("dpo", "sft")
CONFIG_MOUNT = "/etc/pbt/training.yaml"
CONFIG_KEY = "training.yaml"
MASTER_PORT = 23456
_DNS1123 = re.compile(r"[^a-z0-9-]+")
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


class JobSpec(BaseModel):
    """Settings of the PyTorchJob (the ``job:`` block of a training config)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, description="Job name (DNS-1123, at most 63 characters). Default: from run_id."
    )
    namespace: str = Field("default", description="Namespace of the job and its ConfigMap.")
    image: str = Field("pbt-training:latest", description="Training image (has this project and torchrun).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    num_nodes: int = Field(1, ge=1, description="Pods in all: 1 Master + (num_nodes - 1) Workers.")
    nproc_per_node: int | Literal["auto", "cpu", "gpu"] = Field(
        1, description="Processes per pod (torchrun --nproc_per_node); usually the GPUs per pod."
    )
    gpus_per_node: int = Field(1, ge=0, description="GPUs requested per pod (0: CPU training with gloo).")
    gpu_resource: str = Field("nvidia.com/gpu", description="Extended resource name of a GPU.")
    cpu: str | None = Field(None, description="CPU request per pod, e.g. '8'.")
    cpu_limit: str | None = Field(None, description="CPU limit per pod, e.g. '16' (default: none).")
    memory: str | None = Field(None, description="Memory request per pod, e.g. '64Gi'.")
    memory_limit: str | None = Field(None, description="Memory limit per pod (default: the request).")
    shm_size: str = Field("16Gi", description="Size of /dev/shm (NCCL and dataloaders need more than 64M).")
    pod_security_context: dict[str, Any] = Field(
        default_factory=lambda: dict(POD_SECURITY_CONTEXT),
        description="Pod securityContext (default: non-root 10001, seccomp RuntimeDefault; the chart's).",
    )
    container_security_context: dict[str, Any] = Field(
        default_factory=lambda: dict(CONTAINER_SECURITY_CONTEXT),
        description="Container securityContext (default: read-only root, no escalation, drop ALL).",
    )
    store_secret: str = Field(
        "pbt-store", description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the store."
    )
    store_endpoint: str | None = Field(
        None, description="S3_ENDPOINT in the pods, e.g. 'http://pbt-minio:9000'."
    )
    store_bucket: str = Field("pbt", description="S3_BUCKET in the pods.")
    store_region: str = Field("us-east-1", description="AWS_DEFAULT_REGION in the pods (MinIO ignores it).")
    store_secure: bool = Field(False, description="S3_SECURE in the pods (TLS to the store).")
    service_account: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    args: list[str] = Field(
        default_factory=list, description="Extra command-line overrides for the entry point."
    )
    labels: dict[str, str] = Field(default_factory=dict)
    backoff_limit: int = Field(
        3, ge=0, description="Pod restarts before the job fails (resumes from the store)."
    )
    ttl_seconds_after_finished: int | None = Field(None, ge=0)
    allow_local_paths: bool = Field(
        False, description="Accept local 'pairs'/'base_model' paths (only right with a volume that has them)."
    )

    @field_validator("name")
    @classmethod
    def _dns_name(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", v)):
            raise ValueError(f"{v!r} is not a DNS-1123 label (lowercase letters, digits, '-', at most 63)")
        return v


#: what the pod uses when a training YAML names no mode / no seed (training's `DataArguments.mode`
#: and transformers' `TrainingArguments.seed`; tests/unit/test_train_config.py holds them equal)
DEFAULT_MODE = "pbt"
DEFAULT_SEED = 42


def run_id_for(stage: str, mode: str, seed: int, explicit: str | None = None) -> str:
    """A training run's id: `explicit` with ``{mode}``/``{seed}`` expanded, else ``<stage>-<mode>-seed<seed>``."""
    return expand_placeholders(explicit, mode, seed) or f"{stage}-{mode}-seed{seed}"


def expand_placeholders(value: str | None, mode: str, seed: int) -> str | None:
    """``{mode}`` and ``{seed}`` in run_id and base_model, so one preset serves every variant and
    seed (``base_model: store:training/sft-llama3-8b-{mode}/merged``: each DPO variant from its
    own SFT model)."""
    if value is None:
        return None
    return value.replace("{mode}", mode).replace("{seed}", str(seed))


def check_config(config: dict[str, Any], location: str | None = None) -> None:
    """The checks of a training YAML that need no parser: what `pbt train submit` refuses before
    rendering a job (a value the pod would refuse later)."""
    if "mode" in config:
        check_mode(config["mode"], TRAIN_MODES, location=location)


def _load_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValidationError(f"config file not found: {path}", field="config")
    config = load_yaml(read_text(path, "config file"), str(path))
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationError("must contain a YAML mapping of option names to values", location=str(path))
    return config


def job_name(run_id: str) -> str:
    name = _DNS1123.sub("-", run_id.lower()).strip("-")
    return (name or "pbt-train")[:63].rstrip("-")


def load_job_config(path: str | Path) -> tuple[str, dict[str, Any], JobSpec, str]:
    """Read a training YAML with its ``job:`` block; returns (stage, config, job, raw text)."""
    path = Path(path)
    config = _load_config(path)
    stage = config.get("stage", "dpo")
    if stage not in STAGES:
        raise ValidationError(f"must be one of {STAGES}, got {stage!r}", field="stage", location=str(path))
    check_config(config, str(path))
    try:
        job = JobSpec(**(config.get("job") or {}))
    except PydanticValidationError as exc:
        raise from_pydantic(exc, prefix="job.", location=str(path)) from None
    if not job.store_endpoint:
        raise ValidationError(
            "is required: the pods reach the object store through it (e.g. http://<release>-minio:9000)",
            field="job.store_endpoint",
            location=str(path),
        )
    for key in ("pairs", "base_model"):
        value = str(config.get(key) or "")
        if not value:
            raise ValidationError("is required in a submitted config", field=key, location=str(path))
        if not job.allow_local_paths and not value.startswith(("s3://", "store:")) and key == "pairs":
            raise ValidationError(
                f"{value!r} is a local path, which the training pods do not have; use store:<key> or s3://... "
                "(or set job.allow_local_paths with a volume that holds it)",
                field=key,
                location=str(path),
            )
    return stage, config, job, path.read_text(encoding="utf-8")


def render(stage: str, config: dict[str, Any], job: JobSpec, config_text: str) -> tuple[dict, dict]:
    """Build the ConfigMap and the PyTorchJob as plain dicts (ready for YAML or the API)."""
    from kubeflow.training import models as kf
    from kubernetes import client as k8s

    mode, seed = config.get("mode", DEFAULT_MODE), config.get("seed", DEFAULT_SEED)
    run_id = run_id_for(stage, mode, seed, config.get("run_id"))
    name = job.name or job_name(run_id)
    labels = {
        "app.kubernetes.io/name": "pbt",
        "app.kubernetes.io/component": "training",
        "pbt.io/run-id": job_name(run_id),
        **job.labels,
    }
    cm_name = f"{name[:56].rstrip('-')}-config"
    config_map = k8s.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=k8s.V1ObjectMeta(name=cm_name, namespace=job.namespace, labels=labels),
        data={CONFIG_KEY: config_text},
    )
    env = [
        k8s.V1EnvVar(name="S3_BUCKET", value=job.store_bucket),
        k8s.V1EnvVar(name="S3_SECURE", value=str(job.store_secure).lower()),
        k8s.V1EnvVar(name="AWS_DEFAULT_REGION", value=job.store_region),
    ]
    if job.store_endpoint:  # always set for jobs from load_job_config
        env.insert(0, k8s.V1EnvVar(name="S3_ENDPOINT", value=job.store_endpoint))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.append(
            k8s.V1EnvVar(
                name=key,
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=job.store_secret, key=key)
                ),
            )
        )
    env += [
        k8s.V1EnvVar(name="HOME", value="/tmp"),
        k8s.V1EnvVar(name="HF_HOME", value="/tmp/hf"),
        k8s.V1EnvVar(name="PBT_WORK_DIR", value="/tmp/pbt-runs"),
    ]
    env += [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(job.env.items())]
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if job.cpu:
        requests["cpu"] = job.cpu
    if job.cpu_limit:
        limits["cpu"] = job.cpu_limit
    if job.memory:
        requests["memory"] = job.memory
    if job.memory_limit or job.memory:
        limits["memory"] = job.memory_limit or job.memory
    if job.gpus_per_node:
        requests[job.gpu_resource] = limits[job.gpu_resource] = str(job.gpus_per_node)
    container = k8s.V1Container(
        name="pytorch",  # the training operator looks for this container name
        image=job.image,
        image_pull_policy=job.image_pull_policy,
        command=["torchrun"],
        args=["-m", f"training.{stage}", "--config", CONFIG_MOUNT, *job.args],
        env=env,
        ports=[k8s.V1ContainerPort(name="pytorchjob-port", container_port=MASTER_PORT, protocol="TCP")],
        resources=k8s.V1ResourceRequirements(requests=requests or None, limits=limits or None),
        volume_mounts=[
            k8s.V1VolumeMount(name="config", mount_path=CONFIG_MOUNT, sub_path=CONFIG_KEY, read_only=True),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
        ],
        security_context=job.container_security_context,
    )
    pod = k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels={**labels, "pbt.io/store-client": "true"}),
        spec=k8s.V1PodSpec(
            containers=[container],
            service_account_name=job.service_account,
            automount_service_account_token=False,
            security_context=job.pod_security_context,
            node_selector=job.node_selector or None,
            tolerations=[k8s.V1Toleration(**_snake(t)) for t in job.tolerations] or None,
            volumes=[
                k8s.V1Volume(name="config", config_map=k8s.V1ConfigMapVolumeSource(name=cm_name)),
                k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
                k8s.V1Volume(
                    name="dshm",
                    empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=job.shm_size),
                ),
            ],
        ),
    )
    replicas = {"Master": kf.KubeflowOrgV1ReplicaSpec(replicas=1, restart_policy="OnFailure", template=pod)}
    if job.num_nodes > 1:
        replicas["Worker"] = kf.KubeflowOrgV1ReplicaSpec(
            replicas=job.num_nodes - 1, restart_policy="OnFailure", template=pod
        )
    pytorch_job = kf.KubeflowOrgV1PyTorchJob(
        api_version="kubeflow.org/v1",
        kind="PyTorchJob",
        metadata=k8s.V1ObjectMeta(name=name, namespace=job.namespace, labels=labels),
        spec=kf.KubeflowOrgV1PyTorchJobSpec(
            nproc_per_node=str(job.nproc_per_node),
            pytorch_replica_specs=replicas,
            run_policy=kf.KubeflowOrgV1RunPolicy(
                clean_pod_policy="None",
                backoff_limit=job.backoff_limit,
                ttl_seconds_after_finished=job.ttl_seconds_after_finished,
            ),
        ),
    )
    api = k8s.ApiClient()
    return api.sanitize_for_serialization(config_map), api.sanitize_for_serialization(pytorch_job)


def _snake(d: dict[str, Any]) -> dict[str, Any]:
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in d.items()}


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the config file in the ConfigMap) as readable literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def to_yaml(*objects: dict) -> str:
    return "---\n".join(
        yaml.dump(o, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=120) for o in objects
    )


@functools.lru_cache(maxsize=8)
def _crd_schema_cached(crd_path: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(Path(crd_path).read_text(encoding="utf-8"), Loader=loader)
    version = next(v for v in crd["spec"]["versions"] if v.get("served", True))
    return _strict(version["schema"]["openAPIV3Schema"])


def crd_schema(crd_path: str | Path) -> dict[str, Any]:
    """The openAPIV3Schema of the served version of a CRD file, made strict for validation.

    Kubernetes prunes unknown fields silently; here an unknown field is an error, so a typo in a
    rendered manifest cannot hide. ``x-kubernetes-int-or-string`` becomes integer-or-string.
    """
    return _crd_schema_cached(str(Path(crd_path).resolve()))


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate_job(obj: dict[str, Any], crd_path: str | Path) -> None:
    """Raise `ValidationError` listing every place where ``obj`` breaks the CRD's schema."""
    import jsonschema

    schema = crd_schema(crd_path)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:10]
        )
        raise ValidationError(f"{len(errors)} schema violation(s): {detail}", location=str(crd_path))


def submit(
    config_map: dict, pytorch_job: dict, kubeconfig: str | None = None, context: str | None = None
) -> str:
    """Create (or replace) the ConfigMap and create the PyTorchJob; returns 'namespace/name'."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException

    try:
        if kubeconfig or not Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
            k8s_config.load_kube_config(config_file=kubeconfig, context=context)
        else:
            k8s_config.load_incluster_config()
    except Exception as exc:  # ConfigException, FileNotFoundError
        raise UnavailableError(
            f"no Kubernetes cluster configured ({exc}); use --dry-run to print the job"
        ) from None
    ns = pytorch_job["metadata"]["namespace"]
    core = k8s.CoreV1Api()
    custom = k8s.CustomObjectsApi()
    try:
        try:
            core.create_namespaced_config_map(ns, config_map)
        except ApiException as exc:
            if exc.status != 409:
                raise
            core.replace_namespaced_config_map(config_map["metadata"]["name"], ns, config_map)
        custom.create_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs", pytorch_job)
    except ApiException as exc:
        raise UnavailableError(
            f"the cluster refused the job: {exc.status} {exc.reason}: {exc.body}"
        ) from None
    except Exception as exc:  # urllib3 connection errors
        raise UnavailableError(f"cluster not reachable: {exc}") from None
    return f"{ns}/{pytorch_job['metadata']['name']}"
