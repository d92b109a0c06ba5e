"""Is PBT's gain over the base model on the balanced items more than noise? A paired comparison.

Both models answer the same items, so the comparison is per item: the items only one of the two
gets right ("discordant") carry all the evidence, and under "no difference" each is equally likely
to favour either model. The exact two-sided sign test on them (a binomial test at p = 1/2) is
written here with `math.comb` because it is three lines and the project has no scipy.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pbt.evaluate.results import examples_key
from pbt.store import ObjectStore


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign-test p-value for ``wins`` against ``losses`` discordant pairs (1.0 if none)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = max(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(k, n + 1)) / 2**n)


def paired_counts(
    records: list[dict[str, Any]], model: str = "pbt", baseline: str = "base"
) -> dict[str, int]:
    """Per-item comparison of two models on one suite's evaluation records (``correct`` per
    ``model``, ``item_id`` and sampling ``seed``): items only ``model`` / only ``baseline`` / both /
    neither got right."""
    correct: dict[str, dict[tuple[str, Any], bool]] = {model: {}, baseline: {}}
    for r in records:
        if r.get("model") in correct:
            correct[r["model"]][(r["item_id"], r.get("seed"))] = bool(r.get("correct"))
    shared = correct[model].keys() & correct[baseline].keys()
    m, b = correct[model], correct[baseline]
    return {
        "items": len(shared),
        "model_only": sum(m[i] and not b[i] for i in shared),
        "baseline_only": sum(b[i] and not m[i] for i in shared),
        "both": sum(m[i] and b[i] for i in shared),
        "neither": sum(not m[i] and not b[i] for i in shared),
    }


def balanced_paired(
    store: ObjectStore, eval_id: str, model: str = "pbt", baseline: str = "base"
) -> dict[str, int]:
    """`paired_counts` on the balanced suite of evaluation ``eval_id`` in ``store``."""
    key = examples_key(eval_id, "balanced")
    if not store.exists(key):
        return {"items": 0, "model_only": 0, "baseline_only": 0, "both": 0, "neither": 0}
    rows = [json.loads(line) for line in store.get_text(key).splitlines() if line.strip()]
    return paired_counts(rows, model, baseline)


def pooled(per_seed: list[dict[str, int]]) -> dict[str, float]:
    """Counts summed over seeds, with the sign test's p-value on the pooled discordant items."""
    total = {
        k: sum(c[k] for c in per_seed) for k in ("items", "model_only", "baseline_only", "both", "neither")
    }
    return {**total, "p_value": sign_test(total["model_only"], total["baseline_only"])}
