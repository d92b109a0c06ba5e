"""make_backend: one spec string (or agent config object) names any backend."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from pbt.backends import make_backend
from pbt.backends.base import SamplingParams
from pbt.backends.http import HttpBackend
from pbt.backends.local import LocalBackend
from pbt.backends.scripted import ScriptedBackend
from pbt.errors import ValidationError


def test_http_specs():
    b = make_backend("http://127.0.0.1:8080/openai/v1", model="tiny", max_concurrency=4)
    assert isinstance(b, HttpBackend) and b.base_url.endswith("/openai/v1") and b.model == "tiny"
    assert b.max_concurrency == 4


def test_agent_config_object(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sekret")
    spec = SimpleNamespace(
        endpoint="https://agents.example/v1",
        model="pbt",
        api_key_env="MY_KEY",
        max_in_flight=7,
        timeout_s=9.0,
        max_attempts=2,
    )
    b = make_backend(spec)
    assert isinstance(b, HttpBackend)
    assert (b.model, b.api_key, b.max_concurrency, b.max_attempts) == ("pbt", "sekret", 7, 2)


def test_scripted_spec_with_tables(tmp_path):
    (tmp_path / "answers.json").write_text(json.dumps({"capital of France": "Lyon"}))
    (tmp_path / "gold.yaml").write_text("capital of France: Paris\n")
    b = make_backend(
        f"scripted:{tmp_path / 'answers.json'}?persuasion=correct&gold={tmp_path / 'gold.yaml'}&seed=3"
    )
    assert isinstance(b, ScriptedBackend) and b.persuasion == "correct" and b.seed == 3
    result = asyncio.run(
        b.chat([{"role": "user", "content": "What is the capital of France?"}], SamplingParams())
    )
    assert result.choices[0].text.endswith("Final Answer: Lyon")
    assert make_backend("scripted:?persuasion=0.25").persuasion == 0.25


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("ftp://x", "unsupported backend spec"),
        ("scripted:?persuasion=sometimes", "persuasion"),
        ("scripted:?colour=blue", "unknown scripted option"),
        ("scripted:/does/not/exist.json", "not found"),
        ("local:/does/not/exist", "config.json"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, needle):
    with pytest.raises(ValidationError, match=needle):
        make_backend(spec)


def test_local_spec(tiny_model_dir):
    b = make_backend(f"local:{tiny_model_dir}", model="tiny", num_threads=1)
    try:
        assert isinstance(b, LocalBackend) and b.model_name == "tiny"
    finally:
        b.close()
