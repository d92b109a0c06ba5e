"""report.md (tables shaped like the paper's Tables 1-3) and the team-debate figure.

Cells are percentages, ``mean ± std`` over seeds, with the 95% bootstrap interval in brackets.
"""

from __future__ import annotations

import io
import logging
import math
from typing import Any

import pbt.evaluate.results as R
from pbt.evaluate.config import DEFAULT_TOTAL_TURNS
from pbt.evaluate.team_debate import ORDERS
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


def _value(
    metric: dict[str, Any] | None, page: str, anchor: str | None = None, **fmt_kw: Any
) -> dict[str, Any]:
    """A table cell: its text, the metric, and the item page (model or team) and anchor it is about."""
    metric = dict(metric or {})
    return {"text": fmt(metric or None, **fmt_kw), "metric": metric, "page": page, "anchor": anchor}


def _name(text: str, model: str) -> dict[str, Any]:
    """A row's first cell: a model or team, with the model whose lineage it stands for."""
    return {"text": text, "lineage": model}


def _bar(label: str, series: str, cell: dict[str, Any]) -> dict[str, Any]:
    m = cell["metric"]
    return {
        "label": label,
        "series": series,
        "mean": m.get("mean"),
        "ci_low": m.get("ci_low"),
        "ci_high": m.get("ci_high"),
        "page": cell["page"],
        "anchor": cell["anchor"],
    }


def misinformation_subsets(metrics: dict[str, Any]) -> list[str]:
    """Table 1's subset columns: the paper's order, then other subsets alphabetically."""
    found = {g.split("/", 1)[1] for g in metrics if "/" in g and not g.endswith("/" + AVG)}
    return [s for s in PAPER_SUBSETS if s in found] + sorted(found - set(PAPER_SUBSETS))


def report_tables(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Tables 1-3 and the team-debate table of a summary document, for every renderer (report.md,
    the terminal, the site).

    A table is ``{"id", "suite" (the suite its cells link into; default the id), "title", "header",
    "rows", "chart"}``; team debate has the paper's Fig. 3 and Fig. 4 tables (`paper_team_tables`)
    before the table of every team. A row is a list of
    cells: the first ``{"text", "lineage"}`` (a model or team, and the model whose lineage it
    stands for), the others ``{"text", "metric", "page", "anchor"}`` (the model or team whose
    items the value comes from). ``chart`` lists bars ``{"label", "series", "mean", "ci_low",
    "ci_high", "page", "anchor"}`` (fractions).
    """
    suites = doc.get("suites", {})
    models = _models(doc)
    tables = []
    if "misinformation" in suites:
        metrics = suites["misinformation"].get("metrics", {})
        subsets = misinformation_subsets(metrics)
        rows, chart = [], []
        for m in models:
            row = [_name(m, m)]
            row += [_value(metrics.get(f"{m}/{s}", {}).get("misinformation_rate"), m, s) for s in subsets]
            avg = _value(metrics.get(f"{m}/{AVG}", {}).get("misinformation_rate_avg"), m)
            rows.append([*row, avg])
            chart.append(_bar(m, AVG, avg))
        tables.append(
            {
                "id": "misinformation",
                "title": "Table 1: misinformation rate (%, lower is better)",
                "header": ["model", *subsets, AVG],
                "rows": rows,
                "chart": chart,
            }
        )
    if "are_you_sure" in suites:
        metrics = suites["are_you_sure"].get("metrics", {})
        rows, chart = [], []
        for m in models:
            mm = metrics.get(m, {})
            before, after = _value(mm.get("accuracy_before"), m), _value(mm.get("accuracy_after"), m)
            rows.append(
                [
                    _name(m, m),
                    before,
                    after,
                    _value(mm.get("diff"), m, signed=True),
                    _value(mm.get("flip_correct_to_incorrect"), m, ci=False),
                    _value(mm.get("flip_incorrect_to_correct"), m, ci=False),
                ]
            )
            chart += [_bar(m, "before", before), _bar(m, "after", after)]
        tables.append(
            {
                "id": "are_you_sure",
                "title": 'Table 2: "Are you sure?" accuracy (%)',
                "header": ["model", "before", "after", "diff", "flip C→I", "flip I→C"],
                "rows": rows,
                "chart": chart,
            }
        )
    if "balanced" in suites:
        metrics = suites["balanced"].get("metrics", {})
        rows, chart = [], []
        for m in models:
            mm = metrics.get(m, {})
            row = [_name(m, m)]
            for key, label, anchor in (
                ("accuracy_resist", "+→-", "resist"),
                ("accuracy_accept", "-→+", "accept"),
                ("overall", "overall", None),
            ):
                row.append(_value(mm.get(key), m, anchor))
                chart.append(_bar(m, label, row[-1]))
            rows.append(row)
        tables.append(
            {
                "id": "balanced",
                "title": "Table 3: balanced persuasion accuracy (%)",
                "header": ["model", "+→-", "-→+", "overall"],
                "rows": rows,
                "chart": chart,
            }
        )
    if "team_debate" in suites:
        tables += paper_team_tables(doc)
        rows, chart = [], []
        for r in team_rows(doc):
            team = r["team"]
            a, b = team.split("+", 1)
            for order, first in (("a_first", a), ("b_first", b)):
                mm = r[order]
                accuracy = _value(mm.get("team_accuracy"), team)
                rows.append(
                    [
                        _name(team, a),
                        {"text": f"{first} first"},
                        accuracy,
                        _value(mm.get("accuracy_a"), team, ci=False),
                        _value(mm.get("accuracy_b"), team, ci=False),
                        _value(r["overall"].get("order_dependence"), team)
                        if order == "a_first"
                        else {"text": ""},
                        _value(r["overall"].get("order_changed_answers"), team, ci=False)
                        if order == "a_first"
                        else {"text": ""},
                    ]
                )
                chart.append(_bar(team, order.replace("_", " "), accuracy))
        tables.append(
            {
                "id": "team_debate",
                "suite": "team_debate",
                "title": "Team debate: team accuracy by speaking order (%)",
                "header": [
                    "team (a+b)",
                    "order",
                    "team acc.",
                    "acc. a",
                    "acc. b",
                    "order dependence",
                    "answers change",
                ],
                "rows": rows,
                "chart": chart,
            }
        )
    return tables


#: the paper's team tables: (config `tables` value, table id, title)
PAPER_TEAM_TABLES = (
    (
        "same_method",
        "team_same_method",
        "Fig. 3: same-method teams (strong and weak trained alike), team accuracy by who speaks first (%)",
    ),
    (
        "mixed",
        "team_mixed",
        "Fig. 4: mixed teams (the base weak model with each strong model), team accuracy by who speaks "
        "first (%)",
    ),
)
PAPER_TEAM_HEADER = [
    "team (weak+strong)",
    "strong first",
    "weak first",
    "order dependence",
    "answers change",
    "strong alone",
    "weak alone",
]


def paper_team_tables(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The paper's Fig. 3 and Fig. 4 as tables, from the teams the config puts in them (a team's
    ``a`` is the strong model, ``b`` the weak one). A row: team accuracy with the strong model
    speaking first and with the weak one first, the order dependence (|difference|, per seed, then
    mean ± std), the fraction of questions whose team answer changes with the order, and each
    model alone (its independent first answer). A table no team names is left out."""
    metrics = doc["suites"]["team_debate"].get("metrics", {})
    teams = ((doc.get("config") or {}).get("suites") or {}).get("team_debate", {}).get("teams") or []
    tables = []
    for key, table_id, title in PAPER_TEAM_TABLES:
        rows, chart = [], []
        for t in teams:
            if key not in (t.get("tables") or []):
                continue
            team = f"{t['a']}+{t['b']}"
            label = t.get("label") or team
            overall = metrics.get(team, {})
            first = {o: _value(metrics.get(f"{team}/{o}", {}).get("team_accuracy"), team) for o in ORDERS}
            rows.append(
                [
                    _name(label, t["a"]),
                    first["a_first"],
                    first["b_first"],
                    _value(overall.get("order_dependence"), team),
                    _value(overall.get("order_changed_answers"), team, ci=False),
                    _value(overall.get("alone_a"), team, ci=False),
                    _value(overall.get("alone_b"), team, ci=False),
                ]
            )
            chart += [
                _bar(label, "strong first", first["a_first"]),
                _bar(label, "weak first", first["b_first"]),
            ]
        if rows:
            tables.append(
                {
                    "id": table_id,
                    "suite": "team_debate",
                    "title": title,
                    "header": list(PAPER_TEAM_HEADER),
                    "rows": rows,
                    "chart": chart,
                }
            )
    return tables


def turns_note(doc: dict[str, Any]) -> str:
    """Which reading of the team debate's turn count the evaluation used."""
    td = ((doc.get("config") or {}).get("suites") or {}).get("team_debate") or {}
    if td.get("discussion_turns") is not None or td.get("max_turns") is not None:
        n = td["discussion_turns"] if td.get("discussion_turns") is not None else td["max_turns"]
        return (
            f"Turns: the two independent answers, then up to {n} discussion turns "
            "(discussion_turns: not the reference's reading)."
        )
    total = td.get("total_turns") or DEFAULT_TOTAL_TURNS
    return (
        f"Turns: {total} in total, the two independent answers included, then up to {total - 2} discussion "
        "turns (total_turns: the reference's reading, --max_turns 4)."
    )


def _markdown(table: dict[str, Any]) -> list[str]:
    return [f"## {table['title']}", ""] + _table(
        table["header"], [[cell["text"] for cell in row] for row in table["rows"]]
    )


def _misinformation_details(doc: dict[str, Any]) -> list[str]:
    """Table 1's detail: initial accuracy, the rate by persuasion turn, the mean turn of capitulation."""
    metrics = doc["suites"]["misinformation"]["metrics"]
    detail_rows = []
    for model in _models(doc):
        for s in misinformation_subsets(metrics):
            m = metrics.get(f"{model}/{s}", {})
            turns = sorted(k for k in m if k.startswith("rate_by_turn_"))
            detail_rows.append(
                [model, s, fmt(m.get("initial_accuracy"), ci=False)]
                + [fmt(m.get(t), ci=False) for t in turns]
                + [fmt(m.get("mean_capitulation_turn"), scale=1.0, ci=False)]
                + [fmt(m.get(c), scale=1.0, ci=False) for c in ("dont_know_replies", "unparseable_replies")]
            )
    if not detail_rows:
        return []
    n_turns = len(detail_rows[0]) - 6
    return [
        "",
        "Initial accuracy, cumulative misinformation rate by persuasion turn, mean turn of capitulation, "
        "and the probe replies (of initially correct items, per seed) that chose Don't know or named no "
        "option (neither counts as misinformed):",
        "",
        *_table(
            ["model", "subset", "initial acc."]
            + [f"by turn {t}" for t in range(1, n_turns + 1)]
            + ["mean turn", "don't know", "no option"],
            detail_rows,
        ),
    ]


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


def render_report(doc: dict[str, Any]) -> str:
    """The Markdown report of a summary document."""
    lines = [
        f"# Evaluation `{doc['eval_id']}`",
        "",
        f"State: {doc.get('state', '?')}. Models: {', '.join(_models(doc))}. Seeds: {', '.join(map(str, doc.get('seeds', [])))}.",
        f"Results: `{doc.get('results_uri', '')}`. Cells: mean ± std over seeds [95% bootstrap CI over items].",
        "",
    ]
    extras = {
        "misinformation": lambda: _misinformation_details(doc),
        "team_debate": lambda: [
            "",
            turns_note(doc),
            "",
            "![team accuracy by speaking order](team_debate/team_accuracy_by_order.png)",
        ],
    }
    for table in report_tables(doc):
        lines += _markdown(table) + extras.get(table["id"], list)() + [""]
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
