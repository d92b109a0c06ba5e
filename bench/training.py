"""DPO training throughput: the project's configuration vs TRL's defaults, and two TRL options.

The same tiny model (`pbt.models.tiny`), the same synthetic pairs (`tests/pair_files.py`), the
same LoRA adapter and the same number of optimizer steps, all through `training.runner` on CPU:

  (a) TRL defaults: `DPOConfig()` as it comes (batch 8, activation checkpointing on, bf16
      autocast, max_length 1024, reference forward at every step), only `use_cpu` and the
      step count set
  (b) project: `training/configs/dpo-tiny.yaml` (batch 4, fp32, no activation checkpointing,
      ``precompute_ref_log_probs``: reference log-probs computed once before training)
  (c) project without ``precompute_ref_log_probs`` (the effect of precomputing)
  (d) project + ``padding_free`` (TRL 1.16 warns and falls back to padding for DPO)

Prints pairs/s of each (pairs seen by the optimizer per second of training, per second of wall
time including set-up such as the precompute pass, and per CPU-second of this process, which
other jobs on a shared machine disturb less) and the ratios against (a) and (b).
``python bench/training.py --steps 8 --pairs 32`` takes about a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

# `python bench/training.py` puts bench/ first on sys.path, where this file would shadow the
# `training` package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console(width=130)
CONFIG = Path(__file__).resolve().parent.parent / "training" / "configs" / "dpo-tiny.yaml"
QUIET = ["--dev_pairs", "none", "--eval_strategy", "no", "--load_best_model_at_end", "false",
         "--save_strategy", "no", "--upload_checkpoints", "false", "--eval_train_at_end", "false",
         "--track_param_changes", "false", "--report_to", "none", "--disable_tqdm", "true",
         "--logging_steps", "1000"]  # fmt: skip


def run_one(name: str, args: list[str], steps: int) -> dict[str, float]:
    from training.args import parse_setup
    from training.runner import run_training

    setup = parse_setup("dpo", [*args, "--max_steps", str(steps), *QUIET])
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_training(setup)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # less sensitive than wall time to other jobs on the machine
    tr = setup.trainer
    pairs = steps * tr.per_device_train_batch_size * tr.gradient_accumulation_steps * max(tr.world_size, 1)
    runtime = result.metrics["train"]["train_runtime"]
    console.log(f"{name}: {pairs} pairs, {runtime:.1f}s training, {wall:.1f}s wall, {cpu:.1f}s CPU")
    return {"pairs": pairs, "train_pps": pairs / runtime, "wall_pps": pairs / wall, "cpu_pps": pairs / cpu}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per configuration")
    parser.add_argument("--pairs", type=int, default=64, help="synthetic training pairs in the file")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--repeat", type=int, default=2, help="rounds over all configurations; the best counts"
    )
    opts = parser.parse_args()

    import torch

    from pbt.models.tiny import build_tiny_model

    sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))  # test helpers
    from pair_files import make_pairs, write_pairs

    torch.set_num_threads(opts.threads)
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="pbt-bench-train-") as tmp:
        tmp = Path(tmp)
        model = build_tiny_model(tmp / "tiny", seed=0)
        pairs = write_pairs(tmp / "pairs.jsonl", make_pairs(opts.pairs, 0))

        def common(tag: str) -> list[str]:
            return ["--pairs", str(pairs), "--base_model", str(model), "--store", str(tmp / "store"),
                    "--output_dir", str(tmp / tag), "--run_id", tag, "--resume", "never",
                    "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0.0"]  # fmt: skip

        project = ["--config", str(CONFIG)]
        runs = {
            "(a) TRL defaults": [*common("trl"), "--use_cpu", "true"],
            "(b) project": [*project, *common("project")],
            "(c) project, no precompute": [*project, *common("nopre"), "--precompute_ref_log_probs", "false"],
            "(d) project + padding_free": [*project, *common("pf"), "--padding_free", "true"],
        }
        results: dict[str, dict[str, float]] = {}
        for _ in range(opts.repeat):  # interleaved rounds, so load from other processes hits all alike
            for name, args in runs.items():
                try:
                    r = run_one(name, args, opts.steps)
                except Exception as exc:  # report what TRL does not support on CPU, keep going
                    console.log(f"{name}: not supported here: {exc}")
                    continue
                best = results.setdefault(name, r)
                for key in ("train_pps", "wall_pps", "cpu_pps"):  # best of the rounds, per measure
                    best[key] = max(best[key], r[key])
    title = f"DPO on the tiny model, {opts.steps} steps, CPU ({opts.threads} threads), best of {opts.repeat}"
    table = Table(title=title)
    cols = (
        "configuration",
        "pairs",
        "pairs/s (train)",
        "pairs/s (wall)",
        "pairs/CPU-s",
        "vs (a)",
        "vs (b)",
        "CPU vs (a)",
    )
    for col in cols:
        table.add_column(col, justify="right" if col != "configuration" else "left")
    base_a = results.get("(a) TRL defaults", {}).get("train_pps")
    base_b = results.get("(b) project", {}).get("train_pps")
    cpu_a = results.get("(a) TRL defaults", {}).get("cpu_pps")
    for name, r in results.items():
        table.add_row(
            name,
            str(r["pairs"]),
            f"{r['train_pps']:.2f}",
            f"{r['wall_pps']:.2f}",
            f"{r['cpu_pps']:.2f}",
            f"{r['train_pps'] / base_a:.2f}x" if base_a else "-",
            f"{r['train_pps'] / base_b:.2f}x" if base_b else "-",
            f"{r['cpu_pps'] / cpu_a:.2f}x" if cpu_a else "-",
        )
    table.caption = (
        "(d): TRL 1.16's DPOTrainer disables padding_free (warning, falls back to padding), so (d) ~ (b) "
        "up to noise. (b) vs (c): the reference forward moved out of the training loop; wall time includes "
        "the precompute pass."
    )
    console.print(table)


if __name__ == "__main__":
    main()
