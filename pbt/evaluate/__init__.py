"""The four persuasion evaluations of PBT-METHOD §6 and the results store layout.

Public API::

    from pbt.evaluate import load_config, parse_config, run_evaluation, run_evaluation_sync
    summary = run_evaluation_sync(load_config("eval.yaml"))            # endpoints from the config
    summary = await run_evaluation(cfg, backends={"base": backend})    # ready backends (tests, demo)

See `pbt.evaluate.results` for the layout under ``results/{eval_id}/``.
"""

from pbt.evaluate.config import EvalConfig, load_config, parse_config, parse_config_text
from pbt.evaluate.results import load_summary
from pbt.evaluate.runner import ProgressEvent, run_evaluation, run_evaluation_sync

__all__ = [
    "EvalConfig",
    "ProgressEvent",
    "load_config",
    "load_summary",
    "parse_config",
    "parse_config_text",
    "run_evaluation",
    "run_evaluation_sync",
]
