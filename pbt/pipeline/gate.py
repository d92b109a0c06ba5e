"""The gates: candidate against the promoted adapter on one evaluation (same suites, same seeds).

Reads the evaluator's summary document (``results/{eval_id}/summary.json``, see
`pbt.evaluate.results`): balanced persuasion accuracy is ``suites.balanced.metrics[model].overall``
and the misinformation rate ``suites.misinformation.metrics["<model>/Avg"].misinformation_rate_avg``,
each a `pbt.evaluate.stats.MetricValue` dict (mean, std, ci_low, ci_high, per_seed, n_items;
fractions). The verdict, with every number and interval, goes to ``promotions/{run}/verdict.json``
and a readable ``report.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pbt.pipeline.spec import GatesSpec

AVG = "Avg"


@dataclass
class GateResult:
    name: str
    passed: bool | None  # None: not applicable (suite not run)
    detail: str
    values: dict[str, Any] = field(default_factory=dict)


def _metric(summary: dict[str, Any], suite: str, group: str, metric: str) -> dict[str, Any] | None:
    return (((summary.get("suites") or {}).get(suite) or {}).get("metrics") or {}).get(group, {}).get(metric)


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def evaluate_gates(
    summary: dict[str, Any], candidate: str, promoted: str, gates: GatesSpec
) -> list[GateResult]:
    """Every gate of `gates` on one evaluation summary that holds both models."""
    out: list[GateResult] = []
    state = summary.get("state")
    out.append(GateResult("evaluation_succeeded", state == "succeeded", f"evaluation state is {state!r}"))
    suites = summary.get("suites") or {}
    errors = {name: int(s.get("n_errors", 0)) for name, s in suites.items()}
    total = sum(errors.values())
    out.append(
        GateResult(
            "suite_errors",
            total <= gates.max_suite_errors,
            f"{total} failed items (at most {gates.max_suite_errors})",
            {"per_suite": errors},
        )
    )
    cand = _metric(summary, "balanced", candidate, "overall")
    prom = _metric(summary, "balanced", promoted, "overall")
    if cand is None or prom is None:
        missing = [m for m, v in ((candidate, cand), (promoted, prom)) if v is None]
        out.append(GateResult("balanced_accuracy", False, f"no balanced accuracy for {missing}"))
    else:
        c_mean, p_mean, c_low = _num(cand["mean"]), _num(prom["mean"]), _num(cand.get("ci_low"))
        need = None if p_mean is None else p_mean + gates.balanced_margin
        ok = c_mean is not None and need is not None and c_mean >= need
        out.append(
            GateResult(
                "balanced_accuracy",
                ok,
                f"candidate {_pct(c_mean)} vs promoted {_pct(p_mean)} + margin {_pct(gates.balanced_margin)}",
                {"candidate": cand, "promoted": prom, "threshold": need},
            )
        )
        if gates.require_ci_above_promoted:
            ok = c_low is not None and p_mean is not None and c_low > p_mean
            out.append(
                GateResult(
                    "balanced_interval",
                    ok,
                    f"candidate interval [{_pct(c_low)}, {_pct(_num(cand.get('ci_high')))}] lower bound vs promoted "
                    f"mean {_pct(p_mean)}",
                    {"candidate_ci_low": c_low, "promoted_mean": p_mean},
                )
            )
    c_mis = _metric(summary, "misinformation", f"{candidate}/{AVG}", "misinformation_rate_avg")
    p_mis = _metric(summary, "misinformation", f"{promoted}/{AVG}", "misinformation_rate_avg")
    if "misinformation" not in suites:
        out.append(GateResult("misinformation_rate", None, "suite not run"))
    elif c_mis is None or p_mis is None:
        out.append(GateResult("misinformation_rate", False, "misinformation rate missing for a model"))
    else:
        c, p = _num(c_mis["mean"]), _num(p_mis["mean"])
        ok = c is not None and p is not None and c <= p + gates.misinformation_tolerance
        out.append(
            GateResult(
                "misinformation_rate",
                ok,
                f"candidate {_pct(c)} vs promoted {_pct(p)} + tolerance {_pct(gates.misinformation_tolerance)}",
                {"candidate": c_mis, "promoted": p_mis},
            )
        )
    return out


def make_verdict(
    run: str,
    summary: dict[str, Any],
    *,
    candidate: dict[str, str],
    promoted: dict[str, str | None],
    gates: GatesSpec,
    promotion: dict[str, Any],
) -> dict[str, Any]:
    """The verdict document. `candidate`/`promoted`: {name (model name in the evaluation), adapter (store key)}."""
    results = evaluate_gates(summary, candidate["name"], str(promoted["name"]), gates)
    failed = [r.name for r in results if r.passed is False]
    return {
        "run": run,
        "passed": not failed,
        "failed_gates": failed,
        "gates": [asdict(r) for r in results],
        "thresholds": gates.model_dump(),
        "candidate": candidate,
        "promoted": promoted,
        "eval_id": summary.get("eval_id"),
        "results_uri": summary.get("results_uri"),
        "seeds": summary.get("seeds"),
        "promotion": promotion,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def render_report(verdict: dict[str, Any]) -> str:
    mark = {True: "pass", False: "**FAIL**", None: "n/a"}
    lines = [
        f"# Promotion verdict: {verdict['run']}",
        "",
        f"**{'PASSED' if verdict['passed'] else 'FAILED'}**"
        + ("" if verdict["passed"] else f" (failing gates: {', '.join(verdict['failed_gates'])})"),
        "",
        f"Candidate `{verdict['candidate']['name']}` ({verdict['candidate'].get('adapter')}) against promoted "
        f"`{verdict['promoted']['name']}` ({verdict['promoted'].get('adapter') or 'the base model'}), evaluation "
        f"`{verdict['eval_id']}`, seeds {verdict['seeds']}.",
        "",
        "| gate | result | detail |",
        "| --- | --- | --- |",
    ]
    for g in verdict["gates"]:
        lines.append(f"| {g['name']} | {mark[g['passed']]} | {g['detail']} |")
    lines += ["", f"Results: {verdict.get('results_uri')}", ""]
    return "\n".join(lines)
