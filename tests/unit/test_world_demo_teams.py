"""The demo trains both agents per method and evaluates the paper's teams: same-method teams (Fig. 3)
and mixed teams (Fig. 4), with the reference's turn count by default."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pbt_world.demo.settings import METHODS, DemoSettings
from pbt_world.demo.stages import demo_teams, dpo_config, eval_config, weak_name

WEAK = {"base": "weak", "accept": "weak-accept", "resist": "weak-resist", "pbt": "weak-pbt"}


def _config(tmp_path, **settings):
    names = [*METHODS, *map(weak_name, METHODS)]
    return eval_config(
        eval_id="e", models={n: (f"http://127.0.0.1:{i + 1}/v1", n) for i, n in enumerate(names)},
        teams=demo_teams(), world_dir=tmp_path, pairs_key="balanced.jsonl", settings=DemoSettings(**settings),
        store_url=str(tmp_path),
    )  # fmt: skip


def test_weak_agent_names():
    assert {m: weak_name(m) for m in METHODS} == WEAK


def test_same_method_and_mixed_teams_for_every_method(tmp_path):
    cfg = _config(tmp_path)
    teams = {(t.a, t.b): t for t in cfg.teams()}
    assert len(teams) == 7  # base+base is one team in both tables
    for m in METHODS:
        same = teams[(m, WEAK[m])]  # strong trained with m, weak trained with m
        assert same.label == f"{m}+{m}" and "same_method" in same.tables
        mixed = teams[(m, "weak")]  # the untrained weak agent with the strong one of method m
        assert mixed.label == ("base+base" if m == "base" else f"base+{m}") and "mixed" in mixed.tables
    assert [t.label for t in cfg.teams() if "same_method" in t.tables] == [
        "base+base", "accept+accept", "resist+resist", "pbt+pbt",
    ]  # fmt: skip
    assert [t.label for t in cfg.teams() if "mixed" in t.tables] == [
        "base+base", "base+accept", "base+resist", "base+pbt",
    ]  # fmt: skip
    assert [m.name for m in cfg.models] == [
        "base", "accept", "resist", "pbt", "weak", "weak-accept", "weak-resist", "weak-pbt",
    ]  # fmt: skip


def test_team_turns_are_the_references_total_by_default_and_the_other_reading_when_asked(tmp_path):
    td = _config(tmp_path).suites.team_debate
    assert (td.total_turns, td.discussion_turns, td.discussion()) == (4, None, 2)
    other = _config(tmp_path, team_turns_count="discussion").suites.team_debate
    assert (other.total_turns, other.discussion_turns, other.discussion()) == (None, 4, 4)
    assert DemoSettings.fast().team_debate_turns() == {"total_turns": 4}
    with pytest.raises(ValueError, match="team_turns"):
        DemoSettings(team_turns=1)


def test_the_weak_agent_has_its_own_dpo_settings_in_the_reduced_run():
    fast = DemoSettings.fast()
    assert dpo_config(fast, 0, "a")["num_train_epochs"] == fast.dpo.epochs
    assert dpo_config(fast, 0, "b")["num_train_epochs"] == fast.weak_dpo.epochs < fast.dpo.epochs
    full = DemoSettings()
    assert dpo_config(full, 0, "b") == dpo_config(full, 0, "a")  # unset: the strong agent's


def test_each_agent_trains_on_its_own_replies_by_default_and_a_missing_code_is_named():
    from pbt_world.demo.pipeline import missing_codes

    assert DemoSettings().pair_agents == "own"
    assert missing_codes({"accept": 3, "resist": 1}) == []
    assert missing_codes({"accept": 3, "resist": 0}) == ["resist"]
    assert missing_codes({}) == ["accept", "resist"]


def test_the_report_says_what_was_trained_and_how_turns_count():
    from pbt_world.demo.report import training_note

    note = training_note(DemoSettings())
    assert "each agent on the pairs of its own replies" in note
    assert "4 turns in total, the two independent answers included (the reference's reading)" in note
    other = training_note(DemoSettings(pair_agents="both", team_turns_count="discussion"))
    assert "both agents on every labelled pair" in other and "not the reference's reading" in other


def test_extract_pairs_gives_each_agent_its_own_file_or_every_pair_where_its_own_lack_a_code(monkeypatch):
    from pbt_world.demo import pipeline, stages

    counts = {
        "both": {"accept.train": 5, "resist.train": 9, "pbt.train": 10},
        "a": {"accept.train": 1, "resist.train": 9, "pbt.train": 2},
        "b": {"accept.train": 4, "resist.train": 0, "pbt.train": 0},
    }
    calls = []

    def fake(address, *, job_id, pair_agents, output_id=None, **kw):
        calls.append((pair_agents, output_id))
        return stages.PrefsResult(output_id=output_id or job_id, output_uri="", manifest_uri=f"m-{pair_agents}",
                                  counts=counts[pair_agents])  # fmt: skip

    monkeypatch.setattr(stages, "extract_preferences", fake)
    trees = stages.TreesResult(
        job_id="r-s0-trees", output_uri="", manifest_uri="", trees=4, nodes=9, seconds=0
    )
    ui = SimpleNamespace(say=lambda text: None)
    record = {"artifacts": {}}
    keys = pipeline.extract_pairs("addr", trees, DemoSettings(), "store", 0, record, ui)
    assert calls == [("both", None), ("a", "r-s0-trees-a"), ("b", "r-s0-trees-b")]
    assert keys == {"a": "prefs/r-s0-trees-a/labelled.jsonl", "b": "prefs/r-s0-trees/labelled.jsonl"}
    assert record["pair_source"] == {"a": "own", "b": "both: its own replies gave no resist pairs"}
    assert record["artifacts"]["pairs_b"] == "m-b" and record["pairs_by_agent"]["a"] == counts["a"]
    calls.clear()
    shared = pipeline.extract_pairs(
        "addr", trees, DemoSettings(pair_agents="both"), "store", 0, {"artifacts": {}}, ui
    )
    assert calls == [("both", None)] and shared == dict.fromkeys("ab", "prefs/r-s0-trees/labelled.jsonl")


def test_the_two_agents_runs_of_a_mode_train_at_the_same_time_or_one_after_the_other(monkeypatch):
    import threading

    from pbt_world.demo import pipeline, stages

    both_started = threading.Barrier(2, timeout=5)
    seen = []

    def fake(*, agent, run_id, **kw):
        seen.append(agent)
        if parallel:
            both_started.wait()  # fails (BrokenBarrierError) unless the other run is under way too
        return run_id

    monkeypatch.setattr(stages, "train_dpo", fake)
    runs = {"a": {"agent": "a", "run_id": "x-dpo-pbt"}, "b": {"agent": "b", "run_id": "x-dpo-weak-pbt"}}
    for parallel in (True, False):
        seen.clear()
        assert pipeline.train_both(parallel, runs) == {"a": "x-dpo-pbt", "b": "x-dpo-weak-pbt"}
        assert sorted(seen) == ["a", "b"]
    assert DemoSettings().dpo_parallel is True


def test_the_evaluation_id_follows_the_settings_that_shape_the_results(tmp_path):
    """A demo resumed with a sampled evaluation after a greedy one gets its own results folder
    (the evaluator refuses a second config under one id); the same settings get the same id back."""
    greedy, again = _config(tmp_path), _config(tmp_path)
    sampled = _config(tmp_path, eval_temperature=1.0, eval_seeds=[12, 42, 64])
    assert greedy.eval_id == again.eval_id and greedy.eval_id.startswith("e-")
    assert sampled.eval_id != greedy.eval_id and sampled.eval_id.startswith("e-")
    assert _config(tmp_path, team_turns=6).eval_id not in (greedy.eval_id, sampled.eval_id)
