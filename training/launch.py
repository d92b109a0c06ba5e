"""Start-up under torchrun, a Kubeflow PyTorchJob, or a plain ``python -m training.<stage>``.

torchrun sets ``LOCAL_RANK`` (and ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``)
for each process it starts. The training operator injects, per pod, either the ``PET_*``
variables torchrun reads (``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK``,
``PET_MASTER_ADDR``, ``PET_MASTER_PORT``; jobs with ``nprocPerNode``) or, for one process per pod,
``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. So that the same command works in
every case, a process started without ``LOCAL_RANK``

* re-executes itself under torchrun when ``PET_*`` settings are present, and
* becomes local rank 0 of a one-process pod when only ``WORLD_SIZE``/``RANK`` are set.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)


def launch_action(env: Mapping[str, str]) -> str:
    """'run' (already placed by torchrun, or single process), 'torchrun' or 'one-per-pod'."""
    if "LOCAL_RANK" in env:
        return "run"
    if any(k in env for k in ("PET_NPROC_PER_NODE", "PET_NNODES")):
        return "torchrun"
    if int(env.get("WORLD_SIZE", "1") or 1) > 1 and "MASTER_ADDR" in env:
        return "one-per-pod"
    return "run"


def prepare_launch(stage: str, argv: list[str]) -> None:
    """Apply `launch_action` to this process (may replace it with torchrun; never returns then)."""
    action = launch_action(os.environ)
    if action == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "-m", f"training.{stage}", *argv]
        log.info("PET_* rendezvous settings found: re-executing under torchrun: %s", " ".join(cmd))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, cmd)
    if action == "one-per-pod":
        os.environ.setdefault("LOCAL_RANK", "0")
        os.environ.setdefault("LOCAL_WORLD_SIZE", "1")
        log.info("one process per pod: rank %s of %s", os.environ.get("RANK"), os.environ.get("WORLD_SIZE"))
