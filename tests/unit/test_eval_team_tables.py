"""The paper's team tables (Fig. 3: same-method teams, Fig. 4: mixed teams) from team-debate records
whose numbers are worked out here by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pbt.evaluate.report import paper_team_tables, render_report, report_tables, turns_note
from pbt.evaluate.team_debate import TeamDebateSuite


def _rows(team: str, seed: int, answers: list[tuple[str, str]], alone: list[tuple[int, int]]):
    """One team's records of one seed: ``answers[i]`` = (team answer strong first, weak first) of
    item i, each ``"<strong's>|<weak's>"``; the gold answer is always x."""
    out = []
    for i, (pair, (alone_a, alone_b)) in enumerate(zip(answers, alone, strict=True)):
        for is_a_first, answer in zip((1, 0), pair, strict=True):
            a, b = answer.split("|")
            out.append(
                {
                    "team": team,
                    "order": "a_first" if is_a_first else "b_first",
                    "is_a_first": is_a_first,
                    "seed": seed,
                    "item_id": f"q{i}",
                    "correct_a": int(a == "x"),
                    "correct_b": int(b == "x"),
                    "team_correct": ((a == "x") + (b == "x")) / 2,
                    "team_answer": answer,
                    "agreed": int(a == b),
                    "alone_a": alone_a,
                    "alone_b": alone_b,
                }
            )
    return out


ALONE = [(1, 1), (1, 0), (0, 0), (1, 0)]  # strong alone 3/4, weak alone 1/4, in both seeds
#: seed 1: strong first 2.5/4 = 0.625, weak first 2/4 = 0.5, |diff| 0.125; answers change on q1, q3: 0.5
SEED1 = [("x|x", "x|x"), ("x|y", "x|x"), ("z|z", "z|z"), ("x|x", "y|y")]
#: seed 2: strong first 3/4 = 0.75, weak first 2/4 = 0.5, |diff| 0.25; answers change on q0 only: 0.25
SEED2 = [("x|x", "y|y"), ("x|x", "x|x"), ("x|x", "x|x"), ("y|y", "y|y")]


@pytest.fixture(scope="module")
def metrics():
    suite = TeamDebateSuite.__new__(TeamDebateSuite)  # the suite's grouping and statistics, no inputs
    suite.config = SimpleNamespace(bootstrap_samples=50, confidence=0.95)
    records = _rows("pbt+weak-pbt", 1, SEED1, ALONE) + _rows("pbt+weak-pbt", 2, SEED2, ALONE)
    records += _rows("pbt+weak", 1, [("x|x", "x|x")] * 4, [(1, 0)] * 4)  # order independent
    return suite.summarize(records)


def test_order_dependence_is_the_absolute_difference_per_seed_then_mean_and_std(metrics):
    team = metrics["pbt+weak-pbt"]
    assert team["order_dependence"]["per_seed"] == {"1": 0.125, "2": 0.25}
    assert team["order_dependence"]["mean"] == pytest.approx(0.1875)
    assert team["order_dependence"]["std"] == pytest.approx(0.125 / 2**0.5, abs=1e-6)
    assert team["order_changed_answers"]["per_seed"] == {"1": 0.5, "2": 0.25}
    assert team["order_changed_answers"]["mean"] == pytest.approx(0.375)
    assert team["order_changed_answers"]["std"] == pytest.approx(0.25 / 2**0.5, abs=1e-6)
    assert team["alone_a"]["mean"] == pytest.approx(0.75) and team["alone_b"]["mean"] == pytest.approx(0.25)
    assert metrics["pbt+weak-pbt/a_first"]["team_accuracy"]["per_seed"] == {"1": 0.625, "2": 0.75}
    assert metrics["pbt+weak-pbt/b_first"]["team_accuracy"]["per_seed"] == {"1": 0.5, "2": 0.5}


def _doc(metrics, teams, **turns):
    return {
        "eval_id": "ev",
        "models": [{"name": n} for n in ("pbt", "weak", "weak-pbt")],
        "seeds": [1, 2],
        "suites": {"team_debate": {"metrics": metrics}},
        "config": {"suites": {"team_debate": {"teams": teams, **turns}}},
    }


TEAMS = [
    {"a": "pbt", "b": "weak-pbt", "label": "pbt+pbt", "tables": ["same_method"]},
    {"a": "pbt", "b": "weak", "label": "base+pbt", "tables": ["mixed"]},
]


def test_fig3_and_fig4_tables_hold_both_orders_the_order_dependence_and_each_model_alone(metrics):
    same, mixed = paper_team_tables(_doc(metrics, TEAMS))
    assert (same["id"], mixed["id"]) == ("team_same_method", "team_mixed")
    assert same["title"].startswith("Fig. 3") and mixed["title"].startswith("Fig. 4")
    assert same["suite"] == mixed["suite"] == "team_debate"
    assert same["header"] == [
        "team (weak+strong)", "strong first", "weak first", "order dependence", "answers change",
        "strong alone", "weak alone",
    ]  # fmt: skip
    (row,) = same["rows"]
    texts = [c["text"] for c in row]
    assert texts[0] == "pbt+pbt" and row[0]["lineage"] == "pbt"
    assert texts[1].startswith("68.75 ± 8.84 [")  # 0.625 and 0.75: mean, sample std
    assert texts[2].startswith("50.00 ± 0.00 [")
    assert texts[3].startswith("18.75 ± 8.84 [")  # 0.125 and 0.25
    assert texts[4:] == ["37.50 ± 17.68", "75.00 ± 0.00", "25.00 ± 0.00"]
    assert all(c["page"] == "pbt+weak-pbt" for c in row[1:])
    assert [(b["label"], b["series"], b["mean"]) for b in same["chart"]] == [
        ("pbt+pbt", "strong first", 0.6875),
        ("pbt+pbt", "weak first", 0.5),
    ]
    (mrow,) = mixed["rows"]
    assert [c["text"] for c in mrow][:1] == ["base+pbt"]
    assert mrow[1]["text"].startswith("100.00 ± 0.00") and mrow[3]["text"].startswith("0.00 ± 0.00")


def test_a_team_in_both_tables_is_a_row_of_each_and_a_table_no_team_names_is_left_out(metrics):
    both = [{"a": "pbt", "b": "weak", "tables": ["same_method", "mixed"]}]
    tables = paper_team_tables(_doc(metrics, both))
    assert [t["id"] for t in tables] == ["team_same_method", "team_mixed"]
    assert [t["rows"][0][0]["text"] for t in tables] == ["pbt+weak", "pbt+weak"]  # the default label
    assert paper_team_tables(_doc(metrics, [{"a": "pbt", "b": "weak"}])) == []


def test_report_md_and_the_viewer_show_the_paper_tables_first_and_say_how_turns_count(metrics):
    doc = _doc(metrics, TEAMS)
    assert [t["id"] for t in report_tables(doc)] == ["team_same_method", "team_mixed", "team_debate"]
    md = render_report(doc)
    assert md.index("## Fig. 3") < md.index("## Fig. 4") < md.index("## Team debate")
    assert "| pbt+pbt | 68.75 ± 8.84 [" in md
    assert "4 in total, the two independent answers included" in md
    assert "3 in total" in turns_note(_doc(metrics, TEAMS, total_turns=3))
    assert "then up to 4 discussion turns (discussion_turns" in turns_note(
        _doc(metrics, TEAMS, discussion_turns=4)
    )
    assert "up to 2 discussion turns (discussion_turns" in turns_note(_doc(metrics, TEAMS, max_turns=2))

    from pbt.view.model import eval_tables

    same = eval_tables(doc)[0]
    assert same["rows"][0][1]["href"] == "items/team_debate/pbt_weak-pbt.html"  # the team's items page


def test_config_carries_the_team_tables_and_refuses_a_team_listed_twice():
    from pbt.evaluate.config import EvalConfig

    base = {
        "eval_id": "e",
        "models": [{"name": n, "endpoint": "http://127.0.0.1:1/v1"} for n in ("s", "w")],
    }
    cfg = EvalConfig.model_validate(
        {
            **base,
            "suites": {
                "team_debate": {"questions": "q", "teams": [{"a": "s", "b": "w", "tables": ["mixed"]}]}
            },
        }
    )
    assert cfg.teams()[0].tables == ["mixed"] and cfg.teams()[0].name() == "s+w"
    with pytest.raises(ValueError, match=r"lists a team twice: \['s\+w'\]"):
        EvalConfig.model_validate(
            {**base, "suites": {"team_debate": {"questions": "q", "teams": [{"a": "s", "b": "w"}] * 2}}}
        )
    with pytest.raises(ValueError, match="tables"):
        EvalConfig.model_validate(
            {
                **base,
                "suites": {
                    "team_debate": {"questions": "q", "teams": [{"a": "s", "b": "w", "tables": ["fig9"]}]}
                },
            }
        )


def test_the_team_tables_travel_through_the_grpc_config():
    from pbt.evaluate.config import EvalConfig
    from pbt.rpc import eval_config_dict_from_proto, eval_config_to_proto

    teams = [{"a": "s", "b": "w", "label": "base+base", "tables": ["same_method", "mixed"]}]
    cfg = EvalConfig.model_validate(
        {
            "eval_id": "e",
            "models": [{"name": n, "endpoint": "http://127.0.0.1:1/v1"} for n in ("s", "w")],
            "suites": {"team_debate": {"questions": "q", "teams": teams}},
        }
    )
    back = EvalConfig.model_validate(eval_config_dict_from_proto(eval_config_to_proto(cfg)))
    assert back.suites.team_debate.teams == cfg.suites.team_debate.teams
