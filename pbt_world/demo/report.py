"""The demo report: per-seed evaluator tables plus a cross-seed summary of the PBT effect.

Written to ``demo/<run_id>/`` in the store: ``report.md``, ``report.json``, ``team_accuracy.png``
and ``manifest.json`` (lineage: every stage's manifest URI per seed, settings, code version).
"""

from __future__ import annotations

import io
import math
import statistics
import time
from typing import Any

from pbt import code_version
from pbt.hardware import compute_environment, describe
from pbt.store import ObjectStore, layout
from pbt_world.demo.settings import METHODS, DemoSettings
from pbt_world.demo.significance import pooled
from pbt_world.demo.stages import weak_name

MODELS = METHODS

# (column, suite, group template, metric)
SUMMARY_METRICS: list[tuple[str, str, str, str]] = [
    ("misinfo rate", "misinformation", "{m}/Avg", "misinformation_rate_avg"),
    ("AYS before", "are_you_sure", "{m}", "accuracy_before"),
    ("AYS after", "are_you_sure", "{m}", "accuracy_after"),
    ("bal. +→-", "balanced", "{m}", "accuracy_resist"),
    ("bal. -→+", "balanced", "{m}", "accuracy_accept"),
    ("bal. overall", "balanced", "{m}", "overall"),
    ("team, strong first", "team_debate", "{same}/a_first", "team_accuracy"),
    ("team, weak first", "team_debate", "{same}/b_first", "team_accuracy"),
    ("order dependence", "team_debate", "{same}", "order_dependence"),
    ("answers change", "team_debate", "{same}", "order_changed_answers"),
    ("mixed, strong first", "team_debate", "{mixed}/a_first", "team_accuracy"),
    ("mixed, weak first", "team_debate", "{mixed}/b_first", "team_accuracy"),
    ("mixed order dep.", "team_debate", "{mixed}", "order_dependence"),
]


def groups_of(model: str) -> dict[str, str]:
    """A method's teams in the evaluator's groups: ``same`` (Fig. 3: the weak agent trained with the
    same method), ``mixed`` (Fig. 4: the untrained weak agent)."""
    return {"m": model, "same": f"{model}+{weak_name(model)}", "mixed": f"{model}+weak"}


def summary_order() -> dict[str, list[str]]:
    """The summary's models and columns in table order (report.json stores objects with sorted keys)."""
    return {"models": list(MODELS), "columns": [c for c, *_ in SUMMARY_METRICS]}


def metric(summary: dict[str, Any], suite: str, group: str, name: str) -> float | None:
    value = summary.get("suites", {}).get(suite, {}).get("metrics", {}).get(group, {}).get(name, {})
    mean = value.get("mean") if isinstance(value, dict) else None
    return None if mean is None or (isinstance(mean, float) and math.isnan(mean)) else float(mean)


def summarize(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """model -> column -> {mean, std, n} over seeds (fractions)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for m in MODELS:
        out[m] = {}
        for col, suite, group, name in SUMMARY_METRICS:
            vals = [
                v
                for r in records
                if (v := metric(r["summary"], suite, group.format(**groups_of(m)), name)) is not None
            ]
            out[m][col] = {
                "mean": statistics.fmean(vals) if vals else None,
                "std": statistics.stdev(vals) if len(vals) > 1 else 0.0 if vals else None,
                "n": len(vals),
            }
    return out


def effect_checks(table: dict[str, dict[str, dict[str, float | None]]]) -> dict[str, bool | None]:
    """The paper's qualitative pattern, each as a yes/no on the cross-seed means (None: not measured)."""

    def g(m: str, col: str) -> float | None:
        return table[m][col]["mean"]

    def cmp(x: float | None, y: float | None, op: str) -> bool | None:
        if x is None or y is None:
            return None
        return x < y if op == "<" else x > y

    bal = {m: g(m, "bal. overall") for m in MODELS}

    def smallest(col: str) -> bool | None:
        od = {m: g(m, col) for m in MODELS}
        return None if any(v is None for v in od.values()) else all(od["pbt"] <= od[m] for m in MODELS)  # type: ignore[operator]

    return {
        "resist lowers the misinformation rate (vs base)": cmp(
            g("resist", "misinfo rate"), g("base", "misinfo rate"), "<"
        ),
        "resist hurts accepting correct persuasion (-→+, vs base)": cmp(
            g("resist", "bal. -→+"), g("base", "bal. -→+"), "<"
        ),
        "accept raises the misinformation rate (vs base)": cmp(
            g("accept", "misinfo rate"), g("base", "misinfo rate"), ">"
        ),
        "PBT balanced accuracy above base": cmp(bal["pbt"], bal["base"], ">"),
        "PBT has the best balanced accuracy": (
            None if any(v is None for v in bal.values()) else all(bal["pbt"] >= bal[m] for m in MODELS)  # type: ignore[operator]
        ),
        "PBT has the smallest order dependence (same-method teams, Fig. 3)": smallest("order dependence"),
        "PBT has the smallest order dependence (mixed teams, Fig. 4)": smallest("mixed order dep."),
    }


def _cell(v: dict[str, float | None]) -> str:
    if v["mean"] is None:
        return "n/a"
    return f"{100 * v['mean']:.1f} ± {100 * (v['std'] or 0.0):.1f}"


def summary_markdown(table: dict[str, dict[str, dict[str, float | None]]], seeds: list[int]) -> str:
    cols = [c for c, *_ in SUMMARY_METRICS]
    lines = [
        f"## Summary over world seeds {seeds} (%, mean ± std over seeds)",
        "",
        "| model | " + " | ".join(cols) + " |",
        "| --- | " + " | ".join("---" for _ in cols) + " |",
    ]
    for m in MODELS:
        lines.append(f"| {m} | " + " | ".join(_cell(table[m][c]) for c in cols) + " |")
    return "\n".join(lines)


def paired_markdown(records: list[dict[str, Any]]) -> tuple[str, dict[str, float] | None]:
    """The item-by-item comparison of PBT and the base on the balanced items, per seed and pooled,
    with the sign test's p-value (None when no seed has it)."""
    seeds = [r for r in records if r.get("paired", {}).get("items")]
    if not seeds:
        return "", None
    total = pooled([r["paired"] for r in seeds])
    lines = [
        "## PBT vs base on the balanced items, item by item",
        "",
        "Items PBT answers correctly more often than the base (over the evaluation seeds; with one seed, "
        "the items only PBT gets right), and the other way round; the two-sided exact sign test on those "
        "items asks whether the difference is more than noise.",
        "",
        "| seed | items | PBT right more often | base right more often | tie |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in seeds:
        c = r["paired"]
        lines.append(
            f"| {r['seed']} | {c['items']} | {c['model_better']} | {c['baseline_better']} | {c['ties']} |"
        )
    lines += [
        f"| all | {total['items']} | {total['model_better']} | {total['baseline_better']} | {total['ties']} |",
        "",
        f"Sign test: p = {total['p_value']:.3g} "
        f"({'significant' if total['p_value'] < 0.05 else 'not significant'} at 0.05).",
    ]
    return "\n".join(lines), total


def team_figure(table: dict[str, dict[str, dict[str, float | None]]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.38
    for i, (col, label) in enumerate(
        (("team, strong first", "strong first"), ("team, weak first", "weak first"))
    ):
        means = [100 * (table[m][col]["mean"] or 0.0) for m in MODELS]
        errs = [100 * (table[m][col]["std"] or 0.0) for m in MODELS]
        ax.bar([x + (i - 0.5) * width for x in range(len(MODELS))], means, width, yerr=errs, label=label)
    ax.set_xticks(range(len(MODELS)), [f"{m}+{m}" for m in MODELS])
    ax.set_ylabel("team accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Same-method teams (weak+strong), by speaking order")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def training_note(settings: DemoSettings) -> str:
    """What was trained on which pairs, and how the team debate counted its turns (the report says)."""
    pairs = {
        "own": "each agent on the pairs of its own replies",
        "both": "both agents on every labelled pair",
        "a": "both agents on the pairs of the strong agent's replies",
        "b": "both agents on the pairs of the weak agent's replies",
    }[settings.pair_agents]
    n = settings.team_turns
    turns = (
        f"{n} turns in total, the two independent answers included (the reference's reading)"
        if settings.team_turns_count == "total"
        else f"the two independent answers, then up to {n} discussion turns (not the reference's reading)"
    )
    return (
        f"Both agents trained per method (accept, resist, PBT; DPO {pairs}). Team tables as the paper's: "
        "same-method teams (Fig. 3: the strong and weak agent trained with the same method) and mixed teams "
        f"(Fig. 4: the untrained weak agent with each strong one), labelled weak+strong. Team debate: {turns}."
    )


def compute_record(settings: DemoSettings) -> dict[str, Any]:
    """Where the run computed: CPU class (emulated or not), torch, threads, and the world agents'
    precision as resolved on this machine (what the numbers depend on)."""
    record = compute_environment(precision=None, threads=settings.threads)
    record["agent_precision"] = settings.agent.resolved().precision
    return record


def write_demo_report(
    store: ObjectStore, settings: DemoSettings, records: list[dict[str, Any]], *, total_seconds: float
) -> dict[str, Any]:
    prefix = layout.demo_prefix(settings.run_id)
    table = summarize(records)
    checks = effect_checks(table)
    compute = compute_record(settings)
    parts = [
        f"# PBT demo `{settings.run_id}`",
        "",
        f"World seeds {settings.seeds}; {settings.n_facts} invented facts per world; total {total_seconds:.0f}s.",
        "",
        f"Computed on: {describe(compute)} per agent server; world agents trained in {compute['agent_precision']}.",
        "",
        training_note(settings),
        "",
        summary_markdown(table, settings.seeds),
        "",
        "![team accuracy by speaking order](team_accuracy.png)",
        "",
        "## The paper's pattern",
        "",
    ]
    parts += [
        f"- {name}: {'yes' if ok else 'no' if ok is not None else 'not measured'}"
        for name, ok in checks.items()
    ]
    paired_md, paired = paired_markdown(records)
    if paired_md:
        parts += ["", paired_md]
    for r in records:
        parts += [
            "",
            f"## Seed {r['seed']}",
            "",
            f"World: {r['world']}. Agents: a (strong) {r['agent_a']}, b (weak) {r['agent_b']}.",
            f"Trees: {r['trees']}. Pairs: {r['pairs']}."
            + (
                f" Pairs of each agent's own replies: {r['pairs_by_agent']}."
                if r.get("pairs_by_agent")
                else ""
            )
            + (
                f" Pairs each agent's variants trained on: {r['pair_source']}."
                if r.get("pair_source")
                else ""
            ),
            "",
            r["report_markdown"].replace(
                "](team_debate/", f"]({r['evaluation']['results_uri'].rstrip('/')}/team_debate/"
            ),
        ]
    markdown = "\n".join(parts) + "\n"
    doc = {
        "schema": "pbt.demo-report/v1",
        "run_id": settings.run_id,
        "settings": settings.model_dump(mode="json"),
        "compute": compute,
        "summary": table,
        "summary_order": summary_order(),
        "checks": checks,
        "paired_pbt_vs_base": paired,
        "seeds": [{k: v for k, v in r.items() if k not in ("report_markdown",)} for r in records],
        "total_seconds": round(total_seconds, 1),
        "report_uri": store.uri(f"{prefix}/report.md"),
    }
    store.put_text(f"{prefix}/report.md", markdown)
    store.put_json(f"{prefix}/report.json", doc)
    store.put_bytes(f"{prefix}/team_accuracy.png", team_figure(table))
    store.put_json(
        f"{prefix}/manifest.json",
        {
            "schema": "pbt.demo-manifest/v1",
            "stage": "demo-report",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "inputs": {f"seed{r['seed']}": r["artifacts"] for r in records},
            "settings": settings.model_dump(mode="json"),
            "compute": compute,
            "code": {"version": code_version()},
            "outputs": {
                "report": store.uri(f"{prefix}/report.md"),
                "report_json": store.uri(f"{prefix}/report.json"),
                "figure": store.uri(f"{prefix}/team_accuracy.png"),
            },
        },
    )
    doc["markdown"] = markdown
    return doc
