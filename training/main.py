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
        return 2
    if result.outputs:
        logging.getLogger("training").info("outputs: %s", result.outputs)
    return 0
