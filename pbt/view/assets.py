"""The site's stylesheet and script (written to ``assets/`` of every site; no CDN, no build step)."""

from __future__ import annotations

CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --dim: #6e7781; --line: #d0d7de; --bg: #f6f8fa;
        --chosen: #dafbe1; --rejected: #ffebe9; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; }
header.top { background: #24292f; color: #fff; padding: 8px 16px; }
header.top a { color: #fff; margin-right: 14px; text-decoration: none; }
header.top a:hover { text-decoration: underline; }
main { padding: 12px 16px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 8px 0; } h2 { font-size: 17px; margin: 22px 0 8px; }
a { color: var(--accent); }
.dim { color: var(--dim); }
table.grid { border-collapse: collapse; margin: 6px 0 12px; }
table.grid th, table.grid td { border: 1px solid var(--line); padding: 3px 8px; text-align: left;
        vertical-align: top; }
table.grid th { background: var(--bg); }
table.grid td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 8px 0; padding: 8px;
        background: var(--bg); border: 1px solid var(--line); border-radius: 6px; }
.pager button { margin: 0 2px; }
.ans { display: inline-block; padding: 0 6px; border-radius: 10px; margin-right: 6px; border: 1px solid var(--line);
        font-size: 12px; }
.ans.ok { background: #dafbe1; border-color: var(--ok); color: var(--ok); }
.ans.bad { background: #ffebe9; border-color: var(--bad); color: var(--bad); }
.ans.none { color: var(--dim); }
.ans.unscored { border-style: dashed; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 22px; border-left: 1px dashed var(--line); }
ul.tree { padding-left: 0; border-left: 0; }
ul.tree li { margin: 6px 0; }
.node { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; background: #fff; max-width: 980px; }
.node.agent-0 { border-left: 4px solid #8250df; } .node.agent-1 { border-left: 4px solid #bf8700; }
.node.role-chosen { background: var(--chosen); } .node.role-rejected { background: var(--rejected); }
.node.role-chosen.role-rejected { background: linear-gradient(90deg, var(--chosen), var(--rejected)); }
.node:target { outline: 3px solid var(--accent); }
.node .head { font-size: 12px; color: var(--dim); }
.node .head b { color: #1f2328; }
.node .text { margin: 3px 0; white-space: pre-wrap; }
.mark { display: inline-block; font-size: 12px; padding: 0 6px; border-radius: 4px; margin: 2px 4px 0 0; }
.mark.chosen { background: var(--ok); color: #fff; } .mark.rejected { background: var(--bad); color: #fff; }
.mark a { color: inherit; font-weight: 700; }
.mark.unlabelled { background: #eaeef2; color: #1f2328; }
.mark.filtered { opacity: 0.55; text-decoration: line-through; }
.code { font-weight: 600; }
.outcome-pair { background: var(--chosen); } .outcome-filtered { background: #fff8c5; }
.outcome-skipped { color: var(--dim); }
tr.outcome-pair.unlabelled { background: var(--bg); }
.msg { border-left: 3px solid var(--line); padding: 2px 8px; margin: 4px 0; white-space: pre-wrap; }
.msg.role-user { border-color: #8250df; } .msg.role-assistant { border-color: #bf8700; }
.msg.role-system { border-color: var(--dim); color: var(--dim); }
.msg .role { font-size: 11px; color: var(--dim); display: block; }
.item { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.item:target { outline: 3px solid var(--accent); }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.chart svg { max-width: 100%; height: auto; }
.lineage li { margin: 4px 0; }
code { background: var(--bg); padding: 0 3px; border-radius: 3px; }
"""

#: The tree index: reads ``window.PBT_INDEX`` (loaded by a ``<script src>`` data file, which works
#: under file:// where fetch() does not), filters it in memory and draws one page of rows at a time.
JS_INDEX = r"""
(function () {
  var data = window.PBT_INDEX || {columns: [], rows: []};
  var C = {}; data.columns.forEach(function (c, i) { C[c] = i; });
  var rows = data.rows, shown = rows, page = 0, per = 100;
  var $ = function (id) { return document.getElementById(id); };
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; }); }
  function href(r) { return (data.base || "trees/") + encodeURIComponent(r[C.page] || r[C.id]) + ".html"; }
  function yn(v) { return v === null || v === undefined ? "" : (v ? "yes" : "no"); }
  var personas = {}, splits = {};
  rows.forEach(function (r) { (r[C.personas] || []).forEach(function (p) { personas[p] = 1; });
    if (r[C.split]) splits[r[C.split]] = 1; });
  Object.keys(personas).sort().forEach(function (p) {
    var o = document.createElement("option"); o.value = o.textContent = p; $("f-persona").appendChild(o); });
  Object.keys(splits).sort().forEach(function (p) {
    var o = document.createElement("option"); o.value = o.textContent = p; $("f-split").appendChild(o); });
  function tri(sel, v) { return sel === "" || (sel === "yes") === !!v; }
  function apply() {
    var pairs = $("f-pairs").value, agree = $("f-agree").value, root = $("f-root").value;
    var persona = $("f-persona").value, split = $("f-split").value, q = $("f-q").value.toLowerCase();
    shown = rows.filter(function (r) {
      if (pairs === "yes" && !r[C.pairs]) return false;
      if (pairs === "no" && r[C.pairs]) return false;
      if (pairs === "accept" && !r[C.accept]) return false;
      if (pairs === "resist" && !r[C.resist]) return false;
      if (!tri(agree, r[C.agree])) return false;
      if (root !== "" && (r[C.root_ok] === null || !tri(root, r[C.root_ok]))) return false;
      if (persona && (r[C.personas] || []).indexOf(persona) < 0) return false;
      if (split && r[C.split] !== split) return false;
      if (q && (String(r[C.id]) + " " + r[C.question]).toLowerCase().indexOf(q) < 0) return false;
      return true;
    });
    page = 0; draw();
  }
  function draw() {
    var pages = Math.max(1, Math.ceil(shown.length / per));
    if (page >= pages) page = pages - 1;
    var out = [];
    shown.slice(page * per, page * per + per).forEach(function (r) {
      out.push("<tr><td><a href=\"" + href(r) + "\">" + esc(r[C.id]) + "</a></td><td>" + esc(r[C.question]) +
        "</td><td class=num>" + r[C.nodes] + "</td><td class=num>" + r[C.pairs] + "</td><td class=num>" +
        r[C.accept] + "</td><td class=num>" + r[C.resist] + "</td><td>" + yn(r[C.agree]) + "</td><td>" +
        yn(r[C.root_ok]) + "</td><td>" + esc((r[C.personas] || []).join(", ")) + "</td><td>" +
        esc(r[C.split] || "") + "</td></tr>");
    });
    $("rows").innerHTML = out.join("");
    $("count").textContent = shown.length + " of " + rows.length + " trees; page " + (page + 1) + " of " + pages;
  }
  ["f-pairs", "f-agree", "f-root", "f-persona", "f-split"].forEach(function (id) {
    $(id).addEventListener("change", apply); });
  $("f-q").addEventListener("input", apply);
  $("prev").addEventListener("click", function () { if (page > 0) { page--; draw(); } });
  $("next").addEventListener("click", function () { page++; draw(); });
  apply();
  if (window.performance && performance.mark) performance.mark("pbt-index-drawn");
  document.body.setAttribute("data-drawn-ms", String(Math.round(performance.now())));
  document.body.setAttribute("data-rows", String(rows.length));
})();
"""
