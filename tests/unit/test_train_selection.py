"""Balanced persuasion accuracy for model selection during training (training/selection.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from pair_files import make_pairs

from pbt.errors import ValidationError
from training import selection


def test_dev_items_need_gold_answers():
    rows = make_pairs(0, 4)
    items = selection.dev_items(rows, "pairs.jsonl")
    assert [it.code for it in items] == ["resist", "accept", "resist", "accept"]
    assert items[0].aliases == ("Paris",) and items[0].question == "What is the capital of France?"
    del rows[2]["gold"]
    with pytest.raises(ValidationError, match=r"pairs.jsonl.*gold aliases.*synthetic-2"):
        selection.dev_items(rows, "pairs.jsonl")


def test_balanced_scores_average_the_two_directions():
    items = selection.dev_items(make_pairs(0, 6), "p")  # resist, accept, resist, accept, resist, accept
    scores = selection.balanced_scores(items, [True, False, True, True, False, False])
    assert scores["balanced_resist"] == pytest.approx(2 / 3)
    assert scores["balanced_accept"] == pytest.approx(1 / 3)
    assert scores["balanced_accuracy"] == pytest.approx(0.5)
    only_resist = selection.balanced_scores(items[:1], [True])
    assert only_resist["balanced_accuracy"] == 1.0 and math.isnan(only_resist["balanced_accept"])


def test_callback_scores_replies_with_the_rule_extractor(monkeypatch):
    rows = make_pairs(0, 4)
    items = selection.dev_items(rows, "p")
    # the model keeps its first answer every time: right for resist items, wrong for accept items
    replies = [
        f"I am sure. Final Answer: {r['prompt'][2]['content'].split('Final Answer: ')[1]}" for r in rows
    ]
    monkeypatch.setattr(selection, "generate", lambda model, tok, prompts, n, bs: replies[: len(prompts)])
    callback = selection.BalancedAccuracyCallback(items, tokenizer=None, extractor="rule")
    metrics = {"eval_loss": 0.3}
    args = SimpleNamespace(process_index=0, world_size=1)
    state = SimpleNamespace(global_step=7, log_history=[], is_world_process_zero=True)
    callback.on_evaluate(args, state, None, model=object(), metrics=metrics)
    assert metrics["eval_balanced_resist"] == 1.0 and metrics["eval_balanced_accept"] == 0.0
    assert metrics["eval_balanced_accuracy"] == 0.5
    assert state.log_history == [{"step": 7, "eval_balanced_accuracy": 0.5, "eval_balanced_resist": 1.0,
                                  "eval_balanced_accept": 0.0}]  # fmt: skip
    train_pass = {"train_pairs_loss": 0.2}
    callback.on_evaluate(args, state, None, model=object(), metrics=train_pass)
    assert "eval_balanced_accuracy" not in train_pass  # only dev evaluations are scored


def test_select_by_follows_the_extractor():
    from pathlib import Path

    from training.args import parse_setup

    cfg = str(Path(__file__).resolve().parents[2] / "training" / "configs" / "dpo-tiny.yaml")
    base = ["--config", cfg, "--pairs", "p", "--base_model", "/m"]
    setup = parse_setup("dpo", [*base, "--extractor", "rule"])
    assert setup.run.select_by == "balanced_accuracy"
    assert setup.trainer.metric_for_best_model == "balanced_accuracy" and setup.trainer.greater_is_better
    assert parse_setup("dpo", base).trainer.metric_for_best_model == "rewards/accuracies"
    with pytest.raises(ValidationError, match="needs an extractor"):
        parse_setup("dpo", [*base, "--select_by", "balanced_accuracy"])


def test_launch_action_reads_the_rendezvous_environment():
    from training.launch import launch_action

    assert launch_action({}) == "run"
    assert launch_action({"LOCAL_RANK": "1", "PET_NNODES": "2"}) == "run"  # already started by torchrun
    assert launch_action({"PET_NNODES": "2", "PET_NPROC_PER_NODE": "8", "PET_MASTER_ADDR": "m"}) == "torchrun"
    assert (
        launch_action({"WORLD_SIZE": "4", "RANK": "2", "MASTER_ADDR": "m", "MASTER_PORT": "23456"})
        == "one-per-pod"
    )
    assert launch_action({"WORLD_SIZE": "1", "RANK": "0", "MASTER_ADDR": "m"}) == "run"
