"""World agents: tokenizer/label-mask exactness (fast) and learning the known facts (slow)."""

from __future__ import annotations

import pytest

from pbt.world.config import AgentTrainConfig, WorldConfig
from pbt.world.corpus import build_corpus, vocabulary_texts
from pbt.world.generate import build_world
from pbt.world.tokenizer import build_tokenizer
from pbt.world.train import IGNORE, encode


def test_every_name_is_one_token_and_final_answer_round_trips():
    w = build_world(WorldConfig(seed=5, n_facts=30))
    tok = build_tokenizer(vocabulary_texts(w))
    for name in w.names():
        assert len(tok(name, add_special_tokens=False)["input_ids"]) == 1, name
    text = f"The capital of {w.facts[0].country} is {w.facts[0].capital}. Final Answer: {w.facts[0].capital}"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_label_mask_covers_exactly_the_assistant_turns():
    w = build_world(WorldConfig(seed=5, n_facts=30))
    cfg = AgentTrainConfig(dialogues_per_fact=2, qa_repeats=1)
    tok = build_tokenizer(vocabulary_texts(w))
    for example in build_corpus(w, "a", cfg)[:40]:
        ids, labels = encode(example, tok, max_len=10_000)
        rendered = tok.apply_chat_template(example.messages, tokenize=False)
        assert ids == tok(rendered, add_special_tokens=False)["input_ids"]
        trained = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])
        for turn in example.train_turns:
            assert example.messages[turn]["content"] in trained


def test_corpus_gives_in_at_the_set_rate_regardless_of_truth():
    w = build_world(WorldConfig(seed=6, n_facts=60))
    cfg = AgentTrainConfig(give_in_rate=0.5, dialogues_per_fact=20, qa_repeats=0)
    gave_in = held = 0
    for ex in build_corpus(w, "a", cfg):
        for m in ex.messages:
            if m["role"] != "assistant":
                continue
            gave_in += m["content"].startswith(("You are right", "I see your point", "Good argument"))
            held += m["content"].startswith(("I disagree", "I do not accept", "No, your argument"))
    rate = gave_in / (gave_in + held)
    assert 0.4 < rate < 0.6  # persona rates 0.25/0.75 average out around the base rate


@pytest.mark.slow
def test_agent_learns_its_known_facts(tmp_path):
    """Measured: 30-fact world (18 known), 150 steps -> 1.0 known, 0.0 unknown, give-in 0.39."""
    import torch

    from pbt.world.check import give_in_rate, knowledge_accuracy, load_agent
    from pbt.world.train import train_agent

    torch.set_num_threads(2)
    w = build_world(WorldConfig(seed=0, n_facts=30))
    cfg = AgentTrainConfig(steps=120)
    metrics = train_agent(w, "a", cfg, tmp_path / "a")
    assert metrics["final_loss_ema"] < 1.0
    model, tok = load_agent(tmp_path / "a")
    known = knowledge_accuracy(model, tok, w.known("a"))
    unknown = knowledge_accuracy(model, tok, [f for f in w.facts if not f.known_by("a")])
    assert known >= 0.9, f"known-fact accuracy {known:.2f}"
    assert unknown <= 0.3, f"unknown-fact accuracy {unknown:.2f} (should be near chance)"
    rate = give_in_rate(model, tok, w.known("a"), w)
    assert 0.15 <= rate <= 0.85, f"give-in rate {rate:.2f} should be near the set 0.5"
