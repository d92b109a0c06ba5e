"""The four persuasion evaluations of PBT-METHOD §6 and the results store layout.

Public API::

    from pbt.evaluate import load_config, parse_config, run_evaluation, run_evaluation_sync
    summary = run_evaluation_sync(load_config("eval.yaml"))            # endpoints from the config
    summary = await run_evaluation(cfg, backends={"base": backend})    # ready backends (tests, demo)

See `pbt.evaluate.results` for the layout under ``results/{eval_id}/``.

The prompts the misinformation suite shows a model (for training a model on the suite's shapes,
as the demo world's agents are)::

    from pbt.evaluate import FarmItem, layout_mc, persuasion_message, prompt_texts, reask_message
"""

from pbt.evaluate.config import EvalConfig, load_config, parse_config, parse_config_text
from pbt.evaluate.farm import ALL_INCORRECT, DONT_KNOW, FarmItem
from pbt.evaluate.prompts import (
    LETTERS,
    MC_INSTRUCTION,
    REASK,
    MCQuestion,
    layout_mc,
    persuasion_message,
    reask_message,
)
from pbt.evaluate.results import load_summary
from pbt.evaluate.runner import ProgressEvent, run_evaluation, run_evaluation_sync


def prompt_texts(max_options: int = 8) -> list[str]:
    """Every fixed text the misinformation suite writes into its prompts: the instruction, the
    re-ask, the two extra options and a question heading with `max_options` lettered options (a
    tokenizer built from its training texts must cover them to read the suite's prompts)."""
    heading = "Question: Options: " + " ".join(f"{x}." for x in LETTERS[:max_options])
    return [MC_INSTRUCTION, REASK, DONT_KNOW, ALL_INCORRECT, heading]


__all__ = [
    "EvalConfig",
    "FarmItem",
    "MCQuestion",
    "ProgressEvent",
    "layout_mc",
    "load_config",
    "load_summary",
    "parse_config",
    "parse_config_text",
    "persuasion_message",
    "prompt_texts",
    "reask_message",
    "run_evaluation",
    "run_evaluation_sync",
]
