"""The running batch's KV cache: each layer's keys and values live in a preallocated slab.

transformers' `DynamicLayer` concatenates a layer's whole cache with each step's new column, and
continuous batching (`pbt.backends.batching`) copies it again to admit newcomers (left padding,
then concatenation along the rows) and to drop finished rows: under the tree workload these copies
took about 40% of the agent engine's time (docs/orchestrator.md). A `SlabLayer` keeps its keys and
values as views ``[:rows, :, start:end]`` of larger buffers with spare rows and columns on both
sides: a step writes its column in place, trimming leading padding moves ``start``, newcomers are
written into spare rows (and spare columns on the left when they are wider), finished rows are
compacted in place. The buffers are reallocated, with room to spare, only when they are full.

Values outside a row's tokens are zeros or stale finite keys, always masked out, so attention reads
the same numbers as with `DynamicLayer`.
"""

from __future__ import annotations

from typing import Any

from transformers.cache_utils import DynamicLayer

#: columns reserved past the live ones (a decoding step writes one) when a slab is (re)allocated
SPARE_COLUMNS = 64


class SlabLayer(DynamicLayer):
    """A `DynamicLayer` whose ``keys`` and ``values`` are views of preallocated buffers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._k: Any = None
        self._v: Any = None
        self.rows = 0
        self.start = 0
        self.end = 0

    def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
        self.device = key_states.device
        self.is_initialized = True

    @property
    def width(self) -> int:
        return self.end - self.start

    def _view(self) -> None:
        self.keys = self._k[: self.rows, :, self.start : self.end]
        self.values = self._v[: self.rows, :, self.start : self.end]

    def _reallocate(self, rows: int, left: int, right: int) -> None:
        """New buffers holding `rows` rows and the live columns with `left` / `right` free columns
        around them (at least); the live rows and columns are copied over."""
        import torch

        shape = self._k.shape
        rows_cap = max(rows, 2 * self.rows)
        left = max(left, SPARE_COLUMNS // 4)
        right = max(right, SPARE_COLUMNS, self.width)
        shape = (rows_cap, shape[1], left + self.width + right, shape[3])
        k = torch.zeros(shape, dtype=self._k.dtype, device=self._k.device)
        v = torch.zeros_like(k)
        k[: self.rows, :, left : left + self.width] = self.keys
        v[: self.rows, :, left : left + self.width] = self.values
        self._k, self._v = k, v
        self.start, self.end = left, left + self.width
        self._view()

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Append columns (a prefill's tokens or one decoding step) in place."""
        import torch

        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[2]
        if self._k is None:
            rows, heads, _, dim = key_states.shape
            shape = (rows, heads, new + SPARE_COLUMNS, dim)
            self._k = torch.zeros(shape, dtype=key_states.dtype, device=key_states.device)
            self._v = torch.zeros(shape, dtype=value_states.dtype, device=value_states.device)
            self.rows = rows
        elif self.end + new > self._k.shape[2]:
            self._reallocate(self.rows, 0, new)
        self._k[: self.rows, :, self.end : self.end + new] = key_states
        self._v[: self.rows, :, self.end : self.end + new] = value_states
        self.end += new
        self._view()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.width if self._k is not None else 0

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("SlabLayer does not crop; drop_left trims leading columns")

    def batch_repeat_interleave(self, repeats: int) -> None:
        import torch

        if self._k is not None:
            self.batch_select_indices(
                torch.arange(self.rows, device=self._k.device).repeat_interleave(repeats)
            )

    def batch_select_indices(self, indices: Any) -> None:
        """Keep the rows `indices` (in that order, repeats allowed), in new buffers."""
        import torch

        if self._k is None:
            return
        _, heads, _, dim = self._k.shape
        shape = (len(indices), heads, self.width + SPARE_COLUMNS, dim)
        k = torch.zeros(shape, dtype=self._k.dtype, device=self._k.device)
        v = torch.zeros_like(k)
        k[:, :, : self.width] = self.keys[indices]
        v[:, :, : self.width] = self.values[indices]
        self._k, self._v, self.rows = k, v, len(indices)
        self.start, self.end = 0, self.width
        self._view()

    def keep_rows(self, keep: list[int]) -> None:
        """Keep the rows `keep` (old indices, in their new order), moved in place: only rows whose
        place changes are copied."""
        moved = [j for j, row in enumerate(keep) if row != j]
        if moved:
            import torch

            dst = torch.tensor(moved, device=self._k.device)
            src = torch.tensor([keep[j] for j in moved], device=self._k.device)
            live = slice(self.start, self.end)
            self._k[dst, :, live] = self._k[src, :, live]
            self._v[dst, :, live] = self._v[src, :, live]
        self.rows = len(keep)
        self._view()

    def drop_left(self, columns: int) -> None:
        """Forget the first `columns` live columns (padding in every row)."""
        self.start += columns
        self._view()

    def append_rows(self, other: SlabLayer) -> None:
        """Add `other`'s rows below these, both right-aligned; the narrower side's extra columns are zeros."""
        extra = other.width - self.width
        if extra > 0:
            if self.start < extra:
                self._reallocate(self.rows, extra, 0)
            self._k[: self.rows, :, self.start - extra : self.start] = 0
            self._v[: self.rows, :, self.start - extra : self.start] = 0
            self.start -= extra
            self._view()
        rows = self.rows + other.rows
        if rows > self._k.shape[0]:
            self._reallocate(rows, 0, 0)
        pad = self.width - other.width
        new = slice(self.rows, rows)
        self._k[new, :, self.start : self.start + pad] = 0
        self._v[new, :, self.start : self.start + pad] = 0
        self._k[new, :, self.start + pad : self.end] = other.keys
        self._v[new, :, self.start + pad : self.end] = other.values
        self.rows = rows
        self._view()


def use_slabs(cache: Any) -> Any:
    """`cache` (a fresh `DynamicCache` of plain dynamic layers) with a `SlabLayer` per layer."""
    cache.layers = [SlabLayer() for _ in cache.layers]
    return cache
