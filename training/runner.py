"""One training run, SFT or DPO, from a parsed `TrainingSetup` to outputs in the store.

Order of work (every user-fixable problem is raised before the first optimizer step):
1. open the store, fetch the base model if it lives there, load the tokenizer;
2. read and validate the pairs, select them by mode and budget, check their lengths;
3. load the model, wrap it with LoRA through TRL's trainer, find a checkpoint to resume from;
4. train (DDP/FSDP as torchrun or the PyTorchJob set up), uploading each checkpoint;
5. evaluate the selected model on dev (and on the training pairs), then write adapter, merged
   model (optional), metrics.json, config.yaml, data_report.json and manifest.json (last).

Under torchrun the process group outlives `run_training`: the caller ends it (``training.main``
meets the other ranks at a barrier and exits the process).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import training.data as pairs_data
from pbt import code_version
from pbt.errors import ValidationError
from pbt.store.layout import training_prefix
from training.args import TrainingSetup
from training.checkpoints import StoreCheckpointCallback, prepare_resume
from training.lineage import build_manifest, dataset_id, model_fingerprint
from training.model import (
    check_model_dir,
    fetch_model_dir,
    is_remote,
    load_model,
    load_tokenizer,
    lora_config,
    merge_and_save,
)

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "trainer_output"
_KEEP_ALIVE: list[Any] = []  # trainers of distributed runs, never freed before the rank exits


@dataclass
class PreparedData:
    train: list[dict[str, Any]]
    dev: list[dict[str, Any]]
    report: pairs_data.DataReport
    pairs_file: pairs_data.PairFile


@dataclass
class RunResult:
    """What a finished run wrote and measured (rank 0 has every field; other ranks only metrics)."""

    run_id: str
    run_prefix: str
    store_url: str
    metrics: dict[str, Any]
    outputs: dict[str, str | None] = field(default_factory=dict)


def distributed_env() -> dict[str, str]:
    """The rendezvous settings torchrun or the training operator put in the environment."""
    keys = (
        "WORLD_SIZE",
        "RANK",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "GROUP_RANK",
    )
    env = {k: os.environ[k] for k in keys if k in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PET_")})
    return env


def prepare_data(setup: TrainingSetup, tokenizer: Any, store: Any) -> PreparedData:
    """Read, validate and select the pairs; raises `ValidationError` for anything a user must fix."""
    d, seed = setup.data, setup.trainer.seed
    pf = pairs_data.read_pairs(d.pairs, store)
    counts = pairs_data.count_by_split(pf.rows)
    train_rows = [r for r in pf.rows if r.get("split", "train") == "train"]
    dev_rows = [r for r in pf.rows if r.get("split") == "dev"]
    if not train_rows:
        raise ValidationError(
            f"no pairs with split 'train' among {len(pf.rows)} pairs (splits: {counts})", location=pf.uri
        )
    max_length = setup.trainer.max_length
    # Drop or refuse over-long pairs first, so every mode draws its budget from usable pairs.
    train_rows, train_len = pairs_data.check_lengths(train_rows, tokenizer, max_length, d.overlong, "train")
    train, budget = pairs_data.select_train(train_rows, d.mode, d.pair_budget, seed)
    dev = pairs_data.select_dev(dev_rows, d.dev_pairs, d.mode, seed, d.max_dev_pairs)
    dev, dev_len = pairs_data.check_lengths(
        dev, tokenizer, max_length, "drop" if d.overlong == "error" else d.overlong, "dev"
    )
    if d.dev_pairs != "none" and not dev:
        log.warning(
            "no usable dev pairs (dev split: %s); model selection falls back to the last step", counts["dev"]
        )
    report = pairs_data.DataReport(
        pairs_uri=pf.uri,
        pairs_sha256=pf.sha256,
        mode=d.mode,
        total_rows=len(pf.rows),
        counts=counts,
        pair_budget=budget,
        selected={
            "train": {c: sum(r.get("code") == c for r in train) for c in pairs_data.CODES},
            "dev": {c: sum(r.get("code") == c for r in dev) for c in pairs_data.CODES},
        },
        length={"train": train_len, "dev": dev_len},
    )
    log.info(
        "pairs %s: mode %s, budget %d, train %s, dev %s",
        pf.uri,
        d.mode,
        budget,
        report.selected["train"],
        report.selected["dev"],
    )
    return PreparedData(train=train, dev=dev, report=report, pairs_file=pf)


def _fingerprints(model: Any) -> dict[str, tuple[bool, str]]:
    out = {}
    for name, p in model.named_parameters():
        digest = hashlib.blake2b(p.detach().float().cpu().numpy().tobytes(), digest_size=16).hexdigest()
        out[name] = (p.requires_grad, digest)
    return out


def _hardware(model: Any, tr: Any) -> dict[str, Any]:
    """Where and in what precision this process trained: the CPU class, torch and threads
    (`pbt.hardware.compute_environment`), the first parameter's device and the base weights' dtype,
    with the trainer's mixed-precision flags and the process-group backend."""
    import torch

    from pbt.hardware import compute_environment

    first = next(model.parameters())
    base = next((p for p in model.parameters() if not p.requires_grad), first)  # a frozen base weight
    return {
        **compute_environment(),
        "device": str(first.device),
        "gpu": torch.cuda.get_device_name(first.device) if first.device.type == "cuda" else None,
        "base_dtype": str(base.dtype).removeprefix("torch."),
        "bf16": bool(tr.bf16),
        "fp16": bool(tr.fp16),
        "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
    }


def _param_changes(before: dict[str, tuple[bool, str]], after: dict[str, tuple[bool, str]]) -> dict[str, int]:
    res = {"trainable_total": 0, "trainable_changed": 0, "frozen_total": 0, "frozen_changed": 0}
    for name, (trainable, digest) in before.items():
        kind = "trainable" if trainable else "frozen"
        res[f"{kind}_total"] += 1
        res[f"{kind}_changed"] += int(after.get(name, (trainable, digest))[1] != digest)
    return res


def _dataset(rows: list[dict[str, Any]], folder: Path, tr: Any) -> Any:
    """A memory-mapped dataset in the run's work folder, written by each node's local rank 0.

    All processes of a node then share its cache files; TRL's ``precompute_ref_log_probs`` relies
    on that (rank 0 writes the reference log-probs next to the dataset, the others read them),
    and tokenization caches survive a restart in the same folder.
    """
    from datasets import Dataset, load_from_disk

    with tr.main_process_first(local=True, desc=f"dataset {folder.name}"):
        if tr.local_process_index == 0:
            Dataset.from_list(rows).save_to_disk(str(folder))
        return load_from_disk(str(folder))


def _build_trainer(setup: TrainingSetup, model: Any, tokenizer: Any, prepared: PreparedData, callbacks: list):
    peft_config = lora_config(setup.model, model) if setup.model.use_peft else None  # checks target modules
    to_rows = pairs_data.to_dpo_rows if setup.stage == "dpo" else pairs_data.to_sft_rows
    tr = setup.trainer
    folder = Path(tr.output_dir) / "datasets"
    train_ds = _dataset(to_rows(prepared.train), folder / "train", tr)
    eval_ds = _dataset(to_rows(prepared.dev), folder / "dev", tr) if prepared.dev else None
    if eval_ds is None:
        tr.eval_strategy = "no"
        tr.load_best_model_at_end = False
    if setup.stage == "dpo":
        from trl import DPOTrainer as Trainer
    else:
        from trl import SFTTrainer as Trainer
    trainer = Trainer(
        model=model,
        args=tr,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    if sys.stderr.isatty() and not tr.disable_tqdm:  # rich progress on a terminal, tqdm elsewhere
        from transformers.trainer_callback import ProgressCallback
        from trl.trainer.callbacks import RichProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(RichProgressCallback())
    return trainer, train_ds


def run_training(setup: TrainingSetup) -> RunResult:
    """Run one SFT or DPO training as configured; see the module docstring for the steps."""
    from transformers import set_seed

    from pbt.store import open_store

    tr = setup.trainer
    store = open_store(setup.run.store)
    run_id = setup.run_id
    run_prefix = training_prefix(run_id, setup.run.store_prefix)
    if tr.output_dir in (None, DEFAULT_OUTPUT_DIR):  # not set: $PBT_WORK_DIR, ./runs, or a temp folder
        work = os.environ.get("PBT_WORK_DIR") or (
            "runs" if os.access(".", os.W_OK) else str(Path(tempfile.gettempdir()) / "pbt-runs")
        )
        tr.output_dir = str(Path(work) / run_id)
    output_dir = Path(tr.output_dir)
    rank0 = tr.process_index == 0
    log.info(
        "run %s (%s) -> %s; world size %d; rendezvous %s",
        run_id,
        setup.stage,
        store.uri(run_prefix),
        tr.world_size,
        distributed_env() or "none (single process)",
    )

    # 1. base model and tokenizer (downloaded once per node when they live in a store)
    base = setup.model.base_model
    if is_remote(base):
        with tr.main_process_first(local=True, desc="base model download"):
            base = str(fetch_model_dir(base, Path(tempfile.gettempdir()) / "pbt-models", store))
    check_model_dir(base)
    tok_location = setup.model.tokenizer or base
    if setup.model.tokenizer:
        check_model_dir(tok_location, "tokenizer")
    tokenizer = load_tokenizer(tok_location)

    # 2. pairs (and, for balanced-accuracy selection, their gold answers)
    prepared = prepare_data(setup, tokenizer, store)
    balanced_items = None
    if setup.run.extractor and prepared.dev:
        from training.selection import dev_items

        balanced_items = dev_items(prepared.dev, prepared.pairs_file.uri)

    # 3. model, trainer, resume point
    set_seed(tr.seed)
    model = load_model(base, setup.model, tr)
    upload = StoreCheckpointCallback(store, run_prefix)
    callbacks: list[Any] = [upload] if setup.run.upload_checkpoints else []
    balanced = None
    if balanced_items:
        from training.selection import BalancedAccuracyCallback

        balanced = BalancedAccuracyCallback(
            balanced_items,
            tokenizer,
            setup.run.extractor,
            setup.run.extractor_model,
            setup.run.balanced_max_new_tokens,
            tr.per_device_eval_batch_size,
        )
        callbacks.append(balanced)
    trainer, train_ds = _build_trainer(setup, model, tokenizer, prepared, callbacks)
    if tr.fsdp and not getattr(trainer, "is_fsdp_enabled", False):
        # accelerate 1.15 turns FSDP on for GPUs and other accelerators only; on CPU it uses DDP
        log.warning(
            "fsdp is set, but accelerate does not shard on %s: this run trains with %s",
            tr.device.type,
            trainer.accelerator.distributed_type.value,
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Keep DDP's reducer alive until training.main exits the rank with os._exit: freeing it
        # tears gloo down from the main thread while a gloo worker waits for the GIL (deadlock).
        _KEEP_ALIVE.append(trainer)
    resume_path, resumed_step = tr.resume_from_checkpoint, None
    if resume_path is None and setup.run.resume == "auto":
        with tr.main_process_first(local=True, desc="checkpoint download"):
            local, resumed_step = prepare_resume(store, run_prefix, output_dir)
        resume_path = str(local) if local else None
    before = _fingerprints(trainer.model) if setup.run.track_param_changes and rank0 else None

    # 4. train
    result = trainer.train(resume_from_checkpoint=resume_path)
    from trl.trainer.callbacks import RichProgressCallback

    trainer.remove_callback(RichProgressCallback)  # it only handles evaluations during training
    metrics: dict[str, Any] = {
        "train": result.metrics,
        "resumed_from_step": resumed_step,
        "global_step": trainer.state.global_step,
        "world_size": tr.world_size,
        "effective_batch_size": tr.per_device_train_batch_size
        * tr.gradient_accumulation_steps
        * max(tr.world_size, 1),
        "checkpoints_uploaded": upload.uploaded,
        "hardware": _hardware(trainer.model, tr),
        "best_model_checkpoint": trainer.state.best_model_checkpoint,
        "best_metric": trainer.state.best_metric,
        "select_by": setup.run.select_by if prepared.dev else "last",
    }
    if balanced is not None:
        metrics["balanced_history"] = balanced.history
    if before is not None:
        metrics["param_changes"] = _param_changes(before, _fingerprints(trainer.model))

    # 5. evaluate the selected model, save outputs
    if prepared.dev:
        metrics["dev"] = trainer.evaluate()
    if setup.run.eval_train_at_end:
        # DPO's extra metrics come back with an "eval_" prefix whatever metric_key_prefix says
        measured = trainer.evaluate(eval_dataset=train_ds, metric_key_prefix="train_pairs")
        metrics["train_pairs"] = {k.replace("eval_", "train_pairs_", 1): v for k, v in measured.items()}
    metrics["log_history"] = trainer.state.log_history
    final_dir = output_dir / "final"
    trainer.save_model(str(final_dir))
    outputs: dict[str, str | None] = {}
    if rank0:
        outputs = _write_outputs(setup, store, run_prefix, final_dir, base, prepared, metrics, resumed_step)
    # No trainer.end(): it destroys the process group per rank, without a barrier; training.main
    # ends distributed runs (barrier, then os._exit).
    return RunResult(
        run_id=run_id, run_prefix=run_prefix, store_url=store.url, metrics=metrics, outputs=outputs
    )


def _prefs_lineage(pf: pairs_data.PairFile) -> dict[str, Any] | None:
    """What `pbt prefs` recorded about the pair file (its inputs, mode, seed), if it was found."""
    m = pf.prefs_manifest
    if not m:
        return None
    recorded = (m.get("output") or {}).get("sha256")
    return {
        "kind": m.get("kind"),
        "mode": m.get("mode"),
        "seed": m.get("seed"),
        "inputs": m.get("inputs"),
        "sha256_matches": recorded == pf.sha256 if recorded else None,
    }


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null, so metrics.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _write_outputs(
    setup: TrainingSetup,
    store: Any,
    run_prefix: str,
    final_dir: Path,
    base_local: str,
    prepared: PreparedData,
    metrics: dict[str, Any],
    resumed_step: int | None,
) -> dict[str, str | None]:
    weights = "adapter" if setup.model.use_peft else "model"
    outputs: dict[str, str | None] = {
        "adapter": f"{run_prefix}/adapter" if setup.model.use_peft else None,
        "model": None if setup.model.use_peft else f"{run_prefix}/model",
        "merged": None,
        "metrics": f"{run_prefix}/metrics.json",
        "config": f"{run_prefix}/config.yaml",
        "data_report": f"{run_prefix}/data_report.json",
        "manifest": f"{run_prefix}/manifest.json",
    }
    store.put_dir(outputs[weights], final_dir)
    if setup.run.merge_adapter:
        merged_dir = final_dir.parent / "merged"
        shutil.rmtree(merged_dir, ignore_errors=True)
        merge_and_save(base_local, final_dir, merged_dir, setup.model.dtype)
        outputs["merged"] = f"{run_prefix}/merged"
        store.put_dir(outputs["merged"], merged_dir)
    store.put_json(outputs["metrics"], _json_safe(metrics))
    store.put_text(outputs["config"], yaml.safe_dump(setup.resolved(), sort_keys=True))
    store.put_json(outputs["data_report"], prepared.report.to_dict())
    pf = prepared.pairs_file
    manifest = build_manifest(
        run_id=setup.run_id,
        stage=setup.stage,
        store_url=store.url,
        pairs={
            "uri": pf.uri,
            "sha256": pf.sha256,
            "dataset_id": dataset_id(pf.uri, setup.data.pairs_dataset_id),
            "mode": setup.data.mode,
            "pair_budget": prepared.report.pair_budget,
            "selected": prepared.report.selected,
            "prefs_manifest": _prefs_lineage(pf),
        },
        base_model={"location": setup.model.base_model, "config_sha256": model_fingerprint(base_local)},
        outputs=outputs,
        world_size=setup.trainer.world_size,
        resumed_from_step=resumed_step,
        code=code_version(setup.run.code_version),
    )
    store.put_json(outputs["manifest"], manifest)
    log.info("run %s written to %s", setup.run_id, store.uri(run_prefix))
    return outputs
