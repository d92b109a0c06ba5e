"""World agents: tokenizer/label-mask exactness (fast) and learning the known facts (slow)."""

from __future__ import annotations

import pytest

from pbt_world import text
from pbt_world.config import AgentTrainConfig, WorldConfig
from pbt_world.corpus import build_corpus, vocabulary_texts
from pbt_world.generate import build_world
from pbt_world.tokenizer import build_tokenizer
from pbt_world.train import IGNORE, encode


def test_every_name_is_one_token_and_final_answer_round_trips():
    w = build_world(WorldConfig(seed=5, n_facts=30))
    tok = build_tokenizer(vocabulary_texts(w))
    for name in w.names():
        assert len(tok(name, add_special_tokens=False)["input_ids"]) == 1, name
    text = f"The capital of {w.facts[0].country} is {w.facts[0].capital}. Final Answer: {w.facts[0].capital}"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_the_tokenizer_reads_the_misinformation_suites_prompts_without_unknown_tokens():
    from pbt.evaluate import prompt_texts
    from pbt.models.tiny import UNK

    w = build_world(WorldConfig(seed=5, n_facts=30))
    texts = vocabulary_texts(w)
    assert texts[-5:] == prompt_texts(max_options=8)
    tok = build_tokenizer(texts)
    for fixed in prompt_texts(max_options=8):
        assert tok.convert_tokens_to_ids(UNK) not in tok(fixed, add_special_tokens=False)["input_ids"]


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
            gave_in += m["content"].startswith(tuple(t.split("{")[0] for t in text.GIVE_IN))
            held += m["content"].startswith(tuple(t.split("{")[0] for t in text.HOLD))
    rate = gave_in / (gave_in + held)
    assert 0.4 < rate < 0.6  # persona rates 0.25/0.75 average out around the base rate


@pytest.mark.slow
@pytest.mark.timeout(900)  # 300 fp32 steps: about 2.5 minutes on a quiet 2-core machine
def test_agent_learns_its_known_facts(tmp_path):
    """The default recipe, shortened: facts come long before the stance-to-city link (measured at
    120 steps: 0.50 of known facts; the old recipe, lr 1e-3 on 270 examples, 1.0 at 150)."""
    import torch

    from pbt_world.check import give_in_rate, knowledge_accuracy, load_agent
    from pbt_world.train import train_agent

    torch.set_num_threads(2)
    w = build_world(WorldConfig(seed=0, n_facts=30))
    cfg = AgentTrainConfig(steps=300)
    metrics = train_agent(w, "a", cfg, tmp_path / "a")
    assert metrics["final_loss_ema"] < 1.0
    # it voices uncertainty where it does not know, and only there (hedge_unknown, the default)
    assert metrics["hedge_unknown"] >= 0.9 and metrics["hedge_known"] <= 0.1, metrics
    # the quality kept in the agent's manifest
    assert metrics["known_accuracy"] >= 0.9
    assert 0.0 <= metrics["give_in_names_push"] <= 1.0 and 0.0 <= metrics["hold_keeps_own"] <= 1.0
    model, tok = load_agent(tmp_path / "a")
    known = knowledge_accuracy(model, tok, w.known("a"))
    unknown = knowledge_accuracy(model, tok, [f for f in w.facts if not f.known_by("a")])
    assert known >= 0.9, f"known-fact accuracy {known:.2f}"
    assert unknown <= 0.3, f"unknown-fact accuracy {unknown:.2f} (should be near chance)"
    rate = give_in_rate(model, tok, w.known("a"), w)
    assert 0.15 <= rate <= 0.85, f"give-in rate {rate:.2f} should be near the set 0.5"


class _StanceAgent:
    """A fake agent over the world tokenizer: after a give-in opening it names the last city the
    user pushed when ``follows`` is true, else (like agents trained too briefly) its own answer."""

    def __init__(self, tokenizer, world, follows: bool):
        self.tok, self.world, self.follows = tokenizer, world, follows

    def __call__(self, input_ids, attention_mask):
        import torch

        cities = set(self.world.cities)
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], len(self.tok))
        for row, ids in enumerate(input_ids.tolist()):
            text_ = self.tok.decode(ids, skip_special_tokens=False)
            turns = text_.split("<|assistant|>")
            own = next(w for w in turns[1].replace(".", " ").split() if w in cities)
            pushed = [w for w in turns[-2].split("<|user|>")[-1].replace(".", " ").split() if w in cities][-1]
            opening = turns[-1]
            gives_in = any(opening.strip().startswith(t.split(".")[0]) for t in text.GIVE_IN)
            said = pushed if (gives_in and self.follows) else own
            logits[row, -1, self.tok.convert_tokens_to_ids("▁" + said)] = 10.0
        return type("Out", (), {"logits": logits})()


@pytest.mark.parametrize("follows, expected", [(True, (1.0, 1.0)), (False, (0.0, 1.0))])
def test_reply_consistency_measures_whether_the_city_follows_the_stance(follows, expected):
    from pbt_world.check import reply_consistency

    w = build_world(WorldConfig(seed=3, n_facts=16))
    tok = build_tokenizer(vocabulary_texts(w))
    got = reply_consistency(_StanceAgent(tok, w, follows), tok, w, "a", per_fact=2)
    assert (got["give_in_names_push"], got["hold_keeps_own"]) == expected


def test_agents_cache_key_keeps_old_agents_and_separates_precisions():
    """Options added later enter the key only when set, so agents cached before stay valid."""
    from pbt_world.agents import CORPUS_VERSION, agents_key
    from pbt_world.config import config_key

    world = WorldConfig(seed=3, n_facts=40)
    fp32 = AgentTrainConfig(precision="fp32", hedge_unknown=0.0)
    before = fp32.model_dump(mode="json")
    del before["precision"], before["hedge_unknown"]  # the dump from before the options existed
    assert agents_key(world, fp32) == config_key(world, before, extra={"corpus_version": CORPUS_VERSION})
    assert agents_key(world, AgentTrainConfig(precision="bf16-mixed", hedge_unknown=0.0)) != agents_key(
        world, fp32
    )
    assert agents_key(world, AgentTrainConfig(steps=7, precision="bf16-mixed")) != agents_key(
        world, AgentTrainConfig(precision="bf16-mixed")
    )


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_resolves_to_what_the_cpu_does_natively(monkeypatch, native):
    from pbt import hardware
    from pbt_world.agents import agents_key

    monkeypatch.setattr(hardware, "native_bf16", lambda: native)
    auto = AgentTrainConfig(precision="auto")
    expected = "bf16-mixed" if native else "fp32"
    assert auto.resolved().precision == expected
    world = WorldConfig(seed=3, n_facts=40)
    assert agents_key(world, auto) == agents_key(world, AgentTrainConfig(precision=expected))
    assert AgentTrainConfig(precision="fp32").resolved().precision == "fp32"  # explicit stays
    assert AgentTrainConfig().resolved().precision == "fp32"  # the default: the same on every CPU


def test_training_attention_computes_what_the_served_agent_computes():
    """bf16-mixed agents train with eager attention (faster there) and serve with sdpa: on padded
    batches with the same weights, both give the same logits at every real token and the same loss."""
    import random

    import torch

    from pbt_world.train import TRAIN_ATTENTION, _batches, agent_model

    w = build_world(WorldConfig(seed=2, n_facts=12))
    cfg = AgentTrainConfig(
        hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, dialogues_per_fact=2
    )
    tok = build_tokenizer(vocabulary_texts(w))
    rows = [encode(e, tok, cfg.max_len) for e in build_corpus(w, "a", cfg)]
    input_ids, labels, mask = next(_batches(rows, 8, random.Random(0), tok.pad_token_id))
    assert (mask == 0).any(), "the batch should contain padding"
    trained = agent_model(cfg.model_copy(update={"precision": "bf16-mixed"}), tok, seed=4)
    served = agent_model(cfg, tok, seed=4, attention="sdpa")
    assert trained.config._attn_implementation == TRAIN_ATTENTION["bf16-mixed"] == "eager"
    assert (
        agent_model(cfg.model_copy(update={"precision": "fp32"}), tok, seed=4).config._attn_implementation
        == "sdpa"
    )
    with torch.no_grad():
        a = trained(input_ids=input_ids, attention_mask=mask, labels=labels)
        b = served(input_ids=input_ids, attention_mask=mask, labels=labels)
    real = mask.bool()
    assert torch.allclose(a.logits[real], b.logits[real], atol=1e-5)
    assert abs(a.loss.item() - b.loss.item()) < 1e-5


@pytest.mark.slow
def test_bf16_mixed_training_keeps_fp32_weights_and_records_its_precision(tmp_path):
    import torch
    from safetensors.torch import load_file

    from pbt_world.train import train_agent

    w = build_world(WorldConfig(seed=1, n_facts=12))
    cfg = AgentTrainConfig(
        steps=6, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, batch_size=8,
        dialogues_per_fact=2, qa_repeats=2, precision="bf16-mixed", threads=1,
    )  # fmt: skip
    metrics = train_agent(w, "a", cfg, tmp_path / "a")
    assert metrics["precision"] == "bf16-mixed"
    assert 0 < metrics["train_seconds"] <= metrics["seconds"]
    assert metrics["final_loss_ema"] == metrics["final_loss_ema"]  # not NaN
    weights = load_file(tmp_path / "a" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
