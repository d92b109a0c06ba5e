"""`pbt.backends.kv_cache.SlabLayer` against plain tensors: appending columns, admitting rows,
dropping rows and leading columns give the same keys and values as concatenating and slicing."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from pbt.backends.batching import fill_holes  # noqa: E402
from pbt.backends.kv_cache import SPARE_COLUMNS, SlabLayer  # noqa: E402

HEADS, DIM = 2, 3


def kv(rows: int, cols: int) -> tuple:
    return torch.randn(rows, HEADS, cols, DIM), torch.randn(rows, HEADS, cols, DIM)


def slab(keys, values) -> SlabLayer:
    layer = SlabLayer()
    layer.update(keys, values)
    return layer


def right_aligned(a, width: int):
    pad = a.new_zeros((a.shape[0], a.shape[1], width - a.shape[2], a.shape[3]))
    return torch.cat([pad, a], dim=2)


def check(layer: SlabLayer, keys, values) -> None:
    assert layer.keys.shape == keys.shape and layer.get_seq_length() == keys.shape[2]
    assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)


def test_a_step_writes_in_place_until_the_slab_is_full():
    keys, values = kv(3, 5)
    layer = slab(keys, values)
    buffer = layer._k
    for _ in range(SPARE_COLUMNS):
        k, v = kv(3, 1)
        out_k, out_v = layer.update(k, v)
        keys, values = torch.cat([keys, k], dim=2), torch.cat([values, v], dim=2)
        assert torch.equal(out_k, keys) and torch.equal(out_v, values)
    assert layer._k is buffer, "a decoding step reallocated the slab before it was full"
    k, v = kv(3, 1)
    layer.update(k, v)
    check(layer, torch.cat([keys, k], dim=2), torch.cat([values, v], dim=2))


def test_random_steps_admissions_drops_and_trims_match_plain_tensors():
    rng = random.Random(0)
    torch.manual_seed(0)
    keys, values = kv(2, 4)
    layer = slab(keys, values)
    for _ in range(300):
        op = rng.choice(["step", "step", "admit", "drop", "trim"])
        if op == "step":
            k, v = kv(keys.shape[0], 1)
            layer.update(k, v)
            keys, values = torch.cat([keys, k], dim=2), torch.cat([values, v], dim=2)
        elif op == "admit":
            k, v = kv(rng.randint(1, 4), rng.randint(1, keys.shape[2] + 20))
            layer.append_rows(slab(k, v))
            width = max(keys.shape[2], k.shape[2])
            keys = torch.cat([right_aligned(keys, width), right_aligned(k, width)], dim=0)
            values = torch.cat([right_aligned(values, width), right_aligned(v, width)], dim=0)
        elif op == "drop" and keys.shape[0] > 1:
            keep = sorted(rng.sample(range(keys.shape[0]), rng.randint(1, keys.shape[0] - 1)))
            if rng.random() < 0.5:
                keep = fill_holes(keep, keys.shape[0])
            layer.keep_rows(keep)
            keys, values = keys[keep], values[keep]
        elif op == "trim" and keys.shape[2] > 1:
            n = rng.randint(1, keys.shape[2] - 1)
            layer.drop_left(n)
            keys, values = keys[:, :, n:], values[:, :, n:]
        check(layer, keys, values)


def test_selecting_rows_with_repeats_copies_them():
    keys, values = kv(3, 6)
    layer = slab(keys, values)
    index = torch.tensor([0, 0, 2, 1, 1, 1])
    layer.batch_select_indices(index)
    check(layer, keys[index], values[index])
    k, v = kv(6, 1)
    layer.update(k, v)
    check(layer, torch.cat([keys[index], k], dim=2), torch.cat([values[index], v], dim=2))


def test_dropping_rows_moves_only_as_many_rows_as_were_dropped():
    assert fill_holes([0, 2, 3, 5, 6], 7) == [0, 5, 2, 3, 6]
    assert fill_holes([1, 2], 3) == [2, 1]
    assert fill_holes([0, 1, 2], 5) == [0, 1, 2]
    for rows in range(1, 9):
        for mask in range(1, 2**rows):
            keep = [j for j in range(rows) if mask >> j & 1]
            order = fill_holes(keep, rows)
            assert sorted(order) == keep
            assert sum(j != row for j, row in enumerate(order)) == sum(
                j not in keep for j in range(len(keep))
            )
