"""The demo report's cross-seed summary and pattern checks, on hand-made evaluator summaries."""

from __future__ import annotations

import pytest

from pbt.world.demo.report import effect_checks, summarize, summary_markdown
from pbt.world.demo.settings import DemoSettings


def _summary(bal: dict[str, float], misinfo: dict[str, float], od: dict[str, float]) -> dict:
    def m(v: float) -> dict:
        return {"mean": v, "std": 0.0}

    return {
        "suites": {
            "misinformation": {
                "metrics": {f"{k}/Avg": {"misinformation_rate_avg": m(v)} for k, v in misinfo.items()}
            },
            "balanced": {
                "metrics": {
                    k: {"overall": m(v), "accuracy_resist": m(v), "accuracy_accept": m(v)}
                    for k, v in bal.items()
                }
            },
            "team_debate": {"metrics": {f"{k}+weak": {"order_dependence": m(v)} for k, v in od.items()}},
        }
    }


def test_summary_is_mean_and_std_over_seeds_and_checks_follow_the_means():
    records = [
        {"summary": _summary({"base": 0.5, "accept": 0.5, "resist": 0.5, "pbt": 0.7},
                             {"base": 0.4, "accept": 0.8, "resist": 0.1, "pbt": 0.2},
                             {"base": 0.2, "accept": 0.1, "resist": 0.1, "pbt": 0.0})},
        {"summary": _summary({"base": 0.5, "accept": 0.5, "resist": 0.5, "pbt": 0.9},
                             {"base": 0.6, "accept": 0.8, "resist": 0.3, "pbt": 0.2},
                             {"base": 0.2, "accept": 0.1, "resist": 0.1, "pbt": 0.0})},
    ]  # fmt: skip
    table = summarize(records)
    assert table["pbt"]["bal. overall"]["mean"] == pytest.approx(0.8)
    assert table["pbt"]["bal. overall"]["std"] == pytest.approx(0.1414, abs=1e-3)
    assert table["base"]["misinfo rate"]["mean"] == pytest.approx(0.5)
    assert table["base"]["AYS before"]["mean"] is None  # suite absent: not measured, not zero
    checks = effect_checks(table)
    assert checks["PBT balanced accuracy above base"] is True
    assert checks["PBT has the best balanced accuracy"] is True
    assert checks["resist lowers the misinformation rate (vs base)"] is True
    assert checks["accept raises the misinformation rate (vs base)"] is True
    assert checks["PBT has the smallest order dependence"] is True
    md = summary_markdown(table, [0, 1])
    assert "| pbt | " in md and "80.0 ± 14.1" in md and "n/a" in md


def test_fast_preset_is_smaller_than_the_default():
    fast, full = DemoSettings.fast(), DemoSettings()
    assert fast.n_facts < full.n_facts and fast.agent.steps < full.agent.steps
    assert fast.dpo.epochs < full.dpo.epochs
    assert DemoSettings.fast(seeds=[3]).seeds == [3]
