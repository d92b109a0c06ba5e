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
#: a statistic maps (columns of n rows, weights of shape (B, n)) to B values: row weights are
#: 1 for the point estimate and the number of times a row's item was drawn in a bootstrap
#: resample, so all B resamples are computed at once with matrix products
Stat = Callable[[Columns, np.ndarray], np.ndarray]


def _safe_div(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(n), math.nan)
    np.divide(n, d, out=out, where=d != 0)
    return out


def ratio(num: str, den: str | None = None) -> Stat:
    """sum(num) / sum(den) (den None: mean of num); NaN when the denominator is 0."""

    def stat(cols: Columns, w: np.ndarray) -> np.ndarray:
        n = w @ cols[num].astype(float)
        d = w @ cols[den].astype(float) if den else w.sum(axis=1)
        return _safe_div(n, d)

    return stat


def total(col: str) -> Stat:
    """sum(col): a count (per seed; a bootstrap resample counts a drawn item as often as drawn)."""
    return lambda cols, w: w @ cols[col].astype(float)


def difference(a: Stat, b: Stat) -> Stat:
    return lambda cols, w: a(cols, w) - b(cols, w)


def absolute(inner: Stat) -> Stat:
    return lambda cols, w: np.abs(inner(cols, w))


def where(col: str, value: object, inner: Stat) -> Stat:
    """`inner` over the rows whose `col` equals `value`."""

    def stat(cols: Columns, w: np.ndarray) -> np.ndarray:
        mask = cols[col] == value
        return inner({k: c[mask] for k, c in cols.items()}, w[:, mask])

    return stat


def order_changed(value_col: str, order_col: str = "is_a_first") -> Stat:
    """Fraction of items whose `value_col` differs between the rows with `order_col` 1 and 0 (the two
    speaking orders of a team debate); items lacking one of the orders are left out. An item's
    bootstrap weight is that of its `order_col` = 1 row (both rows of an item are drawn together)."""

    def stat(cols: Columns, w: np.ndarray) -> np.ndarray:
        first = cols[order_col] == 1
        rows_a = {str(it): i for i, it in enumerate(cols["item_id"]) if first[i]}
        rows_b = {str(it): i for i, it in enumerate(cols["item_id"]) if not first[i]}
        common = sorted(set(rows_a) & set(rows_b))
        if not common:
            return np.full(w.shape[0], math.nan)
        ia = np.asarray([rows_a[k] for k in common])
        ib = np.asarray([rows_b[k] for k in common])
        changed = (cols[value_col][ia] != cols[value_col][ib]).astype(float)
        return _safe_div(w[:, ia] @ changed, w[:, ia].sum(axis=1))

    return stat


def _nanmean(rows: list[np.ndarray], size: int) -> np.ndarray:
    if not rows:
        return np.full(size, math.nan)
    stack = np.vstack(rows)
    valid = ~np.isnan(stack)
    total = np.where(valid, stack, 0.0).sum(axis=0)
    return _safe_div(total, valid.sum(axis=0).astype(float))


def mean_of(*stats: Stat) -> Stat:
    """Mean of several statistics, ignoring undefined (NaN) ones (Table 3's overall)."""
    return lambda cols, w: _nanmean([s(cols, w) for s in stats], w.shape[0])


def mean_over(group_col: str, inner: Stat) -> Stat:
    """Mean of `inner` over the groups of `group_col` (e.g. the Avg column over Farm subsets)."""

    def stat(cols: Columns, w: np.ndarray) -> np.ndarray:
        groups = [where(group_col, g, inner)(cols, w) for g in np.unique(cols[group_col])]
        return _nanmean(groups, w.shape[0])

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
    if not rows:
        return MetricValue(math.nan, math.nan, math.nan, math.nan, {}, 0)
    cols = to_columns(rows, keys)
    items, item_of_row = np.unique(cols["item_id"], return_inverse=True)
    seeds = sorted({int(s) for s in cols["seed"]})
    rng = np.random.default_rng(rng_seed)
    # counts[b, i]: how often item i is drawn in resample b (n draws with replacement)
    counts = rng.multinomial(len(items), np.full(len(items), 1.0 / len(items)), size=samples).astype(float)
    per_seed: dict[int, float] = {}
    boot_rows = []
    for s in seeds:
        mask = cols["seed"] == s
        sub = {k: c[mask] for k, c in cols.items()}
        per_seed[s] = float(stat(sub, np.ones((1, int(mask.sum()))))[0])
        boot_rows.append(stat(sub, counts[:, item_of_row[mask]]))
    vals = [v for v in per_seed.values() if not math.isnan(v)]
    mean = float(np.mean(vals)) if vals else math.nan
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else math.nan)
    boot = _nanmean(boot_rows, samples)  # a resample's value is the mean over seeds, like the estimate
    boot = boot[~np.isnan(boot)]
    lo = hi = math.nan
    if len(boot):
        alpha = (1.0 - confidence) / 2.0
        lo, hi = (float(x) for x in np.quantile(boot, [alpha, 1.0 - alpha]))
    return MetricValue(mean=mean, std=std, ci_low=lo, ci_high=hi, per_seed=per_seed, n_items=len(items))
