"""Aggregation: per-seed values → mean ± std, and item-level bootstrap confidence intervals.

A metric is a function of a table of per-example columns (numpy arrays, one row per example,
rows of every seed). For each seed it is computed on that seed's rows; mean and std (sample
std, ddof=1; 0 for one seed) summarise the seeds. The confidence interval resamples *items*
with replacement (all seeds of a drawn item come along, so seeds stay paired) and takes the
percentile interval of the metric over the resamples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Columns = Mapping[str, np.ndarray]
Stat = Callable[[Columns], float]


def ratio(num: str, den: str | None = None) -> Stat:
    """sum(num) / sum(den) (den None: mean of num); NaN when the denominator is 0."""

    def stat(cols: Columns) -> float:
        n = float(np.sum(cols[num]))
        d = float(np.sum(cols[den])) if den else float(len(cols[num]))
        return n / d if d else math.nan

    return stat


def difference(a: Stat, b: Stat) -> Stat:
    return lambda cols: a(cols) - b(cols)


def mean_over(group_col: str, inner: Stat) -> Stat:
    """Mean of `inner` over the groups of `group_col` (e.g. the Avg column over Farm subsets)."""

    def stat(cols: Columns) -> float:
        keys = cols[group_col]
        vals = []
        for g in np.unique(keys):
            mask = keys == g
            v = inner({k: c[mask] for k, c in cols.items()})
            if not math.isnan(v):
                vals.append(v)
        return float(np.mean(vals)) if vals else math.nan

    return stat


@dataclass
class MetricValue:
    """One metric of one group: seeds summarised and the bootstrap interval (fractions, not %)."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    per_seed: dict[int, float]
    n_items: int

    def to_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if x is None or math.isnan(x) else round(float(x), 6)

        return {
            "mean": clean(self.mean),
            "std": clean(self.std),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "per_seed": {str(k): clean(v) for k, v in self.per_seed.items()},
            "n_items": self.n_items,
        }


def to_columns(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, np.ndarray]:
    cols = {k: np.asarray([r[k] for r in rows]) for k in keys}
    return cols


def summarize(
    rows: Sequence[Mapping[str, Any]],
    stat: Stat,
    *,
    columns: Sequence[str],
    samples: int = 1000,
    confidence: float = 0.95,
    rng_seed: int = 0,
) -> MetricValue:
    """Summarise `stat` over `rows` (each with 'seed', 'item_id' and the needed `columns`)."""
    keys = sorted(set(columns) | {"seed", "item_id"})
    cols = to_columns(rows, keys) if rows else {k: np.asarray([]) for k in keys}
    seeds = sorted({int(s) for s in cols["seed"]})
    per_seed: dict[int, float] = {}
    for s in seeds:
        mask = cols["seed"] == s
        per_seed[s] = stat({k: c[mask] for k, c in cols.items()})
    vals = [v for v in per_seed.values() if not math.isnan(v)]
    mean = float(np.mean(vals)) if vals else math.nan
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else math.nan)
    items, inverse = np.unique(cols["item_id"], return_inverse=True) if rows else (np.asarray([]), None)
    lo = hi = math.nan
    if len(items) > 0:
        by_item = [np.flatnonzero(inverse == i) for i in range(len(items))]
        rng = np.random.default_rng(rng_seed)
        boot = []
        for _ in range(samples):
            pick = rng.integers(0, len(items), size=len(items))
            idx = np.concatenate([by_item[i] for i in pick])
            sub = {k: c[idx] for k, c in cols.items()}
            # a resample's metric is the mean over seeds, like the point estimate
            svals = []
            for s in seeds:
                m = sub["seed"] == s
                if m.any():
                    v = stat({k: c[m] for k, c in sub.items()})
                    if not math.isnan(v):
                        svals.append(v)
            if svals:
                boot.append(float(np.mean(svals)))
        if boot:
            alpha = (1.0 - confidence) / 2.0
            lo, hi = (float(x) for x in np.quantile(boot, [alpha, 1.0 - alpha]))
    return MetricValue(mean=mean, std=std, ci_low=lo, ci_high=hi, per_seed=per_seed, n_items=len(items))
