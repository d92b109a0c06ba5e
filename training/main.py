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
    """Parse, train, and turn user errors into one clear line and exit status 2.

    Under torchrun the rank does not return: `_exit_distributed` ends it (status 0 after every
    rank finished, 2 for a user error, 1 for any other failure, its traceback logged first).
    """
    configure_logging()
    from training.launch import prepare_launch

    prepare_launch(stage, list(sys.argv[1:] if argv is None else argv))
    from training.args import parse_setup
    from training.runner import run_training

    log = logging.getLogger("training")
    try:
        setup = parse_setup(stage, argv)
        result = run_training(setup)
    except PbtError as exc:
        log.error("%s", exc)
        return _exit_distributed(2)
    except Exception:
        if not _distributed():
            raise
        log.exception("training failed on this rank")
        return _exit_distributed(1)
    if result.outputs:
        log.info("outputs: %s", result.outputs)
    return _exit_distributed(0)


def _distributed() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return dist.is_available() and dist.is_initialized()


def _exit_distributed(code: int) -> int:
    """End a torch.distributed rank: after success meet the others at a barrier (rank 0 has
    written every output by then), then `os._exit`; a failed rank exits at once and torchrun
    stops the others. Returns `code` only when no process group is up (a single process).

    Never ``destroy_process_group`` or interpreter shutdown with gloo alive (one deadlocks a rank,
    the other aborts it: docs/training.md, "End of a run"), so nothing before this may destroy the group.
    """
    if not _distributed():
        return code
    import torch.distributed as dist

    log = logging.getLogger("training")
    rank, world = dist.get_rank(), dist.get_world_size()
    if code == 0:
        try:
            dist.barrier()
        except Exception:  # another rank failed or left: report it and exit with a failure
            log.exception("rank %d of %d: final barrier failed", rank, world)
            code = 1
        else:
            log.info("rank %d of %d passed the final barrier; exiting", rank, world)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
