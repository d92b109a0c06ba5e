"""Configuration of a training run: three dataclasses of ours plus TRL's `DPOConfig`/`SFTConfig`.

Every field carries help text (``python -m training.dpo --help`` lists them). A YAML file given
with ``--config`` sets the values, and command-line flags override it, as in TRL's scripts. The
YAML is flat (one key per field, in any of the four dataclasses) except for an optional ``job:``
mapping, which only ``pbt train submit`` reads (`pbt.jobs.pytorchjob.JobSpec`), and an optional
``env:`` mapping of environment variables to set.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pbt.errors import ValidationError
from pbt.jobs.pytorchjob import STAGES, expand_placeholders, run_id_for
from pbt.prefs.record import TRAIN_MODES, check_mode

log = logging.getLogger(__name__)


@dataclass
class RunArguments:
    """Where a run lives in the object store, how it resumes, what it writes."""

    run_id: str | None = field(
        default=None,
        metadata={
            "help": "Name of the run; outputs go to <store_prefix>/<run_id>/ in the store. "
            "Default: '<stage>-<mode>-seed<seed>'. '{mode}' and '{seed}' are replaced by the run's mode and seed."
        },
    )
    store: str | None = field(
        default=None,
        metadata={
            "help": "Object store URL (a folder, file:///path or s3://bucket/prefix). Default: the environment "
            "(S3_ENDPOINT/S3_BUCKET, else PBT_STORE, else ./store)."
        },
    )
    store_prefix: str = field(default="training", metadata={"help": "Key prefix of every run in the store."})
    resume: str = field(
        default="auto",
        metadata={
            "help": "'auto': continue from the latest complete checkpoint of this run in the store, if any; "
            "'never': start from step 0 (earlier checkpoints of the run are left in place).",
            "choices": ["auto", "never"],
        },
    )
    upload_checkpoints: bool = field(
        default=True,
        metadata={"help": "Copy every saved checkpoint to the store (needed to resume elsewhere)."},
    )
    effective_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Pairs per optimizer step over all processes. When set, gradient_accumulation_steps is "
            "derived from it, per_device_train_batch_size and the world size (rounded; the value used is logged "
            "and recorded in metrics.json). The paper uses 35."
        },
    )
    merge_adapter: bool = field(
        default=False,
        metadata={
            "help": "Also write the base model with the adapter merged in (merged/), e.g. an SFT model that DPO "
            "starts from."
        },
    )
    eval_train_at_end: bool = field(
        default=True,
        metadata={
            "help": "After training, evaluate on the training pairs too (reward accuracy in metrics.json)."
        },
    )
    track_param_changes: bool = field(
        default=False,
        metadata={
            "help": "Fingerprint every parameter before and after training and record how many trainable and "
            "frozen tensors changed (a LoRA sanity check; costs one pass over the weights)."
        },
    )
    select_by: str = field(
        default="auto",
        metadata={
            "help": "Model selection on the dev split: 'balanced_accuracy' (balanced persuasion accuracy, §6c; "
            "needs 'extractor'), 'reward_accuracy' (DPO chosen-over-rejected reward accuracy), 'loss' (dev loss) "
            "or 'last' (the final step). 'auto': balanced_accuracy when an extractor is configured, else "
            "reward_accuracy for DPO and loss for SFT.",
            "choices": ["auto", "balanced_accuracy", "reward_accuracy", "loss", "last"],
        },
    )
    extractor: str | None = field(
        default=None,
        metadata={
            "help": "Answer extractor for balanced accuracy at every evaluation: 'rule' (the 'Final Answer:' "
            "line, no model) or a backend spec for an extractor model (http://host:port/v1, local:DIR). Unset: "
            "no generation during training."
        },
    )
    extractor_model: str | None = field(
        default=None, metadata={"help": "Model name sent to an HTTP extractor endpoint."}
    )
    balanced_max_new_tokens: int = field(
        default=80,
        metadata={"help": "New tokens per dev answer for balanced accuracy (the paper: 80, greedy)."},
    )
    code_version: str | None = field(
        default=None,
        metadata={
            "help": "Code version for the lineage manifest. Default: $PBT_CODE_VERSION, else git HEAD."
        },
    )


@dataclass
class DataArguments:
    """Which preference pairs to train on."""

    pairs: str | None = field(
        default=None,
        metadata={
            "help": "Preference pair file (JSON Lines, TRL conversational format plus PBT fields): a local path, "
            "s3://bucket/key, or store:<key> in the run's store. Required."
        },
    )
    pairs_dataset_id: str | None = field(
        default=None,
        metadata={"help": "Dataset id for the lineage manifest. Default: derived from the pair file's name."},
    )
    mode: str = field(
        default="pbt",
        metadata={
            "help": "Which pairs to train on: 'accept', 'resist', or 'pbt' (half each), all with the same pair "
            "budget (PBT-METHOD.md §4.6).",
            "choices": list(TRAIN_MODES),
        },
    )
    pair_budget: int | None = field(
        default=None,
        metadata={
            "help": "Number of training pairs for every mode. Default: the smaller of the numbers of accept and "
            "resist pairs in the train split."
        },
    )
    dev_pairs: str = field(
        default="balanced",
        metadata={
            "help": "Dev pairs for model selection: 'balanced' (as many resist as accept), 'mode' (the training "
            "mode's kinds) or 'none' (no evaluation).",
            "choices": ["balanced", "mode", "none"],
        },
    )
    max_dev_pairs: int | None = field(
        default=None, metadata={"help": "At most this many dev pairs (cheaper evaluations)."}
    )
    overlong: str = field(
        default="truncate",
        metadata={
            "help": "Pairs longer than max_length tokens: 'truncate' (the trainer cuts the response), 'drop', or "
            "'error'. They are counted and reported either way; pairs whose prompt alone fills max_length are "
            "always dropped.",
            "choices": ["truncate", "drop", "error"],
        },
    )


@dataclass
class ModelArguments:
    """The base model and the LoRA adapter trained on it."""

    base_model: str | None = field(
        default=None,
        metadata={
            "help": "Base model: a local folder (save_pretrained layout), s3://bucket/prefix, store:<prefix> in the "
            "run's store, or a Hugging Face hub id (needs network). Required. '{mode}' and '{seed}' are replaced "
            "by the run's mode and seed (a DPO preset starts each variant from its own SFT model)."
        },
    )
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer location. Default: base_model."})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weights dtype: 'auto' (bfloat16 on a GPU that supports it, else float32), 'bfloat16', "
            "'float16' or 'float32'.",
            "choices": ["auto", "bfloat16", "float16", "float32"],
        },
    )
    quantization: str = field(
        default="none",
        metadata={
            "help": "Load the base in 8 or 4 bits (bitsandbytes, CUDA only). 'auto': 8 bits where bitsandbytes and "
            "CUDA exist, else full precision (logged).",
            "choices": ["auto", "8bit", "4bit", "none"],
        },
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "Attention implementation (e.g. 'sdpa', 'flash_attention_2')."}
    )
    use_peft: bool = field(
        default=True,
        metadata={
            "help": "Train a LoRA adapter (the paper). false: train every parameter (small models only; the "
            "run then writes the whole model to model/ instead of adapter/)."
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj"],
        metadata={
            "help": "Module names that get LoRA adapters (the reference: q_proj, k_proj, v_proj; add o_proj for "
            "every attention projection)."
        },
    )


@dataclass
class TrainingSetup:
    """Everything a run needs, parsed and checked."""

    stage: str
    run: RunArguments
    data: DataArguments
    model: ModelArguments
    trainer: Any  # trl.DPOConfig | trl.SFTConfig
    job: dict[str, Any] | None = None
    config_path: str | None = None

    @property
    def run_id(self) -> str:
        return run_id_for(self.stage, self.data.mode, self.trainer.seed, self.run.run_id)

    def resolved(self) -> dict[str, Any]:
        """The exact configuration as one flat mapping that ``--config`` accepts again."""
        out: dict[str, Any] = {"stage": self.stage}
        for part in (self.run, self.data, self.model):
            out.update(dataclasses.asdict(part))
        out["run_id"] = self.run_id
        trainer = self.trainer.to_dict()
        for key in ("hub_token", "local_rank"):
            trainer.pop(key, None)
        for key in trainer:  # to_dict() masks every '*_token' value as '<KEY>'; keep the real ones
            if key.endswith("_token"):
                trainer[key] = getattr(self.trainer, key)
        out.update(trainer)
        if self.job is not None:
            out["job"] = self.job
        return out


def trainer_config_class(stage: str) -> type:
    from trl import DPOConfig, SFTConfig

    if stage not in STAGES:
        raise ValidationError(f"unknown stage {stage!r}; choose one of {STAGES}", field="stage")
    return DPOConfig if stage == "dpo" else SFTConfig


def make_parser(stage: str):
    from trl import TrlParser

    return TrlParser(
        (RunArguments, DataArguments, ModelArguments, trainer_config_class(stage)),
        prog=f"python -m training.{stage}",
        description=f"{stage.upper()} with TRL + PEFT LoRA on PBT preference pairs (YAML via --config, flags win).",
    )


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"config file not found: {path}", field="config")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ValidationError(f"not valid YAML: {exc}", location=where) from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationError("must contain a YAML mapping of option names to values", location=str(path))
    return config


def parse_setup(stage: str, argv: list[str] | None = None) -> TrainingSetup:
    """Parse ``[--config FILE] [--flag value ...]`` into a checked `TrainingSetup`."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser(stage)
    config: dict[str, Any] = {}
    config_path = None
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ValidationError("--config needs a file name", field="config")
        config_path = args[i + 1]
        del args[i : i + 2]
        config = load_yaml(config_path)
    file_stage = config.pop("stage", stage)
    if file_stage != stage:
        raise ValidationError(
            f"this config is for stage {file_stage!r}, not {stage!r}", field="stage", location=config_path
        )
    job = config.pop("job", None)
    env = config.pop("env", None) or {}
    if not isinstance(env, dict):
        raise ValidationError(
            "must be a mapping of variable names to values", field="env", location=config_path
        )
    for key, value in env.items():
        os.environ.setdefault(str(key), str(value))
    unknown = parser.set_defaults_with_config(**config)
    if unknown:
        names = [u[2:] for u in unknown[::2]]
        known = [a.dest for a in parser._actions]
        hints = {n: difflib.get_close_matches(n, known, n=1) for n in names}
        detail = ", ".join(f"{n!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for n, h in hints.items())
        raise ValidationError(f"unknown option(s) {detail}", location=config_path)
    try:
        run, data, model, trainer = parser.parse_args_into_dataclasses(args=args)
    except ValueError as exc:  # TrainingArguments/DPOConfig checks (e.g. save vs eval steps)
        raise ValidationError(str(exc), location=config_path) from None
    setup = TrainingSetup(stage, run, data, model, trainer, job=job, config_path=config_path)
    check_setup(setup)
    return setup


def check_setup(setup: TrainingSetup) -> None:
    """Cross-field checks that need no file or model (those come later, still before training)."""
    where = setup.config_path
    check_mode(setup.data.mode, TRAIN_MODES, location=where)
    setup.run.run_id = expand_placeholders(setup.run.run_id, setup.data.mode, setup.trainer.seed)
    setup.model.base_model = expand_placeholders(setup.model.base_model, setup.data.mode, setup.trainer.seed)
    if not setup.data.pairs:
        raise ValidationError(
            "is required: set 'pairs' in the config or pass --pairs", field="pairs", location=where
        )
    if not setup.model.base_model:
        raise ValidationError(
            "is required: set 'base_model' in the config or pass --base_model",
            field="base_model",
            location=where,
        )
    if setup.run.merge_adapter and not setup.model.use_peft:
        raise ValidationError("has nothing to merge without LoRA (use_peft: false)", field="merge_adapter")
    precompute = getattr(setup.trainer, "precompute_ref_log_probs", False)
    if not setup.model.use_peft and precompute and setup.run.eval_train_at_end:
        # without LoRA the reference model is not kept once its log-probs are precomputed, and TRL
        # cannot score a new dataset after training starts
        log.warning(
            "use_peft=false with precompute_ref_log_probs: skipping the evaluation on the training pairs"
        )
        setup.run.eval_train_at_end = False
    if setup.run.effective_batch_size is not None:
        tr = setup.trainer
        per_step = tr.per_device_train_batch_size * max(tr.world_size, 1)
        accum = max(1, round(setup.run.effective_batch_size / per_step))
        if accum * per_step != setup.run.effective_batch_size:
            log.warning(
                "effective_batch_size %d is not a multiple of per_device_train_batch_size x world size = %d; "
                "using %d (gradient_accumulation_steps=%d)",
                setup.run.effective_batch_size,
                per_step,
                accum * per_step,
                accum,
            )
        tr.gradient_accumulation_steps = accum
    run = setup.run
    if run.select_by == "auto":
        run.select_by = (
            "balanced_accuracy" if run.extractor else ("reward_accuracy" if setup.stage == "dpo" else "loss")
        )
    if run.select_by == "reward_accuracy" and setup.stage == "sft":
        raise ValidationError(
            "SFT has no rewards; use 'loss', 'balanced_accuracy' or 'last'", field="select_by"
        )
    if run.select_by == "balanced_accuracy" and not run.extractor:
        raise ValidationError(
            "needs an extractor: set 'extractor' to 'rule' or an extractor endpoint", field="select_by"
        )
    if run.extractor and setup.trainer.fsdp:
        raise ValidationError(
            "balanced accuracy during training generates with each process's model copy, which FSDP does not "
            "have; unset 'extractor' (evaluate the adapter afterwards with 'pbt eval') or use DDP",
            field="extractor",
        )
    if setup.data.dev_pairs == "none" or run.select_by == "last":
        setup.trainer.load_best_model_at_end = False
    if setup.trainer.load_best_model_at_end:
        metric = {
            "reward_accuracy": "rewards/accuracies",
            "loss": "loss",
            "balanced_accuracy": "balanced_accuracy",
        }[run.select_by]
        setup.trainer.metric_for_best_model = metric
        setup.trainer.greater_is_better = metric != "loss"
    if math.isclose(setup.trainer.learning_rate, 0.0):
        raise ValidationError("must be positive", field="learning_rate", location=where)
