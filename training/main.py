"""Shared ``main()`` of ``python -m training.dpo`` and ``python -m training.sft``."""

from __future__ import annotations

import logging
import os
import sys

from pbt.errors import PbtError


def configure_logging() -> None:
    """Rich logging on rank 0, plain warnings-only logging on the other ranks."""
    rank = int(os.environ.get("RANK", "0"))
    level = os.environ.get("PBT_LOG_LEVEL", "INFO" if rank == 0 else "WARNING").upper()
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False)
        fmt = f"[rank {rank}] %(name)s: %(message)s"
    else:
        handler = logging.StreamHandler()
        fmt = f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def main(stage: str, argv: list[str] | None = None) -> int:
    """Parse, train, and turn user errors into one clear line and exit status 2."""
    configure_logging()
    from training.launch import prepare_launch

    prepare_launch(stage, list(sys.argv[1:] if argv is None else argv))
    from training.args import parse_setup
    from training.runner import run_training

    try:
        setup = parse_setup(stage, argv)
        result = run_training(setup)
    except PbtError as exc:
        logging.getLogger("training").error("%s", exc)
        return _exit_distributed(2)
    if result.outputs:
        logging.getLogger("training").info("outputs: %s", result.outputs)
    return _exit_distributed(0)


def _exit_distributed(code: int) -> int:
    """Leave a torch.distributed run without tearing gloo down from Python's garbage collector.

    Seen here (torch 2.13, gloo, 2 CPU ranks): when DDP's reducer is freed at the end of the run,
    the main thread holds the GIL while joining a gloo worker thread that waits for the GIL to
    free a finished all-gather's tensor, and the rank hangs forever after training has finished.
    So the ranks meet at a barrier (after success only: a failed rank must not wait for the
    others) and exit at once; every output is already in the store.
    """
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return code
    if not (dist.is_available() and dist.is_initialized()):
        return code
    if code == 0:
        dist.barrier()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
