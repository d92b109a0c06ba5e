"""Seed aggregation and bootstrap intervals, with hand-checked values and properties."""

from __future__ import annotations

import math
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from pbt.evaluate.stats import difference, mean_over, ratio, summarize


def _rows(values_by_seed: dict[int, list[int]]) -> list[dict]:
    return [
        {"seed": s, "item_id": f"i{i}", "x": v, "one": 1}
        for s, vals in values_by_seed.items()
        for i, v in enumerate(vals)
    ]


def test_mean_std_over_seeds_by_hand():
    rows = _rows({1: [1, 1, 0, 0], 2: [1, 1, 1, 0], 3: [1, 0, 0, 0]})  # 0.5, 0.75, 0.25
    m = summarize(rows, ratio("x"), columns=["x"], samples=300)
    assert m.per_seed == {1: 0.5, 2: 0.75, 3: 0.25}
    assert m.mean == 0.5
    assert math.isclose(m.std, statistics.stdev([0.5, 0.75, 0.25]))
    assert m.n_items == 4
    assert 0.0 <= m.ci_low <= m.mean <= m.ci_high <= 1.0


def test_ratio_with_denominator_and_nan():
    rows = [
        {"seed": 1, "item_id": "a", "num": 1, "den": 1},
        {"seed": 1, "item_id": "b", "num": 0, "den": 1},
        {"seed": 1, "item_id": "c", "num": 0, "den": 0},
    ]
    assert summarize(rows, ratio("num", "den"), columns=["num", "den"], samples=50).mean == 0.5
    empty = summarize([r | {"den": 0} for r in rows], ratio("num", "den"), columns=["num", "den"], samples=50)
    assert math.isnan(empty.mean) and empty.to_dict()["mean"] is None


def test_difference_and_mean_over_groups():
    rows = [
        {"seed": 1, "item_id": "a", "b": 1, "f": 0, "g": "x"},
        {"seed": 1, "item_id": "b", "b": 1, "f": 1, "g": "x"},
        {"seed": 1, "item_id": "c", "b": 0, "f": 0, "g": "y"},
        {"seed": 1, "item_id": "d", "b": 1, "f": 0, "g": "y"},
    ]
    diff = summarize(rows, difference(ratio("f"), ratio("b")), columns=["b", "f"], samples=50)
    assert diff.mean == 0.25 - 0.75
    avg = summarize(rows, mean_over("g", ratio("b")), columns=["b", "g"], samples=50)
    assert avg.mean == (1.0 + 0.5) / 2


def test_bootstrap_is_reproducible_and_narrows_with_more_items():
    small = _rows({1: [1, 0] * 5})
    big = _rows({1: [1, 0] * 200})
    a = summarize(small, ratio("x"), columns=["x"], samples=400)
    b = summarize(small, ratio("x"), columns=["x"], samples=400)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    c = summarize(big, ratio("x"), columns=["x"], samples=400)
    assert (c.ci_high - c.ci_low) < (a.ci_high - a.ci_low)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=30), st.integers(1, 3))
def test_interval_within_range_of_values(values, n_seeds):
    rows = _rows({s: values for s in range(n_seeds)})
    m = summarize(rows, ratio("x"), columns=["x"], samples=50)
    assert math.isclose(m.std, 0.0, abs_tol=1e-12)  # identical seeds
    assert min(values) <= m.ci_low <= m.ci_high <= max(values)
    if len(set(values)) == 1:
        assert m.ci_low == m.ci_high == m.mean == values[0]
