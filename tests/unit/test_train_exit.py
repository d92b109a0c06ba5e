"""How `training.main` ends a rank: the final barrier, then `os._exit`, with the group still up.

`torch.distributed` is replaced by a recorder here; the torchrun tests in
tests/integration/test_train_distributed.py check the same order with two real gloo ranks.
"""

from __future__ import annotations

import logging
import os

import pytest

import training.args
import training.launch
import training.main
import training.runner
from pbt.errors import ValidationError
from training.runner import RunResult


class _Exited(Exception):
    def __init__(self, code: int):
        self.code = code


@pytest.fixture
def events(monkeypatch):
    """What the entry point did, in order ('train', 'barrier', 'destroy', 'exit <code>'), and the group's state."""
    import torch.distributed as dist

    seen: list[str] = []
    state = {"initialized": True}

    def barrier():
        assert state["initialized"], "barrier after the process group was destroyed"
        seen.append("barrier")

    def destroy_process_group(group=None):
        state["initialized"] = False
        seen.append("destroy")

    def exit_(code):
        seen.append(f"exit {code}")
        raise _Exited(code)

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: state["initialized"])
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "barrier", barrier)
    monkeypatch.setattr(dist, "destroy_process_group", destroy_process_group)
    monkeypatch.setattr(os, "_exit", exit_)
    monkeypatch.setattr(logging, "shutdown", lambda: None)
    monkeypatch.setattr(training.main, "configure_logging", lambda: None)
    monkeypatch.setattr(training.launch, "prepare_launch", lambda stage, argv: None)
    monkeypatch.setattr(training.args, "parse_setup", lambda stage, argv: object())
    return seen, state


def _train(monkeypatch, events, behaviour):
    seen, _ = events

    def run_training(setup):
        seen.append("train")
        return behaviour()

    monkeypatch.setattr(training.runner, "run_training", run_training)
    with pytest.raises(_Exited) as exc:
        training.main.main("dpo", [])
    return exc.value.code


def _result():
    return RunResult(run_id="r", run_prefix="training/r", store_url="file:///s", metrics={})


def test_success_meets_the_other_ranks_then_exits(monkeypatch, events, caplog):
    caplog.set_level(logging.INFO, logger="training")
    assert _train(monkeypatch, events, _result) == 0
    assert events[0] == ["train", "barrier", "exit 0"]
    assert "rank 1 of 2 passed the final barrier" in caplog.text


def test_user_error_exits_without_waiting(monkeypatch, events, caplog):
    def fails():
        raise ValidationError("bad pairs", field="pairs")

    assert _train(monkeypatch, events, fails) == 2
    assert events[0] == ["train", "exit 2"]  # no barrier: the other ranks may never get there
    assert "bad pairs" in caplog.text


def test_crash_logs_the_traceback_and_exits_without_waiting(monkeypatch, events, caplog):
    def crashes():
        raise RuntimeError("gloo said no")

    assert _train(monkeypatch, events, crashes) == 1
    assert events[0] == ["train", "exit 1"]
    assert "training failed on this rank" in caplog.text and "RuntimeError: gloo said no" in caplog.text


def test_failed_barrier_exits_with_a_failure(monkeypatch, events, caplog):
    import torch.distributed as dist

    def barrier():
        raise RuntimeError("Connection closed by peer")

    monkeypatch.setattr(dist, "barrier", barrier)
    assert _train(monkeypatch, events, _result) == 1
    assert "final barrier failed" in caplog.text


def test_single_process_returns_and_raises(monkeypatch, events):
    seen, state = events
    state["initialized"] = False
    monkeypatch.setattr(training.runner, "run_training", lambda setup: _result())
    assert training.main.main("dpo", []) == 0

    def crashes(setup):
        raise RuntimeError("boom")

    monkeypatch.setattr(training.runner, "run_training", crashes)
    with pytest.raises(RuntimeError, match="boom"):  # a plain traceback, as before
        training.main.main("dpo", [])
    assert seen == []
