"""Choosing an extractor by kind: the rule extractor, or the paper's model extractor."""

from __future__ import annotations

from collections.abc import Callable

from pbt.backends.base import ChatBackend
from pbt.extract.llm import LLMExtractor
from pbt.extract.rules import RuleExtractor

RULE_KINDS = ("rule", "rules")


def make_extractor(
    kind: str, backend: Callable[[], ChatBackend] | None = None, *, max_tokens: int = 15
) -> LLMExtractor | RuleExtractor:
    """``rule``/``rules`` (or no backend) -> `RuleExtractor`; ``llm`` -> `LLMExtractor` on ``backend()``.

    `backend` is a factory so that no backend is opened for the rule extractor."""
    if kind in RULE_KINDS or backend is None:
        return RuleExtractor()
    if kind != "llm":
        raise ValueError(f"unknown extractor kind {kind!r} (expected 'rule' or 'llm')")
    return LLMExtractor(backend(), max_tokens=max_tokens)
