"""Tiny Llama-architecture models built offline, for tests, the demo and benchmarks.

`build_tiny_model(out_dir, seed)` trains a byte-level BPE tokenizer with the `tokenizers`
library on the text bundled in ``pbt/data/tiny_corpus.txt``, attaches a chat template, creates a
randomly initialised `LlamaForCausalLM` and writes both with ``save_pretrained``. The folder
loads with ``AutoTokenizer.from_pretrained(dir)`` / ``AutoModelForCausalLM.from_pretrained(dir)``
without network access. The same seed and sizes give byte-identical weights.

The chat template renders ``<|bos|><|system|>\\n...<|end|>\\n<|user|>\\n...<|end|>\\n`` and, with
``add_generation_prompt=True``, appends ``<|assistant|>\\n``; ``<|end|>`` is the EOS token, so a
generated assistant turn ends where the template would close it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

CORPUS = Path(__file__).resolve().parent.parent / "data" / "tiny_corpus.txt"

BOS, EOS, PAD, UNK = "<|bos|>", "<|end|>", "<|pad|>", "<|unk|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, *ROLE_TOKENS]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


class TinyModelConfig(BaseModel):
    """Sizes of the tiny model; every field can be overridden by `build_tiny_model(**overrides)`."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(
        1024, ge=300, description="Target BPE vocabulary (256 bytes + merges + specials)."
    )
    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(128, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(2048, ge=64, description="Context length in tokens.")
    initializer_range: float = Field(
        0.1,
        gt=0.0,
        description="Std of the random weights; larger than Llama's 0.02 so greedy argmax is "
        "well separated and batched/unbatched decoding agree exactly.",
    )


def train_tokenizer(vocab_size: int, corpus: Path = CORPUS) -> Any:
    """Train a byte-level BPE tokenizer on `corpus` and wrap it as a `PreTrainedTokenizerFast`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not corpus.is_file():
        raise FileNotFoundError(f"tiny-model corpus not found: {corpus}")
    lines = [ln for ln in corpus.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return wrap_tokenizer(tok, TinyModelConfig().max_position_embeddings)


def wrap_tokenizer(tok: Any, max_length: int) -> Any:
    """A trained `tokenizers.Tokenizer` as a transformers tokenizer with the project's special
    tokens, chat template and left padding (shared by the tiny models and the world agents)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=ROLE_TOKENS,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_model(out_dir: str | Path, seed: int = 0, **size_overrides: Any) -> Path:
    """Build a tiny Llama model plus tokenizer into `out_dir` and return the folder.

    `size_overrides` are fields of `TinyModelConfig` (``hidden_size=32``, ``num_hidden_layers=1``,
    ...). Unknown names raise `pbt.errors.ValidationError`.
    """
    import torch
    from pydantic import ValidationError as PydanticValidationError
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from pbt.errors import from_pydantic

    try:
        sizes = TinyModelConfig(**size_overrides)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, prefix="size_overrides.") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(sizes.vocab_size)
    tokenizer.model_max_length = sizes.max_position_embeddings
    vocab = len(tokenizer)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=sizes.hidden_size,
        intermediate_size=sizes.intermediate_size,
        num_hidden_layers=sizes.num_hidden_layers,
        num_attention_heads=sizes.num_attention_heads,
        num_key_value_heads=sizes.num_key_value_heads,
        max_position_embeddings=sizes.max_position_embeddings,
        initializer_range=sizes.initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    # A private generator keeps the global RNG untouched; the same seed gives the same weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log.info(
        "tiny model (seed %d, %d parameters, vocab %d) written to %s",
        seed,
        sum(p.numel() for p in model.parameters()),
        vocab,
        out,
    )
    return out
