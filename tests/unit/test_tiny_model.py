"""The tiny offline model: loads with Auto classes, chat template, determinism per seed."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from pbt.errors import ValidationError
from pbt.models.tiny import build_tiny_model


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_loads_offline_with_auto_classes(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tok)
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|pad|>"
    assert tok.pad_token_id != tok.eos_token_id
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert (
        text
        == "<|bos|><|system|>\nBe brief.<|end|>\n<|user|>\nCapital of France?<|end|>\n<|assistant|>\nParis<|end|>\n"
    )
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>\nCapital of France?<|end|>\n<|assistant|>\n")
    # byte-level BPE round-trips any text, including text never seen in the corpus
    sample = "Zürich — 42 naïve façades"
    assert tok.decode(tok(sample, add_special_tokens=False).input_ids) == sample


def test_same_seed_same_files_other_seed_other_weights(tmp_path, tiny_model_dir):
    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert _digest(again) == _digest(tiny_model_dir)
    assert _digest(other)["model.safetensors"] != _digest(tiny_model_dir)["model.safetensors"]
    assert _digest(other)["tokenizer.json"] == _digest(tiny_model_dir)["tokenizer.json"]


def test_size_overrides_and_unknown_override(tmp_path):
    from transformers import AutoConfig

    out = build_tiny_model(tmp_path / "small", hidden_size=32, num_hidden_layers=1)
    cfg = AutoConfig.from_pretrained(out)
    assert (cfg.hidden_size, cfg.num_hidden_layers) == (32, 1)
    with pytest.raises(ValidationError, match="hiden_size"):
        build_tiny_model(tmp_path / "bad", hiden_size=32)


def test_cli_builds_model(tmp_path):
    from pbt.cli.main import cli

    result = CliRunner().invoke(cli, ["models", "tiny", "--out", str(tmp_path / "m"), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert (tmp_path / "m" / "tokenizer.json").is_file()
