"""The demo report's cross-seed summary and pattern checks, on hand-made evaluator summaries."""

from __future__ import annotations

import pytest

from pbt_world.demo.report import effect_checks, summarize, summary_markdown
from pbt_world.demo.settings import DemoSettings


def _summary(
    bal: dict[str, float],
    misinfo: dict[str, float],
    od: dict[str, float],
    mixed: dict[str, float] | None = None,
) -> dict:
    """``od``: order dependence of the same-method teams (strong k with weak k), ``mixed``: of the
    mixed teams (strong k with the untrained weak agent; default 0.3 each)."""

    def m(v: float) -> dict:
        return {"mean": v, "std": 0.0}

    weak = {"base": "weak", "accept": "weak-accept", "resist": "weak-resist", "pbt": "weak-pbt"}
    teams = {f"{k}+{weak[k]}": {"order_dependence": m(v)} for k, v in od.items()}
    for k, v in (mixed or dict.fromkeys(od, 0.3)).items():
        teams.setdefault(f"{k}+weak", {"order_dependence": m(v)})  # base+weak is base+base: already there

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
            "team_debate": {"metrics": teams},
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
    assert checks["PBT has the smallest order dependence (same-method teams, Fig. 3)"] is True
    # base+base is one team in both tables: the mixed column reads its same-method value, 0.2
    assert table["base"]["mixed order dep."]["mean"] == pytest.approx(0.2)
    assert table["pbt"]["mixed order dep."]["mean"] == pytest.approx(0.3)
    assert checks["PBT has the smallest order dependence (mixed teams, Fig. 4)"] is False
    md = summary_markdown(table, [0, 1])
    assert "| pbt | " in md and "80.0 ± 14.1" in md and "n/a" in md


def test_fast_preset_is_smaller_than_the_default():
    fast, full = DemoSettings.fast(), DemoSettings()
    assert fast.n_facts < full.n_facts and fast.agent.steps < full.agent.steps
    assert fast.dpo.epochs < full.dpo.epochs
    assert DemoSettings.fast(seeds=[3]).seeds == [3]


def test_sign_test_is_the_exact_two_sided_binomial():
    from pbt_world.demo.significance import sign_test

    assert sign_test(0, 0) == 1.0
    assert sign_test(10, 0) == pytest.approx(2 / 2**10)
    assert sign_test(3, 3) == 1.0
    assert sign_test(33, 24) == sign_test(24, 33) == pytest.approx(0.2892, abs=1e-4)
    assert sign_test(40, 20) == pytest.approx(0.01348, abs=1e-4)  # binom(60, 1/2), P(X >= 40) doubled


def test_paired_counts_and_the_report_section(tmp_path):
    from pbt.evaluate.results import examples_key
    from pbt.store import open_store
    from pbt_world.demo.report import paired_markdown
    from pbt_world.demo.significance import balanced_paired, paired_counts

    # one seed: items 0-3 both right, PBT only, base only, neither; item 4 only the base answered
    pbt = [1, 1, 0, 0]
    base = [1, 0, 1, 0, 1]
    rows = [{"model": "pbt", "item_id": f"i{i}", "seed": 7, "correct": c} for i, c in enumerate(pbt)]
    rows += [{"model": "base", "item_id": f"i{i}", "seed": 7, "correct": c} for i, c in enumerate(base)]
    rows += [{"model": "accept", "item_id": "i0", "seed": 7, "correct": 0}]  # other models: ignored
    counts = paired_counts(rows)
    assert counts == {"items": 4, "model_better": 1, "baseline_better": 1, "ties": 2}
    # a second seed: item i2 now right for PBT too (1 of 2 each: a tie), i3 right for PBT only
    rows2 = rows + [
        {"model": m, "item_id": f"i{i}", "seed": 8, "correct": c}
        for m, cs in (("pbt", [1, 1, 1, 1]), ("base", [1, 0, 0, 0])) for i, c in enumerate(cs)
    ]  # fmt: skip
    assert paired_counts(rows2) == {"items": 4, "model_better": 2, "baseline_better": 0, "ties": 2}
    store = open_store(str(tmp_path / "store"))
    store.put_jsonl(examples_key("ev", "balanced"), rows)
    assert balanced_paired(store, "ev") == counts
    assert balanced_paired(store, "missing")["items"] == 0
    records = [
        {"seed": 0, "paired": {"items": 72, "model_better": 30, "baseline_better": 10, "ties": 32}},
        {"seed": 1, "paired": {"items": 72, "model_better": 10, "baseline_better": 10, "ties": 52}},
    ]
    md, total = paired_markdown(records)
    assert (total["model_better"], total["baseline_better"], total["items"]) == (40, 20, 144)
    assert total["p_value"] == pytest.approx(0.01348, abs=1e-4)
    assert "| all | 144 | 40 | 20 | 84 |" in md and "significant at 0.05" in md
    assert "not significant" not in md
    assert paired_markdown([{"seed": 0, "summary": {}}]) == ("", None)


def test_eval_config_is_greedy_by_default_and_samples_when_asked(tmp_path):
    from pbt_world.demo.stages import eval_config

    def cfg(**kw):
        return eval_config(
            eval_id="e", models={"base": ("http://x/v1", "a"), "weak": ("http://y/v1", "b")},
            teams=[{"a": "base", "b": "weak"}],
            world_dir=tmp_path, pairs_key="balanced.jsonl", settings=DemoSettings(**kw), store_url=str(tmp_path),
        )  # fmt: skip

    greedy = cfg()
    assert greedy.sampling.temperature == 0.0 and greedy.seeds == [12]
    sampled = cfg(eval_temperature=1.0, eval_seeds=[12, 42, 64])
    assert sampled.sampling.temperature == 1.0 and sampled.seeds == [12, 42, 64]
    assert sampled.suites.balanced.pairs == "balanced.jsonl"
    assert [t.a for t in sampled.suites.team_debate.teams] == ["base"]


def test_report_records_the_cpu_class_torch_threads_and_agent_precision(monkeypatch):
    from pbt import hardware
    from pbt_world.demo.report import compute_record
    from pbt_world.demo.settings import DemoSettings

    monkeypatch.setattr(hardware, "_detected_class", lambda: "amx")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    rec = compute_record(DemoSettings(threads=2))
    assert (rec["cpu_class"], rec["threads"], rec["agent_precision"]) == ("avx512-bf16", 2, "fp32")
    auto = compute_record(DemoSettings.model_validate({"agent": {"precision": "auto"}}))
    assert auto["agent_precision"] == "bf16-mixed"  # what 'auto' resolves to on the emulated class


def test_the_viewer_shows_the_summary_in_the_order_the_report_records():
    from pbt.view.model import demo_summary_order
    from pbt_world.demo.report import summary_order

    summary = {
        m: {"order dependence": {}, "misinfo rate": {}, "zeta": {}}
        for m in ("resist", "accept", "pbt", "base")
    }
    models, cols = demo_summary_order(summary, summary_order())
    assert models == ["base", "accept", "resist", "pbt"]
    assert cols == ["misinfo rate", "order dependence", "zeta"]
