"""Checkpoints in the object store: upload on every save, find and fetch the latest to resume.

Layout under the run's prefix: ``checkpoints/checkpoint-<step>/...`` (what the Trainer saved)
and ``checkpoints/checkpoint-<step>/COMPLETE.json``, written last. A checkpoint without the
marker (an upload cut short by a crash) is never resumed from.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from pbt.store import atomic_write_bytes

log = logging.getLogger(__name__)

MARKER = "COMPLETE.json"
_STEP = re.compile(r"checkpoints/checkpoint-(\d+)/" + re.escape(MARKER) + "$")


def complete_steps(store: Any, run_prefix: str) -> list[int]:
    """Steps of the complete checkpoints of a run in the store, ascending."""
    steps = []
    for key in store.list(f"{run_prefix}/checkpoints/"):
        m = _STEP.search(key)
        if m:
            steps.append(int(m.group(1)))
    return sorted(steps)


def fetch_checkpoint(store: Any, run_prefix: str, step: int, output_dir: Path) -> Path:
    """Download ``checkpoint-<step>`` into ``output_dir`` (skipped when a complete local copy exists)."""
    local = output_dir / f"checkpoint-{step}"
    if (local / MARKER).is_file():
        return local
    store.get_dir(f"{run_prefix}/checkpoints/checkpoint-{step}", local)
    return local


def prepare_resume(store: Any, run_prefix: str, output_dir: Path) -> tuple[Path | None, int | None]:
    """Fetch the latest complete checkpoint (and the best one it names) for resuming.

    Returns (local checkpoint folder, step), or (None, None) when the run has none.
    """
    steps = complete_steps(store, run_prefix)
    if not steps:
        return None, None
    step = steps[-1]
    local = fetch_checkpoint(store, run_prefix, step, output_dir)
    state_file = local / "trainer_state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        best = state.get("best_model_checkpoint")
        m = re.search(r"checkpoint-(\d+)$", best.rstrip("/")) if best else None
        if m and int(m.group(1)) in steps:
            best_step = int(m.group(1))
            if best_step != step:
                fetch_checkpoint(store, run_prefix, best_step, output_dir)
            # the run may have lived in another folder (another pod): point at the local copy
            local_best = str(output_dir / f"checkpoint-{best_step}")
            if best != local_best:  # written once per node (the other processes then find it done)
                state["best_model_checkpoint"] = local_best
                atomic_write_bytes(state_file, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())
    log.info("resuming from %s (step %d of the run in the store)", local, step)
    return local, step


class StoreCheckpointCallback(TrainerCallback):
    """Uploads each checkpoint the Trainer saves to the store (world rank 0 only)."""

    def __init__(self, store: Any, run_prefix: str):
        self.store = store
        self.run_prefix = run_prefix
        self.uploaded: list[int] = []

    def on_save(self, args, state, control, **kwargs):
        # Every rank calls on_save after its part of the checkpoint. Without this barrier rank 0
        # uploaded (and marked COMPLETE) a folder that some runs lacked rng_state_1.pth in: rank 1
        # writes its RNG state after rank 0 may already have got here.
        _wait_for_all_ranks()
        if not state.is_world_process_zero:
            return control
        step = state.global_step
        local = Path(args.output_dir) / f"checkpoint-{step}"
        if not local.is_dir():
            log.warning("checkpoint folder %s not found after save; not uploaded", local)
            return control
        prefix = f"{self.run_prefix}/checkpoints/checkpoint-{step}"
        started = time.monotonic()
        keys = self.store.put_dir(prefix, local)
        marker = {"step": step, "files": len(keys), "time": time.time()}
        self.store.put_json(f"{prefix}/{MARKER}", marker)
        (local / MARKER).write_text(json.dumps(marker))
        self.uploaded.append(step)
        log.info(
            "checkpoint %d uploaded to %s (%d files, %.1fs)",
            step,
            self.store.uri(prefix),
            len(keys),
            time.monotonic() - started,
        )
        return control


def _wait_for_all_ranks() -> None:
    """A barrier over the default process group, when there is one with more than one rank."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
