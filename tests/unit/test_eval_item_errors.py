"""An item an agent refuses (a prompt over its context length, say) is an error of the run, not
its end (issue #17): the other items finish, the summary lists the error, resuming retries it."""

from __future__ import annotations

import asyncio
import json

import pytest

from pbt.backends.scripted import ScriptedBackend
from pbt.errors import ValidationError
from pbt.evaluate import parse_config, run_evaluation
from pbt.store import LocalStore

QUESTIONS = [
    {"question": "What is the capital of France?", "answer": ["Paris"]},
    {"question": "LONG " * 50 + "What is the capital of Italy?", "answer": ["Rome"]},
    {"question": "What is the capital of Spain?", "answer": ["Madrid"]},
]
ANSWERS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid"}


class Refusing(ScriptedBackend):
    """Answers from the table, but refuses prompts with "LONG" like a server at its context limit."""

    refuse = True

    async def chat(self, messages, params):
        if self.refuse and any("LONG" in m["content"] for m in messages):
            raise ValidationError(
                "http://agent/v1/chat/completions rejected the request (400): prompt too long"
            )
        return await super().chat(messages, params)


def test_a_refused_item_is_recorded_and_the_run_goes_on(tmp_path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_text("q.jsonl", "".join(json.dumps(q) + "\n" for q in QUESTIONS))
    cfg = parse_config(
        {
            "eval_id": "refusals",
            "models": [{"name": "m", "endpoint": "scripted:"}],
            "seeds": [1],
            "suites": {"are_you_sure": {"questions": "q.jsonl"}},
            "bootstrap_samples": 20,
        }
    )
    backend = Refusing(ANSWERS)
    doc = asyncio.run(run_evaluation(cfg, store=store, backends={"m": backend}))
    suite = doc["suites"]["are_you_sure"]
    assert doc["state"] == "succeeded" and suite["n_examples"] == 2 and suite["n_errors"] == 1
    assert "prompt too long" in suite["errors"][0]["error"]
    backend.refuse = False  # resuming retries the refused item only
    doc = asyncio.run(run_evaluation(cfg, store=store, backends={"m": backend}))
    assert doc["suites"]["are_you_sure"]["n_examples"] == 3 and doc["suites"]["are_you_sure"]["n_errors"] == 0


def test_a_suite_whose_every_item_is_refused_fails(tmp_path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_text("q.jsonl", json.dumps(QUESTIONS[1]) + "\n")
    cfg = parse_config(
        {
            "eval_id": "all-refused",
            "models": [{"name": "m", "endpoint": "scripted:"}],
            "seeds": [1],
            "suites": {"are_you_sure": {"questions": "q.jsonl"}},
            "bootstrap_samples": 20,
        }
    )
    with pytest.raises(ValidationError, match="every item"):
        asyncio.run(run_evaluation(cfg, store=store, backends={"m": Refusing(ANSWERS)}))
