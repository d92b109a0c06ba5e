"""The engine without gRPC: per-endpoint in-flight bounds, determinism, message shaping, text cleaning."""

from __future__ import annotations

import asyncio
import json

from pbt.backends.scripted import ScriptedBackend
from pbt.config import RunConfig
from pbt.orchestrate import TreeJob
from pbt.orchestrate.messages import clean_response, merge_roles, speaker_messages
from pbt.store import LocalStore

QUESTIONS = [
    {"id": f"q{i}", "question": f"({i}) What is the capital of France?", "answers": ["Paris"]}
    for i in range(6)
]


def config(**extra) -> RunConfig:
    data = {
        "agents": {
            "a": {"endpoint": "shared", "max_in_flight": 3},
            "b": {"endpoint": "shared", "max_in_flight": 3},
        },
        "extraction": {"mode": "rules"},
        "dataset": {"format": "inline", "questions": QUESTIONS},
        **extra,
    }
    return RunConfig.from_dict(data)


_PEAK = {"value": 0}


class _Counting(ScriptedBackend):
    """Counts the requests in flight over every instance (A and B share one endpoint here)."""

    live = 0

    async def chat(self, messages, params):
        _Counting.live += 1
        _PEAK["value"] = max(_PEAK["value"], _Counting.live)
        try:
            return await super().chat(messages, params)
        finally:
            _Counting.live -= 1


def test_requests_in_flight_are_bounded_per_endpoint(tmp_path) -> None:
    """A and B name the same endpoint (window 3): together they fill it and never exceed it."""
    _PEAK["value"] = 0
    a = _Counting({"capital of France": "Paris"}, delay=0.01)
    b = _Counting({"capital of France": "Lyon"}, delay=0.01)
    backends = {"a": a, "b": b}
    asyncio.run(
        TreeJob(config(), LocalStore(tmp_path), job_id="w", backend_factory=lambda r, _: backends[r]).run()
    )
    assert _PEAK["value"] == 3


def test_same_seed_same_trees(tmp_path) -> None:
    def build(job_id: str) -> list[dict]:
        backends = {
            "a": ScriptedBackend({"capital of France": "Paris"}, persuasion=0.5),
            "b": ScriptedBackend({"capital of France": "Lyon"}, persuasion=0.5),
        }
        cfg = config(sampling={"seed": 11}, max_trees_in_flight=4)
        store = LocalStore(tmp_path)
        asyncio.run(TreeJob(cfg, store, job_id=job_id, backend_factory=lambda r, _: backends[r]).run())
        trees = [json.loads(store.get_text(f"trees/{job_id}/q{i}.json")) for i in range(6)]
        for t in trees:
            t["metadata"].pop("job_id")
        return trees

    assert build("one") == build("two")


def test_speaker_messages_and_merging() -> None:
    turns = [(0, "A says Paris."), (1, "B says Lyon."), (0, "A insists.")]
    assert speaker_messages("P", turns, 1, merge_consecutive=False) == [
        {"role": "user", "content": "P"},
        {"role": "user", "content": "A says Paris."},
        {"role": "assistant", "content": "B says Lyon."},
        {"role": "user", "content": "A insists."},
    ]
    assert speaker_messages("P", turns, 1, merge_consecutive=True)[:2] == [
        {"role": "user", "content": "P\n\nA says Paris."},
        {"role": "assistant", "content": "B says Lyon."},
    ]
    assert merge_roles([{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]) == [
        {"role": "user", "content": "x\n\ny"}
    ]


def test_clean_response_drops_a_trailing_fragment() -> None:
    assert clean_response("  Paris is the capital. It has many  ") == "Paris is the capital."
    assert clean_response("Paris is it!") == "Paris is it!"
    assert clean_response("no sentence end") == "no sentence end"
    assert clean_response("I think so.\nFinal Answer: Paris") == "I think so.\nFinal Answer: Paris"
    assert clean_response('He said "yes." And then') == 'He said "yes."'
