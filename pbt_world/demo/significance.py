"""Is PBT's gain over the base model on the balanced items more than noise? A paired comparison.

Both models answer the same items, so the comparison is per item: the items one of the two gets
right more often (over the evaluation seeds; with one seed, the items only it gets right) carry
all the evidence, and under "no difference" each is equally likely to favour either model. The
exact two-sided sign test on them (a binomial test at p = 1/2) is written here with `math.comb`
because it is three lines and the project has no scipy.
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
    """Per-item comparison of two models on one suite's evaluation records (``correct`` per ``model``,
    ``item_id`` and evaluation ``seed``): on how many items ``model`` / ``baseline`` was right more
    often over the seeds, and on how many equally often. With several seeds an item's answers are
    not independent of each other, so the item, not the (item, seed) answer, is the unit."""
    right: dict[str, dict[str, int]] = {model: {}, baseline: {}}
    for r in records:
        if r.get("model") in right:
            counts = right[r["model"]]
            counts[r["item_id"]] = counts.get(r["item_id"], 0) + bool(r.get("correct"))
    m, b = right[model], right[baseline]
    shared = m.keys() & b.keys()
    return {
        "items": len(shared),
        "model_better": sum(m[i] > b[i] for i in shared),
        "baseline_better": sum(b[i] > m[i] for i in shared),
        "ties": sum(m[i] == b[i] for i in shared),
    }


def balanced_paired(
    store: ObjectStore, eval_id: str, model: str = "pbt", baseline: str = "base"
) -> dict[str, int]:
    """`paired_counts` on the balanced suite of evaluation ``eval_id`` in ``store``."""
    key = examples_key(eval_id, "balanced")
    if not store.exists(key):
        return {"items": 0, "model_better": 0, "baseline_better": 0, "ties": 0}
    rows = [json.loads(line) for line in store.get_text(key).splitlines() if line.strip()]
    return paired_counts(rows, model, baseline)


def pooled(per_seed: list[dict[str, int]]) -> dict[str, float]:
    """Counts summed over world seeds (different items), with the sign test's p-value on the items
    that favour one model."""
    total = {k: sum(c[k] for c in per_seed) for k in ("items", "model_better", "baseline_better", "ties")}
    return {**total, "p_value": sign_test(total["model_better"], total["baseline_better"])}
