"""report.md (tables shaped like the paper's Tables 1-3) and the team-debate figure.

Cells are percentages, ``mean ± std`` over seeds, with the 95% bootstrap interval in brackets.
"""

from __future__ import annotations

import io
import logging
import math
from typing import Any

from pbt.evaluate import results as R
from pbt.store import ObjectStore

log = logging.getLogger(__name__)

AVG = "Avg"
#: the column order of the paper's Table 1; other subsets follow alphabetically
PAPER_SUBSETS = ("NQ1", "NQ2", "BoolQ", "TruthfulQA")


def fmt(metric: dict[str, Any] | None, *, scale: float = 100.0, ci: bool = True, signed: bool = False) -> str:
    """``54.36 ± 1.20 [50.10, 58.20]`` (or ``n/a``) from a metric dict."""
    if not metric or metric.get("mean") is None:
        return "n/a"
    sign = "+" if signed else ""
    text = f"{metric['mean'] * scale:{sign}.2f} ± {(metric.get('std') or 0.0) * scale:.2f}"
    if ci and metric.get("ci_low") is not None and metric.get("ci_high") is not None:
        text += f" [{metric['ci_low'] * scale:.2f}, {metric['ci_high'] * scale:.2f}]"
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _models(doc: dict[str, Any]) -> list[str]:
    return [m["name"] for m in doc.get("models", [])]


def misinformation_table(doc: dict[str, Any]) -> list[str]:
    metrics = doc["suites"]["misinformation"]["metrics"]
    found = {g.split("/", 1)[1] for g in metrics if not g.endswith("/" + AVG)}
    subsets = [s for s in PAPER_SUBSETS if s in found] + sorted(found - set(PAPER_SUBSETS))
    rows = []
    for model in _models(doc):
        row = [model] + [fmt(metrics.get(f"{model}/{s}", {}).get("misinformation_rate")) for s in subsets]
        row.append(fmt(metrics.get(f"{model}/{AVG}", {}).get("misinformation_rate_avg")))
        rows.append(row)
    lines = ["## Table 1: misinformation rate (%, lower is better)", ""]
    lines += _table(["model", *subsets, AVG], rows)
    detail_rows = []
    for model in _models(doc):
        for s in subsets:
            m = metrics.get(f"{model}/{s}", {})
            turns = sorted(k for k in m if k.startswith("rate_by_turn_"))
            detail_rows.append(
                [model, s, fmt(m.get("initial_accuracy"), ci=False)]
                + [fmt(m.get(t), ci=False) for t in turns]
                + [fmt(m.get("mean_capitulation_turn"), scale=1.0, ci=False)]
                + [fmt(m.get(c), scale=1.0, ci=False) for c in ("dont_know_replies", "unparseable_replies")]
            )
    if detail_rows:
        n_turns = len(detail_rows[0]) - 6
        lines += [
            "",
            "Initial accuracy, cumulative misinformation rate by persuasion turn, mean turn of capitulation, "
            "and the probe replies (of initially correct items, per seed) that chose Don't know or named no "
            "option (neither counts as misinformed):",
            "",
        ]
        lines += _table(
            ["model", "subset", "initial acc."]
            + [f"by turn {t}" for t in range(1, n_turns + 1)]
            + ["mean turn", "don't know", "no option"],
            detail_rows,
        )
    return lines


def are_you_sure_table(doc: dict[str, Any]) -> list[str]:
    metrics = doc["suites"]["are_you_sure"]["metrics"]
    rows = []
    for model in _models(doc):
        m = metrics.get(model, {})
        rows.append(
            [
                model,
                fmt(m.get("accuracy_before")),
                fmt(m.get("accuracy_after")),
                fmt(m.get("diff"), signed=True),
                fmt(m.get("flip_correct_to_incorrect"), ci=False),
                fmt(m.get("flip_incorrect_to_correct"), ci=False),
            ]
        )
    lines = ['## Table 2: "Are you sure?" accuracy (%)', ""]
    return lines + _table(["model", "before", "after", "diff", "flip C→I", "flip I→C"], rows)


def balanced_table(doc: dict[str, Any]) -> list[str]:
    metrics = doc["suites"]["balanced"]["metrics"]
    rows = [
        [
            model,
            fmt(metrics.get(model, {}).get("accuracy_resist")),
            fmt(metrics.get(model, {}).get("accuracy_accept")),
            fmt(metrics.get(model, {}).get("overall")),
        ]
        for model in _models(doc)
    ]
    lines = ["## Table 3: balanced persuasion accuracy (%)", ""]
    return lines + _table(["model", "+→-", "-→+", "overall"], rows)


def team_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per team with both orders' team accuracy and the order dependence."""
    metrics = doc["suites"]["team_debate"]["metrics"]
    order = {m: i for i, m in enumerate(_models(doc))}
    teams = sorted(
        {g.split("/", 1)[0] for g in metrics},
        key=lambda t: (order.get(t.split("+")[0], len(order)), order.get(t.split("+")[-1], len(order)), t),
    )
    return [
        {
            "team": t,
            "a_first": metrics.get(f"{t}/a_first", {}),
            "b_first": metrics.get(f"{t}/b_first", {}),
            "overall": metrics.get(t, {}),
        }
        for t in teams
    ]


def team_debate_table(doc: dict[str, Any]) -> list[str]:
    rows = []
    for r in team_rows(doc):
        a, b = r["team"].split("+", 1)
        for order, first in (("a_first", a), ("b_first", b)):
            m = r[order]
            rows.append(
                [
                    r["team"],
                    f"{first} first",
                    fmt(m.get("team_accuracy")),
                    fmt(m.get("accuracy_a"), ci=False),
                    fmt(m.get("accuracy_b"), ci=False),
                    fmt(r["overall"].get("order_dependence")) if order == "a_first" else "",
                    fmt(r["overall"].get("order_changed_answers"), ci=False) if order == "a_first" else "",
                ]
            )
    lines = ["## Team debate: team accuracy by speaking order (%)", ""]
    lines += _table(
        ["team (a+b)", "order", "team acc.", "acc. a", "acc. b", "order dependence", "answers change"],
        rows,
    )
    return lines + ["", "![team accuracy by speaking order](team_debate/team_accuracy_by_order.png)"]


def render_report(doc: dict[str, Any]) -> str:
    """The Markdown report of a summary document."""
    lines = [
        f"# Evaluation `{doc['eval_id']}`",
        "",
        f"State: {doc.get('state', '?')}. Models: {', '.join(_models(doc))}. Seeds: {', '.join(map(str, doc.get('seeds', [])))}.",
        f"Results: `{doc.get('results_uri', '')}`. Cells: mean ± std over seeds [95% bootstrap CI over items].",
        "",
    ]
    builders = [
        ("misinformation", misinformation_table),
        ("are_you_sure", are_you_sure_table),
        ("balanced", balanced_table),
        ("team_debate", team_debate_table),
    ]
    for name, build in builders:
        if name in doc.get("suites", {}):
            lines += build(doc) + [""]
    if doc.get("error"):
        lines += [f"**Error:** {doc['error']}", ""]
    return "\n".join(lines)


def team_figure_png(doc: dict[str, Any]) -> bytes:
    """A grouped bar chart: team accuracy per team (model variant), one bar per speaking order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = team_rows(doc)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.8 * len(rows) + 1.5), 4.0), dpi=100)
    width = 0.38
    labels = (("a_first", "a (first model) speaks first"), ("b_first", "b (second model) speaks first"))
    for j, (order, label) in enumerate(labels):
        xs, ys, errs = [], [], [[], []]
        for i, r in enumerate(rows):
            m = r[order].get("team_accuracy") or {}
            mean = m.get("mean")
            y = 100 * mean if mean is not None else math.nan
            xs.append(i + (j - 0.5) * width)
            ys.append(y)
            lo, hi = m.get("ci_low"), m.get("ci_high")
            errs[0].append(max(0.0, y - 100 * lo) if lo is not None and mean is not None else 0.0)
            errs[1].append(max(0.0, 100 * hi - y) if hi is not None and mean is not None else 0.0)
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["team"].replace("+", " + ") for r in rows])
    ax.set_ylim(0, 100)
    ax.set_ylabel("team accuracy (%)")
    ax.set_title("Team debate: accuracy by speaking order")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize="small", frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_report(store: ObjectStore, doc: dict[str, Any]) -> str:
    """Write report.md (and the figure when the team-debate suite ran); returns the Markdown."""
    text = render_report(doc)
    store.put_text(R.report_key(doc["eval_id"]), text)
    if "team_debate" in doc.get("suites", {}):
        store.put_bytes(R.figure_key(doc["eval_id"]), team_figure_png(doc))
    log.info("wrote %s", store.uri(R.report_key(doc["eval_id"])))
    return text
