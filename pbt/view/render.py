"""HTML of the viewer's pages, from the page model's dicts (`pbt.view.model`).

Plain string building with every text escaped; pages link to ``<root>assets/view.css`` (and the
tree index to ``assets/index.js``), so a site works from a folder (``file://``) and from any static
host or object store, with no CDN. Charts are inline SVG.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from pbt.view.model import INDEX_COLUMNS


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def plain(value: Any) -> str:
    """A value as text: dicts and lists as compact JSON, the rest as str."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return "" if value is None else str(value)


def layout(
    title: str, body: str, *, root: str = "", nav: Sequence[tuple[str, str]] = (), scripts: Sequence[str] = ()
) -> str:
    links = "".join(f'<a href="{e(href)}">{e(label)}</a>' for label, href in nav)
    tags = "".join(f'<script src="{e(src)}"></script>' for src in scripts)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title>"
        f'<link rel="stylesheet" href="{e(root)}assets/view.css"></head>\n'
        f'<body><header class="top"><b>PBT viewer</b> &nbsp; {links}</header>\n'
        f"<main>\n{body}\n</main>{tags}</body></html>\n"
    )


def table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "grid", raw: bool = False
) -> str:
    """A table; cells are escaped unless `raw` (then they are HTML already)."""
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv_table(facts: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    return f'<table class="grid"><tbody>{rows}</tbody></table>'


# ------------------------------------------------------------------------------------- trees
def answer_badge(agent: int, node: Mapping[str, Any]) -> str:
    raw, resolved = node["answers"][agent], node["resolved"][agent]
    correct = node["correct"][agent] if node["correct"] is not None else node["answer_ok"][agent]
    cls = "none" if resolved is None else ("ok" if correct else "bad")
    if node["correct"] is None and resolved is not None:
        cls += " unscored"
    shown = "—" if raw is None else raw
    if resolved != raw:
        shown = f"{shown} → {'—' if resolved is None else resolved}"
    mark = "" if resolved is None else (" ✓" if correct else " ✗")
    title = (
        "correct under the §3 rule"
        if node["correct"] is not None
        else "node not scored (an answer is missing); colour: this answer alone"
    )
    return (
        f'<span class="ans {cls}" data-agent="{"AB"[agent]}" title="{e(title)}">'
        f"{'AB'[agent]}: {e(shown)}{mark}</span>"
    )


def node_html(node: Mapping[str, Any]) -> str:
    # background: the node's role in a kept, labelled (accept / resist) pair
    roles = sorted({m["role"] for m in node["marks"] if m["outcome"] == "pair" and m["code"]})
    classes = " ".join(["node", f"agent-{node['agent']}", *(f"role-{r}" for r in roles)])
    persona = f" / {e(node['persona'])}" if node["persona"] else ""
    marks = []
    for m in node["marks"]:
        code = m["code"] or "unlabelled"
        verb = "chosen over" if m["role"] == "chosen" else "rejected for"
        files = f" · in {', '.join(m['files'])}" if m.get("files") else ""
        extra = " filtered" if m["outcome"] == "filtered" else "" if m["code"] else " unlabelled"
        marks.append(
            f'<span class="mark {m["role"]}{extra}" data-code="{e(code)}">{verb} '
            f'<a href="#n-{e(m["other"])}">{e(m["other"])}</a> ({e(code)}{e(files)})'
            f"{' — dropped by the §4.5 filter' if m['outcome'] == 'filtered' else ''}</span>"
        )
    return (
        f'<div class="{classes}" id="n-{e(node["id"])}" data-node="{e(node["id"])}" data-roles="{e(" ".join(roles))}">'
        f'<div class="head"><b>{e(node["id"])}</b> · <b>{e(node["speaker"])}</b>{persona} · depth {node["depth"]}'
        f' · subtree score <b class="score">{node["score"]}</b></div>'
        f'<div class="text">{e(node["text"].strip())}</div>'
        f"<div>{answer_badge(0, node)}{answer_badge(1, node)}{''.join(marks)}</div></div>"
    )


def tree_html(view: Mapping[str, Any]) -> str:
    nodes = {n["id"]: n for n in view["nodes"]}
    roots = [n for n in view["nodes"] if n["parent"] is None]

    def branch(node: Mapping[str, Any]) -> str:
        kids = "".join(branch(nodes[c]) for c in node["children"])
        return f"<li>{node_html(node)}" + (f"<ul>{kids}</ul>" if kids else "") + "</li>"

    return '<ul class="tree">' + "".join(branch(r) for r in roots) + "</ul>"


def comparisons_html(view: Mapping[str, Any]) -> str:
    if not view["comparisons"]:
        return '<p class="dim">No sibling comparisons (no node has two or more children to compare).</p>'
    rows = []
    for c in view["comparisons"]:
        if c["outcome"] == "skipped":
            result = "skipped"
            pair = f'<a href="#n-{e(c["left"])}">{e(c["left"])}</a> ({c["left_score"]}) vs <a href="#n-{e(c["right"])}">{e(c["right"])}</a> ({c["right_score"]})'
        else:
            result = ("pair: " if c["outcome"] == "pair" else "filtered: ") + (c["code"] or "unlabelled")
            pair = (
                f'chosen <a href="#n-{e(c["chosen"])}">{e(c["chosen"])}</a> vs rejected '
                f'<a href="#n-{e(c["rejected"])}">{e(c["rejected"])}</a>'
            )
            if c.get("files"):
                result += f" (in {', '.join(c['files'])})"
        rows.append(
            f'<tr class="outcome-{e(c["outcome"])}{"" if c.get("code") or c["outcome"] == "skipped" else " unlabelled"}" data-outcome="{e(c["outcome"])}" data-reason="{e(c["reason"] or "")}">'
            f"<td>{e(c['parent'] if c['parent'] is not None else '(roots)')}</td><td>{e(c['speaker'])}, depth {c['depth']}</td>"
            f"<td>{pair}</td><td>{e(result)}</td><td>{e(c['why'])}</td></tr>"
        )
    return (
        '<table class="grid comparisons"><thead><tr><th>under</th><th>speaker</th><th>siblings</th>'
        "<th>outcome</th><th>rule</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def tree_page(view: Mapping[str, Any], *, root: str, nav: Sequence[tuple[str, str]] = ()) -> str:
    c = view["counts"]
    facts = [
        ("question id", view["question_id"]),
        ("gold", ", ".join(view["gold"]) or "—"),
        ("split", view["split"] or "—"),
        ("nodes", c["nodes"]),
        ("pairs", f"{c['pairs']} (accept {c['accept']}, resist {c['resist']}, unlabelled {c['unlabelled']})"),
        ("dropped by the §4.5 filter", c["filtered"]),
        ("skipped comparisons", c["skipped"]),
        ("agents", ", ".join(f"{a.get('name')}: {a.get('model') or '—'}" for a in view["agents"])),
    ]
    status = f'<p class="dim"><b>{e(view["status"])}</b></p>' if view["status"] else ""
    body = (
        f"<h1>Tree {e(view['id'])}</h1><p><b>{e(view['question'])}</b></p>{status}"
        + kv_table(facts)
        + '<p class="dim">Answers are coloured by correctness (green ✓ correct, red ✗ wrong; dashed: the node '
        "cannot be scored because an answer is missing). <code>x → y</code>: a Disagree resolved to the "
        "agent's earlier answer (§3). Green nodes were chosen and red ones rejected in an accept or resist "
        "pair; grey marks: pairs kept by the score rule without a label.</p>"
        + "<h2>Sibling comparisons</h2>"
        + comparisons_html(view)
        + "<h2>Dialogue tree</h2>"
        + tree_html(view)
    )
    return layout(f"tree {view['id']}", body, root=root, nav=nav)


def index_data_js(rows: Sequence[Sequence[Any]], *, base: str = "trees/") -> str:
    """The tree index as a script (``window.PBT_INDEX``): compact JSON, one list per tree."""
    doc = {"columns": list(INDEX_COLUMNS), "base": base, "rows": rows}
    return "window.PBT_INDEX=" + json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + ";\n"


def tree_index_page(
    title: str, *, root: str, data_src: str, intro: str = "", nav: Sequence[tuple[str, str]] = ()
) -> str:
    opts = '<option value="">any</option><option value="yes">yes</option><option value="no">no</option>'
    body = (
        f"<h1>{e(title)}</h1>{intro}"
        '<div class="filters">'
        '<label>pairs <select id="f-pairs"><option value="">any</option><option value="yes">has pairs</option>'
        '<option value="accept">has accept</option><option value="resist">has resist</option>'
        '<option value="no">no pairs</option></select></label>'
        f'<label>all agree <select id="f-agree">{opts}</select></label>'
        f'<label>A correct at root <select id="f-root">{opts}</select></label>'
        '<label>persona (in a pair) <select id="f-persona"><option value="">any</option></select></label>'
        '<label>split <select id="f-split"><option value="">any</option></select></label>'
        '<label>search <input id="f-q" type="search" placeholder="id or question"></label>'
        '<span class="pager"><button id="prev">◀</button><button id="next">▶</button></span>'
        '<span id="count" class="dim"></span></div>'
        '<table class="grid" id="index"><thead><tr><th>tree</th><th>question</th><th>nodes</th><th>pairs</th>'
        "<th>accept</th><th>resist</th><th>all agree</th><th>A correct at root</th><th>personas (pairs)</th>"
        '<th>split</th></tr></thead><tbody id="rows"></tbody></table>'
        "<noscript>The index needs JavaScript; every tree also has its own page under trees/.</noscript>"
    )
    return layout(title, body, root=root, nav=nav, scripts=[data_src, f"{root}assets/index.js"])


# -------------------------------------------------------------------------------- evaluation
def cell_html(cell: Mapping[str, Any], *, first: bool = False) -> str:
    text = e(cell.get("text", ""))
    if cell.get("href"):
        text = f'<a class="cell" href="{e(cell["href"])}">{text}</a>'
    cls = "" if first or "metric" not in cell else ' class="num"'
    return f"<td{cls}>{text}</td>"


def eval_table_html(t: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in t["header"])
    rows = "".join(
        "<tr>" + "".join(cell_html(c, first=i == 0) for i, c in enumerate(r)) + "</tr>" for r in t["rows"]
    )
    return (
        f'<table class="grid" id="t-{e(t["id"])}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


PALETTE = ("#0969da", "#bf8700", "#1a7f37", "#8250df", "#cf222e", "#6e7781")


def svg_chart(bars: Sequence[Mapping[str, Any]], *, title: str = "", height: int = 220) -> str:
    """Grouped bar chart (percent, 0-100) with the 95% bootstrap interval as a whisker; bars link to items."""
    labels: list[str] = []
    series: list[str] = []
    for b in bars:
        if b["label"] not in labels:
            labels.append(b["label"])
        if b["series"] not in series:
            series.append(b["series"])
    if not labels:
        return ""
    bw, gap, left, top, bottom = 22, 18, 40, 24, 40
    group_w = bw * len(series) + gap
    width = max(left + group_w * len(labels) + 140, left + 7 * len(title))
    plot_h = height - top - bottom

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, v)))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{e(title)}</text>',
    ]
    for tick in (0, 25, 50, 75, 100):
        ty = y(tick / 100)
        parts.append(
            f'<line x1="{left}" x2="{left + group_w * len(labels)}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 4}" y="{ty + 4:.1f}" font-size="10" text-anchor="end">{tick}</text>'
        )
    for gi, label in enumerate(labels):
        gx = left + gi * group_w + gap / 2
        for si, s in enumerate(series):
            b = next((b for b in bars if b["label"] == label and b["series"] == s), None)
            if b is None or b.get("mean") is None or (isinstance(b["mean"], float) and math.isnan(b["mean"])):
                continue
            x = gx + si * bw
            rect = (
                f'<rect x="{x:.1f}" y="{y(b["mean"]):.1f}" width="{bw - 3}" height="{y(0) - y(b["mean"]):.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{e(label)} · {e(s)}: {100 * b["mean"]:.1f}%</title></rect>'
            )
            if b.get("href"):
                rect = f'<a href="{e(b["href"])}">{rect}</a>'
            parts.append(rect)
            lo, hi = b.get("ci_low"), b.get("ci_high")
            if lo is not None and hi is not None:
                cx = x + (bw - 3) / 2
                parts.append(
                    f'<path d="M{cx:.1f} {y(lo):.1f}V{y(hi):.1f}M{cx - 4:.1f} {y(lo):.1f}h8M{cx - 4:.1f} {y(hi):.1f}h8" '
                    'stroke="#1f2328" fill="none"/>'
                )
        parts.append(
            f'<text x="{gx + bw * len(series) / 2:.1f}" y="{height - bottom + 14}" font-size="11" '
            f'text-anchor="middle">{e(label)}</text>'
        )
    lx = left + group_w * len(labels) + 10
    for si, s in enumerate(series):
        parts.append(
            f'<rect x="{lx}" y="{top + si * 16}" width="10" height="10" fill="{PALETTE[si % len(PALETTE)]}"/>'
            f'<text x="{lx + 14}" y="{top + si * 16 + 9}" font-size="11">{e(s)}</text>'
        )
    parts.append("</svg>")
    return '<div class="chart">' + "".join(parts) + "</div>"


def messages_html(messages: Iterable[Mapping[str, Any]]) -> str:
    return "".join(
        f'<div class="msg role-{e(m.get("role"))}"><span class="role">{e(m.get("role"))}</span>{e(m.get("content"))}</div>'
        for m in messages
    )


def ok_badge(ok: Any, text: Any) -> str:
    cls = "none" if ok is None else ("ok" if ok else "bad")
    return f'<span class="ans {cls}">{e(text if text not in (None, "") else "—")}</span>'


def item_html(suite: str, item: Mapping[str, Any]) -> str:
    head = f"<b>{e(item.get('item_id'))}</b> · seed {e(item.get('seed'))} · {e(item.get('question'))}"
    if suite == "misinformation":
        turns = "".join(
            f"<tr><td>{t.get('turn')}</td><td>{e(t.get('persuasion'))}</td><td>{e(t.get('response'))}</td>"
            f"<td>{ok_badge(bool(t.get('correct')), t.get('choice_text') or t.get('choice'))}</td></tr>"
            for t in item.get("turns") or []
        )
        body = (
            f"<div>options: {e(' | '.join(item.get('options') or []))}; correct: {e(', '.join(item.get('correct_letters') or []))}</div>"
            f"<div>first answer {ok_badge(bool(item.get('initially_correct')), item.get('initial_choice_text') or item.get('initial_choice'))}"
            f" misinformed: <b>{'yes' if item.get('misinformed') else 'no'}</b>"
            + (f" (turn {e(item.get('capitulation_turn'))})" if item.get("misinformed") else "")
            + "</div>"
            + (
                '<table class="grid"><thead><tr><th>turn</th><th>persuasion</th><th>response</th><th>answer when re-asked</th>'
                f"</tr></thead><tbody>{turns}</tbody></table>"
                if turns
                else '<p class="dim">No persuasion turns (only items answered correctly at first are persuaded).</p>'
            )
            + f"<details><summary>whole conversation</summary>{messages_html(item.get('messages') or [])}</details>"
        )
    elif suite == "are_you_sure":
        body = (
            f"<div>gold: {e(', '.join(item.get('gold') or []))}; first answer "
            f"{ok_badge(bool(item.get('first_correct')), item.get('first_answer'))} final answer "
            f"{ok_badge(bool(item.get('final_correct')), item.get('final_answer'))}</div>"
            + messages_html(item.get("messages") or [])
        )
    elif suite == "balanced":
        body = (
            f"<div>{e(item.get('direction'))} ({e(item.get('code'))} item); gold: {e(', '.join(item.get('gold') or []))}; "
            f"answer {ok_badge(bool(item.get('correct')), item.get('answer'))}</div>"
            f"<details><summary>prompt (the dialogue up to the persuasion turn)</summary>{messages_html(item.get('prompt') or [])}</details>"
            + messages_html([{"role": "assistant", "content": item.get("response")}])
        )
    else:  # team debate: both speaking orders side by side
        cols = []
        for order in ("a_first", "b_first"):
            r = (item.get("orders") or {}).get(order)
            if r is None:
                cols.append(f'<div><h3>{e(order)}</h3><p class="dim">not run</p></div>')
                continue
            first = r["a"] if order == "a_first" else r["b"]
            turns = "".join(
                f'<div class="msg role-{"user" if t.get("agent") == "a" else "assistant"}"><span class="role">round '
                f"{e(t.get('round'))} · {e(t.get('agent'))} ({e(t.get('model'))}) · answer {e(t.get('answer'))}</span>{e(t.get('text'))}</div>"
                for t in r.get("transcript") or []
            )
            cols.append(
                f'<div data-order="{e(order)}"><h3>{e(first)} speaks first</h3>{turns}<div>final: '
                f"{ok_badge(bool(r.get('correct_a')), 'a: ' + str(r.get('final_answer_a')))}"
                f"{ok_badge(bool(r.get('correct_b')), 'b: ' + str(r.get('final_answer_b')))} "
                f"{'agreed' if r.get('agreed') else 'no agreement'}</div></div>"
            )
        body = (
            f'<div>gold: {e(", ".join(item.get("gold") or []))}</div><div class="cols">{"".join(cols)}</div>'
        )
    return f'<div class="item" id="{e(item["anchor"])}">{head}{body}</div>'


def items_page(suite: str, page: Mapping[str, Any], *, root: str, nav: Sequence[tuple[str, str]]) -> str:
    parts = [f"<h1>{e(page['title'])}</h1>"]
    for s in page["sections"]:
        if s["title"]:
            parts.append(f'<h2 id="{e(s["anchor"])}">{e(s["title"])} ({len(s["items"])} items)</h2>')
        parts += [item_html(suite, it) for it in s["items"]]
    return layout(page["title"], "".join(parts), root=root, nav=nav)


def lineage_html(chain: Sequence[Mapping[str, Any]]) -> str:
    """An ordered list of lineage steps: ``{"kind", "title", "href", "uri", "facts"}``."""
    if not chain:
        return '<p class="dim">No lineage recorded.</p>'
    items = []
    for step in chain:
        title = e(step["title"])
        if step.get("href"):
            title = f'<a href="{e(step["href"])}">{title}</a>'
        facts = "; ".join(
            f"{e(k)}: {e(plain(v))}" for k, v in (step.get("facts") or {}).items() if v not in (None, "")
        )
        uri = f" <code>{e(step['uri'])}</code>" if step.get("uri") else ""
        items.append(
            f'<li data-kind="{e(step["kind"])}"><b>{e(step["kind"])}</b>: {title}{uri}<br><span class="dim">{facts}</span></li>'
        )
    return '<ol class="lineage">' + "".join(items) + "</ol>"
