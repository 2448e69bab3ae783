"""Typed vectors: one representation for typed columns, ARRAY columns and JSON path values.

A :class:`TV` holds ``n`` rows of dynamically typed values as numpy/Arrow "lanes", one per JSON
value type; a typed column simply fills one lane. Masks are numpy bool arrays of length ``n`` or
the Python constants ``True`` (every row) / ``False`` (no row), which numpy broadcasts, so a
non-null INT64 column costs no mask memory at all.

- ``valid``: the column is not NULL there (segcore's valid bitmap); all results are ANDed with it.
- ``emiss``: the value is missing because an ARRAY index is out of range: every comparison is
  false there, ``!=`` included. Any other missing value (JSON key absent, JSON null, a value of
  another type) makes ``!=`` true.
- numbers: ``num`` (rows holding a number), ``is_int`` (rows holding an INT64; the rest of
  ``num`` are doubles), ``ival`` (int64, or the column's narrower integer dtype), ``fval``
  (float64, derived from ``ival`` on demand); ``f32`` marks a FLOAT column or element, whose
  values compare with constants rounded to float32.
- ``is_str``/``sval`` (Arrow string array of any width, null where not a string),
  ``is_bool``/``bval``,
  ``is_list``/``lst`` (:class:`ListLane`: lengths, start offsets, element TV built on demand),
  ``is_obj`` (JSON objects, only ever tested for emptiness), ``empty`` (segcore's
  ``isObjectEmpty`` per row, for ``exists``).

Builders: :func:`from_arrow` (a typed Arrow array; ``json=True`` applies JSON rules),
:func:`from_python` (decoded JSON values, one per row; the per-row fallback).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Mask = Any  # np.ndarray[bool] | bool
_I64_LIMIT = 2.0**63


class ListLane:
    """Arrays held by a TV: per-row ``lengths`` and ``starts`` into the flattened ``elems``."""

    def __init__(self, lengths: np.ndarray, starts: np.ndarray, build: Callable[[], TV]) -> None:
        self.lengths = lengths
        self.starts = starts
        self._build = build
        self._elems: TV | None = None

    @property
    def elems(self) -> TV:
        if self._elems is None:
            self._elems = self._build()
        return self._elems

    def parents(self, n: int) -> np.ndarray:
        """Row index of every element (elements are stored in row order)."""
        return np.repeat(np.arange(n, dtype=np.int64), self.lengths)


class TV:
    __slots__ = (
        "n",
        "valid",
        "emiss",
        "num",
        "is_int",
        "ival",
        "_fval",
        "f32",
        "is_str",
        "sval",
        "is_bool",
        "bval",
        "is_list",
        "lst",
        "is_obj",
        "_empty",
    )

    def __init__(self, n: int, valid: Mask = True) -> None:
        self.n = n
        self.valid: Mask = valid
        self.emiss: Mask = False
        self.num: Mask = False
        self.is_int: Mask = False
        self.ival: np.ndarray | None = None
        self._fval: np.ndarray | None = None
        self.f32 = False
        self.is_str: Mask = False
        self.sval: pa.Array | None = None
        self.is_bool: Mask = False
        self.bval: np.ndarray | None = None
        self.is_list: Mask = False
        self.lst: ListLane | None = None
        self.is_obj: Mask = False
        self._empty: Any = None

    @property
    def fval(self) -> np.ndarray:
        """Every number as float64 (ints converted the way C++ converts int64 to double)."""
        if self._fval is None:
            self._fval = self.ival.astype(np.float64) if self.ival is not None else np.zeros(self.n)
        return self._fval

    @fval.setter
    def fval(self, value: np.ndarray) -> None:
        self._fval = value

    @property
    def present(self) -> Mask:
        out: Mask = False
        for m in (self.num, self.is_str, self.is_bool, self.is_list, self.is_obj):
            out = m if out is False else (out | m if m is not False else out)
        return out

    @property
    def empty(self) -> np.ndarray:
        """segcore ``isObjectEmpty`` per row: missing, null, or containers of empties."""
        if callable(self._empty):
            self._empty = self._empty()
        if self._empty is None:
            e = ~as_array(self.present, self.n)
            if self.is_list is not False:
                lst = self.lst
                el = lst.elems  # a list is empty when none of its elements is non-empty
                nonempty = np.bincount(lst.parents(self.n)[~el.empty], minlength=self.n) > 0
                e |= as_array(self.is_list, self.n) & ~nonempty
            self._empty = e
        return self._empty

    def set_empty(self, empty: Any) -> None:
        """An array, or a callable computing it on first use."""
        self._empty = empty


def as_array(m: Mask, n: int) -> np.ndarray:
    if m is True:
        return np.ones(n, dtype=bool)
    if m is False:
        return np.zeros(n, dtype=bool)
    return m


def land(a: Mask, b: Mask) -> Mask:
    if a is True:
        return b
    if b is True:
        return a
    if a is False or b is False:
        return False
    return a & b


def lor(a: Mask, b: Mask) -> Mask:
    if a is False:
        return b
    if b is False:
        return a
    if a is True or b is True:
        return True
    return a | b


def lnot(a: Mask) -> Mask:
    if a is True:
        return False
    if a is False:
        return True
    return ~a


def validity(arr: pa.Array) -> Mask:
    if arr.null_count == 0:
        return True
    return arr.is_valid().to_numpy(zero_copy_only=False)


def numpy_values(arr: pa.Array, dtype: np.dtype) -> np.ndarray:
    """The value buffer of a primitive Arrow array, zero-copy; null slots hold unspecified data."""
    buf = arr.buffers()[1]
    if buf is None or len(arr) == 0:
        return np.zeros(len(arr), dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _list_offsets(arr: pa.Array) -> np.ndarray:
    width = np.int64 if pa.types.is_large_list(arr.type) else np.int32
    buf = arr.buffers()[1]
    if buf is None or len(arr) == 0:
        return np.zeros(len(arr) + 1, dtype=np.int64)
    offs = np.frombuffer(
        buf, dtype=width, count=len(arr) + 1, offset=arr.offset * (8 if width is np.int64 else 4)
    )
    return offs.astype(np.int64)


def from_arrow(arr: pa.Array, *, json: bool = False) -> TV:
    """A TV over an Arrow array; nulls are missing values (and invalid rows unless ``json``)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    t = arr.type
    has = validity(arr)
    tv = TV(n, True if json else has)
    if pa.types.is_null(t):
        return tv
    if pa.types.is_boolean(t):
        tv.is_bool = has
        tv.bval = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
    elif pa.types.is_integer(t):
        tv.num = tv.is_int = has
        tv.ival = numpy_values(arr, np.dtype(t.to_pandas_dtype()))
    elif pa.types.is_floating(t):
        tv.num = has
        vals = numpy_values(arr, np.dtype(t.to_pandas_dtype()))
        if pa.types.is_float32(t):
            tv.f32 = True
        tv.fval = vals.astype(np.float64) if vals.dtype != np.float64 else vals
        if json:
            _recover_ints(tv)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        tv.is_str = has
        tv.sval = arr if not pa.types.is_string_view(t) else arr.cast(pa.large_string())
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        offs = _list_offsets(arr)
        raw = np.diff(offs)
        lengths = raw if has is True else np.where(has, raw, 0)
        base, total = int(offs[0]), int(offs[-1] - offs[0])
        child = arr.values.slice(base, total)
        starts = exclusive_cumsum(lengths)
        src_starts = offs[:-1] - base
        compact = bool(np.array_equal(lengths, raw))

        def build() -> TV:
            elems = from_arrow(child, json=json)
            if compact:
                return elems
            # Null list slots may own child values in Arrow: drop them so elements stay dense.
            return gather(elems, segment_index(src_starts, lengths))

        tv.is_list = has
        tv.lst = ListLane(lengths, starts, build)
    elif pa.types.is_struct(t):
        tv.is_obj = has
        tv.set_empty(lambda: _struct_empty(arr, has))
    else:
        raise TypeError(f"unsupported Arrow type {t}")
    return tv


def _struct_empty(arr: pa.StructArray, has: Mask) -> np.ndarray:
    n = len(arr)
    empty = ~as_array(has, n)
    alive = np.ones(n, dtype=bool)
    for i in range(arr.type.num_fields):
        alive &= from_arrow(pc.struct_field(arr, [i]), json=True).empty
    return empty | alive


def exclusive_cumsum(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], out=out[1:])
    return out


def segment_index(src_starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``range(src_starts[r], src_starts[r] + lengths[r])`` over rows r."""
    total = int(lengths.sum())
    shift = np.repeat(src_starts - exclusive_cumsum(lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift


def _recover_ints(tv: TV) -> None:
    """JSON numbers read as float64 because a key mixes ints and floats: integral values within
    INT64 range are treated as ints again, so exact int semantics hold for the int rows."""
    f = tv.fval
    with np.errstate(invalid="ignore"):
        integral = (np.floor(f) == f) & (np.abs(f) < _I64_LIMIT)
    integral &= as_array(tv.num, tv.n)
    if integral.any():
        tv.is_int = integral
        tv.ival = np.where(integral, f, 0).astype(np.int64)


_KIND_BOOL, _KIND_INT, _KIND_FLOAT, _KIND_STR, _KIND_LIST, _KIND_OBJ = 1, 2, 3, 4, 5, 6


def from_python(values: Sequence[Any]) -> TV:
    """A TV over decoded JSON values (``None`` or a ``MISSING`` sentinel for absent values)."""
    n = len(values)
    kind = np.zeros(n, dtype=np.uint8)
    ival = np.zeros(n, dtype=np.int64)
    fval = np.zeros(n, dtype=np.float64)
    bval = np.zeros(n, dtype=bool)
    strs: list[Any] = [None] * n
    lists: list[list] = []
    lengths = np.zeros(n, dtype=np.int64)
    empty = np.zeros(n, dtype=bool)
    lo, hi = -(1 << 63), (1 << 63) - 1
    for i, v in enumerate(values):
        tp = type(v)
        if tp is str:
            kind[i] = _KIND_STR
            strs[i] = v
        elif tp is bool:
            kind[i] = _KIND_BOOL
            bval[i] = v
        elif tp is int:
            if lo <= v <= hi:
                kind[i] = _KIND_INT
                ival[i] = v
            else:  # simdjson: get_int64 fails, get_double succeeds
                kind[i] = _KIND_FLOAT
                fval[i] = _big_float(v)
        elif tp is float:
            kind[i] = _KIND_FLOAT
            fval[i] = v
        elif tp is list:
            kind[i] = _KIND_LIST
            lengths[i] = len(v)
            lists.append(v)
            empty[i] = _is_empty(v)
        elif tp is dict:
            kind[i] = _KIND_OBJ
            empty[i] = _is_empty(v)
        else:
            empty[i] = True
    tv = TV(n)
    is_int = kind == _KIND_INT
    num = is_int | (kind == _KIND_FLOAT)
    if num.any():
        tv.num = num
        tv.is_int = is_int
        tv.ival = ival
        fval[is_int] = ival[is_int]
        tv.fval = fval
    if (kind == _KIND_STR).any():
        tv.is_str = kind == _KIND_STR
        tv.sval = pa.array(strs, type=pa.large_string())
    if (kind == _KIND_BOOL).any():
        tv.is_bool = kind == _KIND_BOOL
        tv.bval = bval
    if lists:
        tv.is_list = kind == _KIND_LIST
        starts = exclusive_cumsum(lengths)
        tv.lst = ListLane(lengths, starts, lambda: from_python([x for lst in lists for x in lst]))
    if (kind == _KIND_OBJ).any():
        tv.is_obj = kind == _KIND_OBJ
    tv.set_empty(empty | (kind == 0))
    return tv


def _big_float(v: int) -> float:
    try:
        return float(v)
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")


def _is_empty(v: Any) -> bool:
    stack = [v]
    while stack:
        x = stack.pop()
        if x is None:
            continue
        if type(x) is dict:
            stack.extend(x.values())
        elif type(x) is list:
            stack.extend(x)
        else:
            return False
    return True


def gather(tv: TV, idx: np.ndarray, emiss: Mask = False) -> TV:
    """Rows ``idx`` of ``tv`` (``-1``: no value), e.g. element ``i`` of every row's array."""
    n = len(idx)
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    out = TV(n)
    out.emiss = emiss

    def take(m: Mask) -> Mask:
        if m is False:
            return False
        return ok if m is True else (m[safe] & ok)

    out.num = take(tv.num)
    out.is_int = take(tv.is_int)
    if tv.ival is not None:
        out.ival = tv.ival[safe]
    if tv.num is not False:
        out.fval = tv.fval[safe]
    out.f32 = tv.f32
    out.is_str = take(tv.is_str)
    if tv.sval is not None:
        # sval is null wherever the row holds no string, so a null index is all it takes.
        out.sval = tv.sval.take(pa.array(safe, mask=~ok))
    out.is_bool = take(tv.is_bool)
    if tv.bval is not None:
        out.bval = tv.bval[safe]
    out.is_obj = take(tv.is_obj)
    if tv.is_list is not False:
        out.is_list = take(tv.is_list)
        src = tv.lst
        lengths = np.where(as_array(out.is_list, n), src.lengths[safe], 0)
        src_starts = src.starts[safe]
        out.lst = ListLane(
            lengths,
            exclusive_cumsum(lengths),
            lambda: gather(src.elems, segment_index(src_starts, lengths)),
        )
    out.set_empty(lambda: np.where(ok, tv.empty[safe], True))
    return out


def element(tv: TV, index: int) -> TV:
    """Element ``index`` of an ARRAY field's rows; beyond the end every comparison is false."""
    lst = tv.lst
    n = tv.n
    if lst is None:
        out = TV(n, tv.valid)
        out.emiss = True
        return out
    has = as_array(tv.is_list, n) & (lst.lengths > index)
    out = gather(lst.elems, np.where(has, lst.starts + index, -1), emiss=~has)
    out.valid = tv.valid
    return out


def concat(tvs: Sequence[TV]) -> TV:
    """The rows of several TVs one after another (JSON blocks decoded different ways)."""
    if len(tvs) == 1:
        return tvs[0]
    n = sum(t.n for t in tvs)
    out = TV(n)

    def cat(attr: str) -> Mask:
        masks = [getattr(t, attr) for t in tvs]
        if all(m is False for m in masks):
            return False
        if all(m is True for m in masks):
            return True
        return np.concatenate([as_array(m, t.n) for m, t in zip(masks, tvs)])

    out.valid = cat("valid")
    out.emiss = cat("emiss")
    out.num, out.is_int, out.is_str = cat("num"), cat("is_int"), cat("is_str")
    out.is_bool, out.is_list, out.is_obj = cat("is_bool"), cat("is_list"), cat("is_obj")
    zeros = [np.zeros(t.n) for t in tvs]
    if out.num is not False:
        out.ival = np.concatenate(
            [
                t.ival.astype(np.int64) if t.ival is not None else z.astype(np.int64)
                for t, z in zip(tvs, zeros)
            ]
        )
        out.fval = np.concatenate([t.fval if t.num is not False else z for t, z in zip(tvs, zeros)])
    if out.is_str is not False:
        out.sval = pa.concat_arrays(
            [
                t.sval.cast(pa.large_string())
                if t.sval is not None
                else pa.nulls(t.n, pa.large_string())
                for t in tvs
            ]
        )
    if out.is_bool is not False:
        out.bval = np.concatenate(
            [t.bval if t.bval is not None else z.astype(bool) for t, z in zip(tvs, zeros)]
        )
    if out.is_list is not False:
        lengths = np.concatenate(
            [t.lst.lengths if t.lst is not None else z.astype(np.int64) for t, z in zip(tvs, zeros)]
        )
        parts = [t.lst for t in tvs]
        out.lst = ListLane(
            lengths,
            exclusive_cumsum(lengths),
            lambda: concat([lst.elems if lst is not None else TV(0) for lst in parts]),
        )
    out.set_empty(lambda: np.concatenate([t.empty for t in tvs]))
    return out
