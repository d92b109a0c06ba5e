"""Write a viewer site into a folder from the object store (and optionally back into the store).

Site layouts (every page links ``assets/`` of the site's root with a relative path)::

    trees site (pbt view trees JOB)    index.html                the tree index (filters, pages of 100)
                                       trees/index-data.js       one compact row per tree (window.PBT_INDEX)
                                       trees/<tree>.html         one page per tree, written as it is read
    prefs site (pbt view prefs ID)     index.html                counts per file and split, lineage
                                       trees.html + trees/       the trees site of the job, with the pairs
                                       pairs/<mode>-<n>.html     the pairs of each file, 200 a page
    eval site (pbt view eval ID)       index.html                Tables 1-3, team debate, charts, lineage
                                       items/<suite>/<page>.html every item of a cell, with its conversation
    demo site (pbt view demo RUN)      index.html                cross-seed summary, checks, per-seed links
                                       seed<N>/prefs/, seed<N>/eval/   the sites above, per world seed

The tree pages are written one tree at a time (a job of any size is never held in memory), and
the index loads as a ``<script src>`` data file, so it opens from ``file://`` where fetch() is
blocked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbt.errors import NotFoundError
from pbt.store import ObjectStore, atomic_write_bytes, layout
from pbt.view import model as M
from pbt.view import render as R
from pbt.view.assets import CSS, JS_INDEX
from pbt.view.lineage import key_of, model_lineage

Progress = Callable[[str, int, int], None]
PAIRS_PER_PAGE = 200
PREF_FILES = ("accept", "resist", "pbt")


@dataclass
class Site:
    """What a writer produced: the folder, its entry page and the number of files."""

    out: Path
    index: Path
    files: int = 0
    store_uri: str | None = None
    notes: list[str] = field(default_factory=list)


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
    path.chmod(0o644)  # (the atomic write's temporary file is private; a site is for reading)


def write_assets(root: Path) -> None:
    _write(root / "assets" / "view.css", CSS)
    _write(root / "assets" / "index.js", JS_INDEX)


# ------------------------------------------------------------------------------------- trees
def find_prefs(store: ObjectStore, job_id: str) -> list[str]:
    """Ids of the preference outputs (``prefs/<id>/manifest.json``) made from tree job `job_id`."""
    out = []
    for key in store.list("prefs/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "manifest.json":
            try:
                if store.get_json(key).get("job_id") == job_id:
                    out.append(parts[1])
            except (ValueError, OSError):  # pragma: no cover - a foreign object
                continue
    return out


def read_prefs(store: ObjectStore, prefs_id: str) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The summary manifest of a preference output and the records of its files (accept / resist / pbt)."""
    from pbt.evaluate.results import read_jsonl

    key = layout.prefs_manifest_key(prefs_id)
    if not store.exists(key):
        raise NotFoundError(f"no preference output {prefs_id!r} at {store.uri(key)}")
    summary = store.get_json(key)
    records = {}
    for mode in PREF_FILES:
        k = layout.pairs_key(prefs_id, mode)
        if store.exists(k):
            records[mode] = read_jsonl(store, k)
    return summary, records


def write_trees_site(
    store: ObjectStore,
    job_id: str,
    out: Path,
    *,
    prefs_id: str | None = None,
    root: str = "",
    index_name: str = "index.html",
    nav: Sequence[tuple[str, str]] = (),
    progress: Progress | None = None,
    assets: bool = True,
) -> Site:
    """The trees site of a job; with a preference output (`prefs_id`, else the first one made from
    the job) the pages use its pair filter, show its splits and which files hold each pair."""
    from pbt.orchestrate.job import job_prefix, list_tree_keys
    from pbt.prefs.dataset import split_questions
    from pbt.prefs.filters import make_pair_filter
    from pbt.tree.validate import tree_from_dict

    keys = list_tree_keys(store, job_id)
    if not keys:
        raise NotFoundError(f"no trees under {store.uri(job_prefix(job_id).rstrip('/'))}/ (job {job_id!r})")
    site = Site(out=out, index=out / index_name)
    if prefs_id is None:
        found = find_prefs(store, job_id)
        prefs_id = found[0] if found else None
    pair_filter, pair_files, split_of = None, {}, {}
    if prefs_id is not None:
        summary, records = read_prefs(store, prefs_id)
        pair_filter = make_pair_filter(summary.get("filter"))
        pair_files = M.pair_files_index(records)
        qids = {}
        for i, key in enumerate(keys):  # the split is by question over every tree of the job (§4.6)
            data = store.get_json(key)
            qids[data["id"]] = (data.get("question") or {}).get("id", data["id"])
            if progress:
                progress("reading questions", i + 1, len(keys))
        by_q = split_questions(
            qids.values(), int(summary.get("seed", 0)), summary.get("split_fractions") or (0.7, 0.15, 0.15)
        )
        split_of = {t: by_q[q] for t, q in qids.items()}
        site.notes.append(f"pairs, splits and filter from preference output {prefs_id!r}")
    rows = []
    tree_root = "../" + root
    tree_nav = [(label, "../" + href) for label, href in nav] + [("trees", f"../{index_name}")]
    for i, key in enumerate(keys):
        tree = tree_from_dict(store.get_json(key), location=store.uri(key))
        view = M.tree_view(tree, pair_filter=pair_filter, split=split_of.get(tree.id), pair_files=pair_files)
        _write(
            out / "trees" / f"{M.page_name(tree.id)}.html", R.tree_page(view, root=tree_root, nav=tree_nav)
        )
        rows.append(M.index_row(view))
        if progress:
            progress("tree pages", i + 1, len(keys))
    _write(out / "trees" / "index-data.js", R.index_data_js(rows))
    pairs = sum(r[3] for r in rows)
    intro = (
        f"<p>Tree job <code>{R.e(job_id)}</code>: {len(rows)} trees, {pairs} pairs"
        + (
            f" (preference output <code>{R.e(prefs_id)}</code>)"
            if prefs_id
            else " (no preference output found: no filter, no splits)"
        )
        + f". Store: <code>{R.e(store.uri(job_prefix(job_id).rstrip('/')))}/</code></p>"
    )
    _write(
        site.index,
        R.tree_index_page(
            f"Trees of {job_id}", root=root, data_src="trees/index-data.js", intro=intro, nav=nav
        ),
    )
    if assets:
        write_assets(out if not root else (out / root).resolve())
    site.files = len(rows) + 2
    return site


# ------------------------------------------------------------------------------------- pairs
def write_prefs_site(
    store: ObjectStore,
    prefs_id: str,
    out: Path,
    *,
    root: str = "",
    nav: Sequence[tuple[str, str]] = (),
    progress: Progress | None = None,
) -> Site:
    summary, records = read_prefs(store, prefs_id)
    job_id = summary.get("job_id")
    site = Site(out=out, index=out / "index.html")
    own_nav = [*nav, ("pairs", "index.html"), ("trees", "trees.html")]
    trees = (
        write_trees_site(
            store,
            job_id,
            out,
            prefs_id=prefs_id,
            root=root,
            index_name="trees.html",
            nav=own_nav[:-1],
            progress=progress,
        )
        if job_id
        else None
    )
    rows, links = [], []
    for mode, recs in records.items():
        counts = (summary.get("modes", {}).get(mode) or {}).get("counts", {})
        per_split = counts.get("pairs_written", {})
        for split, by_code in sorted(per_split.items(), key=lambda kv: _split_order(kv[0])):
            rows.append(
                [mode, split, by_code.get("accept", 0), by_code.get("resist", 0), by_code.get("none", 0)]
            )
        pages = max(1, -(-len(recs) // PAIRS_PER_PAGE))
        for p in range(pages):
            chunk = recs[p * PAIRS_PER_PAGE : (p + 1) * PAIRS_PER_PAGE]
            views = [
                M.pair_view(
                    r, tree_href=f"../trees/{M.page_name(str(r['tree_id']))}.html#n-{r['chosen_node']}"
                )
                for r in chunk
            ]
            name = f"{mode}-{p + 1}.html"
            _write(
                out / "pairs" / name,
                _pairs_page(
                    f"{mode} pairs ({p + 1}/{pages})",
                    views,
                    root="../" + root,
                    nav=[(label, "../" + h) for label, h in own_nav],
                ),
            )
        links.append(
            f'<li><a href="pairs/{mode}-1.html">{R.e(mode)}</a>: {len(recs)} pairs'
            + (f" in {pages} pages" if pages > 1 else "")
            + f" · <code>{R.e(store.uri(layout.pairs_key(prefs_id, mode)))}</code></li>"
        )
    lineage = [
        {
            "kind": "pairs",
            "title": f"preference output {prefs_id}",
            "uri": store.uri(layout.prefs_manifest_key(prefs_id)),
            "facts": {
                "seed": summary.get("seed"),
                "filter": summary.get("filter"),
                "code": summary.get("code_version"),
            },
        },
        {
            "kind": "trees",
            "title": f"tree job {job_id}",
            "href": "trees.html" if trees else None,
            "uri": (summary.get("inputs") or [{}])[0].get("uri"),
            "facts": {"trees": (summary.get("inputs") or [{}])[0].get("trees")},
        },
    ]
    counts = summary.get("counts", {})
    body = (
        f"<h1>Preference output {R.e(prefs_id)}</h1>"
        f'<p>From tree job <a href="trees.html">{R.e(job_id)}</a>; filter <code>{R.e(summary.get("filter"))}</code>; '
        f"seed {R.e(summary.get('seed'))}; split fractions {R.e(summary.get('split_fractions'))}; "
        f"pairs mined {R.e(counts.get('pairs_found'))}; trees dropped (all agree) {R.e(counts.get('trees_dropped_all_agree'))}.</p>"
        "<h2>Pairs written, by file and split</h2>"
        + R.table(["file", "split", "accept", "resist", "unlabelled"], rows)
        + "<h2>Files</h2><ul>"
        + "".join(links)
        + "</ul>"
        + "<h2>Lineage</h2>"
        + R.lineage_html(lineage)
    )
    _write(site.index, R.layout(f"pairs {prefs_id}", body, root=root, nav=own_nav))
    if not trees:
        write_assets(out if not root else (out / root).resolve())
    return site


def _split_order(split: str) -> tuple[int, str]:
    order = ("train", "dev", "test")
    return (order.index(split) if split in order else len(order), split)


def _pairs_page(
    title: str, views: Sequence[Mapping[str, Any]], *, root: str, nav: Sequence[tuple[str, str]]
) -> str:
    parts = [f"<h1>{R.e(title)}</h1>"]
    for v in views:
        parts.append(
            f'<div class="item" data-code="{R.e(v["code"])}"><b>{R.e(v["code"] or "unlabelled")}</b> · split {R.e(v["split"])} · '
            f'tree <a href="{R.e(v["tree_href"])}">{R.e(v["tree_id"])}</a> · chosen {R.e(v["chosen_node"])} '
            f"(score {R.e(v['chosen_score'])}) vs rejected {R.e(v['rejected_node'])} (score {R.e(v['rejected_score'])})"
            f'<div class="dim">{R.e(v["question"])} — gold {R.e(", ".join(v["gold"]))}; {R.e(v["rule"])}</div>'
            f"<details><summary>prompt</summary>{R.messages_html(v['prompt'])}</details>"
            f'<div class="cols"><div class="node role-chosen"><div class="head">chosen</div><div class="text">{R.e(v["chosen"])}</div></div>'
            f'<div class="node role-rejected"><div class="head">rejected</div><div class="text">{R.e(v["rejected"])}</div></div></div></div>'
        )
    return R.layout(title, "".join(parts), root=root, nav=nav)


# -------------------------------------------------------------------------------- evaluation
def write_eval_site(
    store: ObjectStore,
    eval_id: str,
    out: Path,
    *,
    root: str = "",
    nav: Sequence[tuple[str, str]] = (),
    training: Mapping[str, str] | None = None,
    model_notes: Mapping[str, str] | None = None,
    links: Mapping[tuple[str, str], str] | None = None,
    progress: Progress | None = None,
) -> Site:
    """Tables 1-3 and team debate (cells link to their items), SVG charts with the bootstrap
    intervals, one drill-down page per suite and model (team), and each model's lineage."""
    from pbt.evaluate.results import examples_key, load_summary, read_jsonl

    doc = load_summary(store, eval_id)
    site = Site(out=out, index=out / "index.html")
    own_nav = [*nav, ("evaluation", "index.html")]
    tables = M.eval_tables(doc)
    suites = list(doc.get("suites", {}))
    for n, suite in enumerate(suites):
        key = examples_key(eval_id, suite)
        records = read_jsonl(store, key) if store.exists(key) else []
        for page_key, page in M.item_pages(suite, records).items():
            _write(
                out / "items" / suite / f"{M.slug(page_key)}.html",
                R.items_page(
                    suite, page, root="../../" + root, nav=[(label, "../../" + h) for label, h in own_nav]
                ),
            )
            site.files += 1
        if progress:
            progress("evaluation items", n + 1, len(suites))
    parts = [
        f"<h1>Evaluation {R.e(eval_id)}</h1>",
        f"<p>State: {R.e(doc.get('state'))}. Seeds: {R.e(', '.join(map(str, doc.get('seeds', []))))}. "
        f"Results: <code>{R.e(doc.get('results_uri'))}</code>. Cells: mean ± std over seeds [95% bootstrap "
        "interval over items]; click a cell for its items and their conversations.</p>",
    ]
    if doc.get("error"):
        parts.append(f"<p><b>Error:</b> {R.e(doc['error'])}</p>")
    for t in tables:
        parts += [
            f'<h2 id="{R.e(t["id"])}">{R.e(t["title"])}</h2>',
            R.eval_table_html(t),
            R.svg_chart(t["chart"], title=t["title"]),
        ]
    lineage = (doc.get("lineage") or {}).get("models") or {}
    parts.append("<h2>Lineage</h2>")
    for m in doc.get("models", []):
        name = m["name"]
        chain = model_lineage(store, name, lineage.get(name), training or {}, links or {})
        note = (model_notes or {}).get(name)
        parts.append(
            f'<h3 id="lineage-{R.e(M.slug(name))}">{R.e(name)}</h3><p class="dim">endpoint {R.e(m.get("endpoint"))}'
            + (f", served model {R.e(m['model'])}" if m.get("model") else "")
            + (f"; {R.e(note)}" if note else "")
            + "</p>"
            + R.lineage_html(chain)
        )
    _write(site.index, R.layout(f"evaluation {eval_id}", "".join(parts), root=root, nav=own_nav))
    write_assets(out if not root else (out / root).resolve())
    site.files += 1
    return site


def publish_eval_site(
    store: ObjectStore, eval_id: str, *, prefix: str | None = None, progress: Progress | None = None
) -> str:
    """Write an evaluation's site into the store (``results/<id>/site/``) with its models' lineage
    linked to the pairs and trees sites beside it in the store (``prefs/<id>/site/``, written first
    when missing), by relative links, so they work from a local store folder and from a bucket
    served over HTTP alike. Returns the URI of the entry page."""
    import posixpath
    import tempfile

    from pbt.evaluate.results import load_summary

    prefix = (prefix or layout.results_site_prefix(eval_id)).rstrip("/")
    doc = load_summary(store, eval_id)
    recorded = (doc.get("lineage") or {}).get("models") or {}
    links: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory(prefix="pbt-view-") as tmp:
        for m in doc.get("models", []):
            for step in model_lineage(store, m["name"], recorded.get(m["name"]), {}, {}):
                pid = _id_under(store, step.get("uri"), "prefs") if step["kind"] == "pairs" else None
                if not pid or ("prefs", pid) in links or not store.exists(layout.prefs_manifest_key(pid)):
                    continue
                pkey = layout.prefs_site_prefix(pid)
                if not store.exists(f"{pkey}/index.html"):
                    publish(
                        store,
                        write_prefs_site(store, pid, Path(tmp) / "prefs" / pid, progress=progress),
                        pkey,
                    )
                rel = posixpath.relpath(pkey, prefix)
                links[("prefs", pid)] = f"{rel}/index.html"
                job = store.get_json(layout.prefs_manifest_key(pid)).get("job_id")
                if job:
                    links[("trees", job)] = f"{rel}/trees.html"
        site = write_eval_site(store, eval_id, Path(tmp) / "eval", links=links, progress=progress)
        return publish(store, site, prefix)


# --------------------------------------------------------------------------------------- demo
def _id_under(store: ObjectStore, uri: str | None, top: str) -> str | None:
    """``<store>/<top>/<id>/...`` -> id (None when the URI is not of this store or not under `top`)."""
    key = key_of(store, uri)
    parts = key.split("/") if key else []
    return parts[1] if len(parts) > 1 and parts[0] == top and parts[1] else None


def _seed_counts(rec: Mapping[str, Any]) -> str:
    trees = rec.get("trees") if isinstance(rec.get("trees"), dict) else {}
    pairs = rec.get("pairs") if isinstance(rec.get("pairs"), dict) else {}
    reused = f", {trees['reused']} reused from an earlier run" if trees.get("reused") else ""
    text = f"Trees: {trees.get('trees', '?')} ({trees.get('nodes', '?')} nodes built{reused})."
    if pairs:
        text += " Pairs: " + ", ".join(f"{m} {pairs[m]}" for m in PREF_FILES if m in pairs) + "."
    return text


def write_demo_site(store: ObjectStore, run_id: str, out: Path, *, progress: Progress | None = None) -> Site:
    """The demo's report with every seed's pairs, trees and evaluation sites linked from it."""
    report_key = layout.demo_key(run_id, "report.json")
    if not store.exists(report_key):
        raise NotFoundError(f"no demo report at {store.uri(report_key)}")
    doc = store.get_json(report_key)
    site = Site(out=out, index=out / "index.html")
    nav = [("demo", "../../index.html")]
    seed_parts = []
    for rec in doc.get("seeds", []):
        seed = rec.get("seed")
        arts = rec.get("artifacts") or {}
        job = _id_under(store, (rec.get("trees") or {}).get("uri") or arts.get("trees"), "trees")
        prefs_id = _id_under(store, arts.get("pairs"), "prefs")
        base = f"seed{seed}"
        links: dict[tuple[str, str], str] = {}
        if prefs_id:
            write_prefs_site(store, prefs_id, out / base / "prefs", root="../../", nav=nav, progress=progress)
            links[("prefs", prefs_id)] = "../prefs/index.html"
            if job:
                links[("trees", job)] = "../prefs/trees.html"
        elif job:
            write_trees_site(store, job, out / base / "trees", root="../../", nav=nav, progress=progress)
            links[("trees", job)] = "../trees/index.html"
        training = {
            mode: k
            for mode in PREF_FILES
            if (k := key_of(store, arts.get(f"dpo_{mode}"))) and store.exists(k)
        }
        notes = {
            "base": f"the strong agent a: {arts.get('agent_a', '')}",
            "weak": f"the weak agent b: {arts.get('agent_b', '')}",
        }
        eval_id = (rec.get("evaluation") or {}).get("eval_id")
        if eval_id:
            write_eval_site(
                store,
                eval_id,
                out / base / "eval",
                root="../../",
                nav=nav,
                training=training,
                model_notes=notes,
                links=links,
                progress=progress,
            )
        items = []
        if eval_id:
            items.append(
                f'<li><a href="{base}/eval/index.html">evaluation {R.e(eval_id)}</a> (Tables 1-3, team debate, lineage)</li>'
            )
        if prefs_id:
            items.append(
                f'<li><a href="{base}/prefs/index.html">pairs {R.e(prefs_id)}</a> · <a href="{base}/prefs/trees.html">trees {R.e(job)}</a></li>'
            )
        elif job:
            items.append(f'<li><a href="{base}/trees/index.html">trees {R.e(job)}</a></li>')
        for mode in training:
            items.append(
                f'<li>{R.e(mode)} variant: <a href="{base}/eval/index.html#lineage-{R.e(mode)}">adapter → training run → pairs → trees</a></li>'
            )
        seed_parts.append(
            f"<h2>Seed {R.e(seed)}</h2><p>World: <code>{R.e(R.plain(rec.get('world')))}</code>. {R.e(_seed_counts(rec))}</p>"
            f"<ul>{''.join(items)}</ul>"
        )
    summary = doc.get("summary") or {}
    models, cols = M.demo_summary_order(summary, doc.get("summary_order"))
    rows = []
    for model in models:
        by_col = summary[model]
        cells = [R.e(model)]
        for c in cols:
            v = by_col.get(c) or {}
            cells.append(
                "n/a" if v.get("mean") is None else f"{100 * v['mean']:.1f} ± {100 * (v.get('std') or 0):.1f}"
            )
        rows.append(cells)
    checks = "".join(
        f"<li>{R.e(name)}: <b>{'yes' if ok else 'no' if ok is not None else 'not measured'}</b></li>"
        for name, ok in (doc.get("checks") or {}).items()
    )
    body = (
        f"<h1>PBT demo {R.e(run_id)}</h1>"
        f"<p>World seeds {R.e(doc.get('settings', {}).get('seeds'))}; total {R.e(doc.get('total_seconds'))} s. "
        f"Report: <code>{R.e(doc.get('report_uri'))}</code></p>"
        "<h2>Summary over seeds (%, mean ± std)</h2>"
        + R.table(["model", *cols], rows, raw=True)
        + f"<h2>The paper's pattern</h2><ul>{checks}</ul>"
        + "".join(seed_parts)
    )
    _write(site.index, R.layout(f"demo {run_id}", body, root="", nav=[("demo", "index.html")]))
    write_assets(out)
    return site


def publish(store: ObjectStore, site: Site, prefix: str) -> str:
    """Upload a written site under `prefix` of the store; returns the URI of its entry page."""
    store.put_dir(prefix, site.out)
    rel = site.index.relative_to(site.out).as_posix()
    site.store_uri = store.uri(f"{prefix.rstrip('/')}/{rel}")
    return site.store_uri


# ---------------------------------------------------------------------------------- any kind
def default_prefix(kind: str, item_id: str) -> str:
    """Where ``--to-store`` puts a site when no prefix is given."""
    return {
        "trees": layout.trees_site_prefix(item_id),
        "prefs": layout.prefs_site_prefix(item_id),
        "eval": layout.results_site_prefix(item_id),
        "demo": layout.demo_key(item_id, "site"),
    }[kind]


def build_site(
    store: ObjectStore, kind: str, item_id: str, out: Path, progress: Progress | None = None
) -> Site:
    """The site of a tree job, preference output, evaluation or demo run (`kind`), written to `out`."""
    writers = {
        "trees": write_trees_site,
        "prefs": write_prefs_site,
        "eval": write_eval_site,
        "demo": write_demo_site,
    }
    return writers[kind](store, item_id, out, progress=progress)
