"""World agents that voice uncertainty (`AgentTrainConfig.hedge_unknown`): corpus, items, cache key."""

from __future__ import annotations

import json

from pbt_world import text
from pbt_world.agents import CORPUS_VERSION, agents_key
from pbt_world.balanced_items import balanced_items
from pbt_world.check import is_hedged
from pbt_world.config import AgentTrainConfig, WorldConfig, config_key
from pbt_world.corpus import build_corpus, vocabulary_texts
from pbt_world.demo.pipeline import balanced_items_file
from pbt_world.generate import build_world, question_text

GIVE_IN_OPENINGS = tuple(t.split("{")[0] for t in text.GIVE_IN)
HOLD_OPENINGS = tuple(t.split("{")[0] for t in text.HOLD)
GUESS_GIVE_IN = tuple(t.split("{")[0] for t in text.UNSURE_GIVE_IN)
GUESS_HOLD = tuple(t.split("{")[0] for t in text.UNSURE_HOLD)
AGREE_OPENINGS = tuple(t.split("{")[0] for t in text.AGREE)


def _world():
    return build_world(WorldConfig(seed=3, n_facts=40))


def _first_answers(world, examples):
    """(fact, first assistant message) of every conversation whose first assistant turn states the
    agent's own answer (not giving in to, or agreeing with, the other agent who spoke first)."""
    by_question = {question_text(f.country): f for f in world.facts}
    for ex in examples:
        if len(ex.messages) < 2 or ex.messages[1]["role"] != "assistant":
            continue
        if ex.messages[1]["content"].startswith(GIVE_IN_OPENINGS + AGREE_OPENINGS):
            continue
        fact = next((f for q, f in by_question.items() if q in ex.messages[0]["content"]), None)
        if fact is None:  # multiple choice: the country is in the question line
            fact = next(f for f in world.facts if f" {f.country}" in ex.messages[0]["content"])
        yield fact, ex.messages[1]["content"]


def test_every_template_is_recognised_and_only_unsure_ones_hedge():
    kw = {"country": "Zorvani", "city": "Kelmora"}
    assert all(is_hedged(t.format(**kw)) for t in text.UNSURE)
    others = [*text.ANSWER, *text.HOLD, *text.GIVE_IN, *text.AGREE, *text.SURE_HOLD, *text.SURE_GIVE_IN]
    others += [*text.UNSURE_GIVE_IN, *text.UNSURE_HOLD]  # replies after a hedge, not a first answer
    assert not any(is_hedged(t.format(**kw)) for t in others)


def test_hedging_agent_hedges_every_first_answer_on_unknown_facts_and_none_on_known():
    w = _world()
    cfg = AgentTrainConfig(hedge_unknown=1.0, dialogues_per_fact=6, qa_repeats=2)
    seen = {True: 0, False: 0}
    for fact, answer in _first_answers(w, build_corpus(w, "b", cfg)):
        known = fact.known_by("b")
        assert is_hedged(answer) is (not known), (fact.country, known, answer)
        seen[known] += 1
    assert seen[True] > 50 and seen[False] > 50


def test_hedge_rate_is_a_rate():
    w = _world()
    cfg = AgentTrainConfig(hedge_unknown=0.5, dialogues_per_fact=10, qa_repeats=5)
    unknown = [is_hedged(a) for f, a in _first_answers(w, build_corpus(w, "a", cfg)) if not f.known_by("a")]
    assert 0.4 < sum(unknown) / len(unknown) < 0.6


def test_hedged_answers_are_given_up_as_often_as_confident_ones_and_the_reply_recalls_the_guess():
    """The base stays sycophantic: hedging changes the words, not how often it gives in."""
    w = _world()
    cfg = AgentTrainConfig(hedge_unknown=1.0, give_in_rate=0.5, dialogues_per_fact=30, qa_repeats=0)
    after = {True: [0, 0], False: [0, 0]}  # hedged first answer -> [gave in, held]
    for ex in build_corpus(w, "a", cfg):
        m = ex.messages
        if len(m) < 4 or m[1]["role"] != "assistant" or m[2]["content"] == text.ARE_YOU_SURE:
            continue
        if m[1]["content"].startswith(GIVE_IN_OPENINGS + AGREE_OPENINGS):  # the other spoke first
            continue
        hedged, reply = is_hedged(m[1]["content"]), m[3]["content"]
        if reply.startswith(AGREE_OPENINGS):
            continue
        gave_in = reply.startswith(GUESS_GIVE_IN if hedged else GIVE_IN_OPENINGS)
        held = reply.startswith(GUESS_HOLD if hedged else HOLD_OPENINGS)
        assert gave_in != held, (
            m[1]["content"],
            reply,
        )  # a hedged answer's reply recalls the guess, and only it
        after[hedged][0 if gave_in else 1] += 1
    rates = {h: gi / (gi + hd) for h, (gi, hd) in after.items()}
    assert sum(after[True]) > 100 and sum(after[False]) > 100
    assert abs(rates[True] - rates[False]) < 0.1, rates


def test_other_agent_first_turns_hedge_too_so_hedges_are_in_the_agents_reading():
    w = _world()
    cfg = AgentTrainConfig(hedge_unknown=1.0, dialogues_per_fact=10, qa_repeats=0)
    user_turns = [
        m["content"] for ex in build_corpus(w, "a", cfg) for m in ex.messages if m["role"] == "user"
    ]
    assert any(t.split("\n\n")[-1].startswith("I am not sure.") for t in user_turns)


def test_no_hedge_leaves_corpus_vocabulary_and_cache_key_as_before():
    w = _world()
    plain = AgentTrainConfig(hedge_unknown=0.0, precision="fp32", dialogues_per_fact=5, qa_repeats=2)
    assert not any(is_hedged(m["content"]) for ex in build_corpus(w, "a", plain) for m in ex.messages)
    assert "guess" not in " ".join(vocabulary_texts(w, hedge=False)).split()
    assert "guess" in " ".join(vocabulary_texts(w, hedge=True)).split()
    # the options enter the key only when set (fp32 agents cached before they existed stay cached)
    dumped = plain.model_dump(mode="json")
    del dumped["hedge_unknown"], dumped["precision"]
    key_before = config_key(w.config, dumped, extra={"corpus_version": CORPUS_VERSION})
    assert agents_key(w.config, plain) == key_before
    assert agents_key(w.config, plain) != agents_key(
        w.config, plain.model_copy(update={"hedge_unknown": 1.0})
    )
    assert AgentTrainConfig().hedge_unknown == 1.0  # the default since the fifth round (docs/demo.md)


def test_hedged_balanced_items_hedge_the_accept_items_only(tmp_path):
    w = build_world(WorldConfig(seed=0, n_facts=100))
    plain, hedged = balanced_items(w, "a"), balanced_items(w, "a", hedge=True)
    assert len(plain) == len(hedged) == 72
    for p, h in zip(plain, hedged, strict=True):
        assert (p["code"], p["prompt"][0], p["prompt"][2]) == (h["code"], h["prompt"][0], h["prompt"][2])
        accept = h["code"] == "accept"
        assert is_hedged(h["prompt"][1]["content"]) is accept
        if accept:  # the replies recall the guess; the cities stay those of the plain item
            assert h["chosen"][0]["content"].startswith(GUESS_GIVE_IN)
            assert h["rejected"][0]["content"].startswith(GUESS_HOLD)
            for key in ("chosen", "rejected"):
                assert h[key][0]["content"].endswith(p[key][0]["content"].rsplit("Final Answer:", 1)[1])
        else:
            assert (h["chosen"], h["rejected"]) == (p["chosen"], p["rejected"])
        assert not is_hedged(p["prompt"][1]["content"])
    # the demo uses them only for hedging agents
    world_dir = tmp_path / "world"
    plain_agent = AgentTrainConfig(hedge_unknown=0.0)
    assert balanced_items_file(w, world_dir, tmp_path, plain_agent) == world_dir / "balanced" / "world.jsonl"
    path = balanced_items_file(w, world_dir, tmp_path, AgentTrainConfig(hedge_unknown=1.0))
    assert [json.loads(line) for line in path.read_text().splitlines()] == json.loads(json.dumps(hedged))
