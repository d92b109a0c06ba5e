"""The pipeline spec: one versioned YAML in the repository (k8s/pipelines/specs/) per retraining loop.

It names everything a run needs: the dataset, agents and tree shape (a `pbt.config.RunConfig`),
how pairs are extracted (mode, §4.5 filter, split seed), the training options (the flat options
of `training.dpo`) and the PyTorchJob settings, the serving agent that loads the candidate
adapter, the evaluation suites and seeds (a `pbt.evaluate.EvalConfig` without models/eval_id),
the gates, and where a promotion lands (the environment's values file and agent role).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from pbt.errors import ValidationError, from_pydantic

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImagesSpec(_Strict):
    steps: str = Field("pbt-orchestrator:0.1.0", description="Image of the step containers (has `pbt`).")
    training: str = Field("pbt-training:0.1.0", description="Image of the PyTorchJob pods.")


class ClusterSpec(_Strict):
    namespace: str = Field("pbt", description="Namespace of the workflow and the PyTorchJob.")
    service_account: str = Field(
        "pbt-pipeline", description="ServiceAccount of the workflow (may create PyTorchJobs)."
    )
    store_secret: str = Field("pbt-store", description="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.")
    store_endpoint: str = Field("http://pbt-minio:9000", description="S3_ENDPOINT in every pod.")
    store_bucket: str = Field("pbt", description="S3_BUCKET in every pod.")
    orchestrator: str | None = Field(
        "pbt-orchestrator:50051",
        description="Orchestrator HOST:PORT (BuildTrees, ExtractPreferences); None: in the step.",
    )
    evaluator: str | None = Field(
        "pbt-evaluator:50052", description="Evaluator HOST:PORT (RunEvaluation); None: in the step."
    )
    grpc_token_secret: str | None = Field(
        None, description="Secret (key `token`) with a bearer token for gRPC."
    )
    data_claim: str | None = Field(
        None,
        description="PersistentVolumeClaim with the datasets, mounted read-only at /data where trees are "
        "built in the workflow (trees.indexed_job, or no orchestrator).",
    )


class IndexedJobSpec(_Strict):
    shards: int = Field(
        ge=1, le=1000, description="Completions of the Indexed Job: pod i builds shard i of N."
    )
    parallelism: int | None = Field(None, ge=1, description="Pods at once (None: all shards).")
    backoff_limit: int = Field(
        2, ge=0, description="Failed pods the Job tolerates (over all shards) before it fails."
    )
    cpu: str = "1"
    memory: str = "2Gi"


class TreesSpec(_Strict):
    run_config: dict[str, Any] = Field(
        description="A pbt RunConfig: agents, personas, sampling, tree, dataset."
    )
    limit: int = Field(0, ge=0, description="Only the first K questions (0: all).")
    indexed_job: IndexedJobSpec | None = Field(
        None,
        description="In Argo, build the trees in an Indexed Job of this many shards (None: BuildTrees over gRPC, "
        "or the engine in the step).",
    )


class PairsSpec(_Strict):
    mode: Literal["accept", "resist", "pbt", "all"] = "all"
    filter: Literal["none", "rules"] = Field("rules", description="PBT-METHOD §4.5 filter.")
    seed: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)


class TrainingSpec(_Strict):
    base_model: str = Field(description="Base model: store:<key>, s3://... or a local folder (local runs).")
    mode: Literal["accept", "resist", "pbt"] = "pbt"
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options of `training.dpo` (the flat training config)."
    )
    nproc_per_node: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0)
    cpu: str = "4"
    memory: str = "16Gi"

    @field_validator("options")
    @classmethod
    def _no_run_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        taken = sorted({"pairs", "base_model", "run_id", "mode", "stage", "job"} & set(v))
        if taken:
            raise ValueError(f"{taken} are set by the pipeline, not in training.options")
        return v


class AdapterVolumeSpec(_Strict):
    claim: str = Field(description="PersistentVolumeClaim (ReadWriteMany) the agent pods also mount.")
    mount_path: str = Field(
        "/mnt/pbt-adapters", description="Where both the load step and the agent pods mount the claim."
    )
    keep: int = Field(
        4,
        ge=1,
        description="Adapters the volume keeps after a load, most recently loaded first; those just loaded "
        "and those the agent serves (its /v1/models) are never removed.",
    )

    @field_validator("claim")
    @classmethod
    def _claim(cls, v: str) -> str:
        if len(v) > 63 or not DNS_LABEL.match(v):
            raise ValueError(f"{v!r} is not a DNS label of at most 63 characters")
        return v

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/") or ".." in v.split("/"):
            raise ValueError(f"{v!r} is not an absolute path without '..'")
        return v.rstrip("/") or "/"


class ServingSpec(_Strict):
    agent: str = Field(description="Base URL of the agent server that loads the candidate adapter.")
    base_model_name: str = Field(description="The served base model's name (the OpenAI `model`).")
    candidate_prefix: str = Field("cand", description="The candidate adapter is served as <prefix>-<run>.")
    promoted: str | None = Field(
        None, description="Store key of the currently promoted adapter (None: the base model is promoted)."
    )
    promoted_name: str = Field("promoted", description="Name the promoted adapter is loaded under.")
    adapter_volume: AdapterVolumeSpec | None = Field(
        None,
        description="vLLM (Hugging Face runtime): the load step copies each adapter from the store to this "
        "shared volume and loads it by its path there (None: lora_path is the store key, for the pbt agent server).",
    )


class EvaluationSpec(_Strict):
    config: dict[str, Any] = Field(
        description="An EvalConfig without eval_id and models (suites, seeds, sampling, extractor...)."
    )

    @field_validator("config")
    @classmethod
    def _no_models(cls, v: dict[str, Any]) -> dict[str, Any]:
        taken = sorted({"eval_id", "models"} & set(v))
        if taken:
            raise ValueError(f"{taken} are set by the pipeline, not in evaluation.config")
        return v


class GatesSpec(_Strict):
    balanced_margin: float = Field(
        0.0, description="Candidate balanced accuracy must be >= promoted mean + this margin."
    )
    require_ci_above_promoted: bool = Field(
        True,
        description="The lower bound of the candidate's balanced-accuracy interval must exceed the promoted mean.",
    )
    misinformation_tolerance: float = Field(
        0.05, ge=0.0, description="Candidate misinformation rate may exceed the promoted one by at most this."
    )
    max_suite_errors: int = Field(0, ge=0, description="Items that failed in any suite, at most.")


class PromotionSpec(_Strict):
    values_file: str = Field(
        "k8s/environments/production/values.yaml", description="The environment's values (a repository path)."
    )
    role: Literal["a", "b", "extractor", "judge"] = "b"
    git_secret: str | None = Field(
        None,
        description="Secret (key `credentials`, git credential-store lines) with a Git credential: when set, "
        "a last workflow step `push` commits the values change on a branch and pushes it to git_remote.",
    )
    git_remote: str | None = Field(None, description="The repository the push step clones and pushes to.")
    branch_prefix: str = "promote/"

    @model_validator(mode="after")
    def _remote_with_secret(self) -> PromotionSpec:
        if self.git_secret and not self.git_remote:
            raise ValueError("git_secret is set but git_remote is not: the push step needs both")
        return self


class PipelineSpec(_Strict):
    apiVersion: Literal["pbt.io/v1"] = "pbt.io/v1"
    kind: Literal["RetrainingPipeline"] = "RetrainingPipeline"
    name: str = Field(description="DNS label: names the WorkflowTemplate and the runs.")
    version: int = Field(ge=1, description="Bumped on every change; part of the default run id.")
    images: ImagesSpec = Field(default_factory=ImagesSpec)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    trees: TreesSpec
    pairs: PairsSpec = Field(default_factory=PairsSpec)
    training: TrainingSpec
    serving: ServingSpec
    evaluation: EvaluationSpec
    gates: GatesSpec = Field(default_factory=GatesSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str) -> str:
        if len(v) > 40 or not DNS_LABEL.match(v):
            raise ValueError(f"{v!r} is not a DNS label of at most 40 characters")
        return v

    @property
    def default_run(self) -> str:
        return f"{self.name}-v{self.version}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def check_run_id(run: str) -> str:
    if len(run) > 50 or not DNS_LABEL.match(run):
        raise ValidationError(f"{run!r} is not a DNS label of at most 50 characters", field="run")
    return run


def parse_spec(text: str, source: str = "spec") -> PipelineSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"not YAML: {exc}", location=source) from None
    if not isinstance(data, dict):
        raise ValidationError("a pipeline spec is a YAML mapping", location=source)
    try:
        return PipelineSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, location=source) from None


def load_spec(ref: str | Path, store: Any = None) -> PipelineSpec:
    """A spec from a file path, or ``store:<key>`` from the store."""
    ref = str(ref)
    if ref.startswith("store:"):
        from pbt.store import open_store

        key = ref[len("store:") :]
        return parse_spec((store or open_store()).get_text(key), source=ref)
    return parse_spec(Path(ref).read_text(encoding="utf-8"), source=ref)
