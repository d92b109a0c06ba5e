"""A word-level tokenizer for the world: every invented name is exactly one token.

Sub-word tokenizers split an invented name into pieces the tiny model must learn to assemble;
WORLD-NOTES.md measured that one token per name is what makes a 4-layer model learn the facts
within minutes. Words are split on whitespace (kept as a ``▁`` prefix, so decoding restores the
spaces) and punctuation (its own token, so ``Final Answer: X`` decodes exactly). Special tokens
and the chat template are those of `pbt.models.tiny`, so everything that serves the tiny models
serves the world agents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pbt.models.tiny import SPECIAL_TOKENS, UNK, wrap_tokenizer


def build_tokenizer(texts: Iterable[str], max_length: int = 1024) -> Any:
    """Build the word-level `PreTrainedTokenizerFast` whose vocabulary is every word of `texts`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(prepend_scheme="always", split=True), pre_tokenizers.Punctuation()]
    )
    tok.decoder = decoders.Metaspace(prepend_scheme="always", split=True)
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tok, max_length)
