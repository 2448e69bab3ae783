"""SortedColumn: the scalar index of one column of an immutable segment (a sorted permutation),
answering comparisons with a constant and ``in`` lists by binary search.

vecstore serves Milvus's scalar index types INVERTED, STL_SORT and BITMAP with this one structure
on INT8/16/32/64 and VARCHAR fields without nulls: ``order`` sorts the rows by value, so the rows
matching ``x < c`` (``==``, ``in [...]``, ...) are one or a few runs of ``order``, found in
O(log n), and the answer costs O(matching rows) instead of a pass over the column. Ints compare
exactly; strings by code point, which is the bytewise UTF-8 order Milvus uses.

A lookup returns None when a scan is the better plan: when more than ``SCAN_SHARE`` of the rows
are on the smaller side of the answer, scattering them into a mask costs as much as comparing
every value.
"""

from __future__ import annotations

import numpy as np

SCAN_SHARE = 0.25
_OPS = ("==", "!=", "<", "<=", ">", ">=")


class SortedColumn:
    """A sorted permutation of an int64 or str column (no nulls)."""

    __slots__ = ("kind", "n", "order", "sorted")

    def __init__(self, values: np.ndarray) -> None:
        """``values``: int64 or object/unicode (str) array, one per row."""
        self.kind = "int" if values.dtype.kind in "iu" else "str"
        self.order = np.argsort(values, kind="stable")
        self.sorted = values[self.order]
        self.n = len(values)

    def _accepts(self, value: object) -> bool:
        if self.kind == "int":
            return type(value) is int
        return type(value) is str

    def _runs(self, op: str, c: object) -> list[tuple[int, int]]:
        lo = int(np.searchsorted(self.sorted, c, "left"))
        hi = int(np.searchsorted(self.sorted, c, "right"))
        return {"==": [(lo, hi)], "!=": [(0, lo), (hi, self.n)], "<": [(0, lo)],
                "<=": [(0, hi)], ">": [(hi, self.n)], ">=": [(lo, self.n)]}[op]

    def _mask(self, runs: list[tuple[int, int]]) -> np.ndarray | None:
        hits = sum(b - a for a, b in runs)
        if min(hits, self.n - hits) > SCAN_SHARE * self.n:
            return None
        if hits <= self.n - hits:
            mask = np.zeros(self.n, dtype=bool)
            for a, b in runs:
                mask[self.order[a:b]] = True
            return mask
        mask = np.ones(self.n, dtype=bool)  # clear the complement: the smaller side
        edges = [0] + [x for r in sorted(runs) for x in r] + [self.n]
        for a, b in zip(edges[::2], edges[1::2]):
            mask[self.order[a:b]] = False
        return mask

    def compare(self, op: str, value: object) -> np.ndarray | None:
        """Rows where ``column <op> value``; None if the index cannot answer (another type)
        or a scan is cheaper."""
        if op not in _OPS or not self._accepts(value):
            return None
        return self._mask(self._runs(op, value))

    def isin(self, values: tuple) -> np.ndarray | None:
        """Rows whose value is one of ``values``; None as for :meth:`compare`."""
        if not values or not all(self._accepts(v) for v in values):
            return None
        runs = sorted({self._runs("==", v)[0] for v in set(values)})
        return self._mask([r for r in runs if r[1] > r[0]])
