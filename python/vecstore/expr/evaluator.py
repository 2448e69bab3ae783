"""Vectorised evaluator: a bound plan over an Arrow table or record batch -> numpy bool array.

``evaluate_table(pred, data, cache)`` reads each referenced column once, as a typed vector
(:mod:`vecstore.expr.vectors`), and runs the plan with numpy and ``pyarrow.compute`` kernels
(:mod:`vecstore.expr.ops`); no per-row Python runs except inside JSON decoding's documented
fallback (:mod:`vecstore.expr.jsoncol`). Semantics are those of :mod:`vecstore.expr.plan`, and
tests hold this evaluator to :mod:`vecstore.expr.reference` row for row.

Column types expected (a mismatch is an ``InvalidArgument`` naming the column):

==================  =========================================================================
BOOL                ``bool``
INT8..INT64         any Arrow integer type
FLOAT, DOUBLE       ``float32`` / ``float64`` (FLOAT values are rounded to float32 either way)
VARCHAR             ``string`` / ``large_string`` / ``string_view``
JSON (and $meta)    ``string`` / ``large_string`` / ``binary`` / ``large_binary`` JSON text
ARRAY(T)            ``list`` / ``large_list`` of the element type above
==================  =========================================================================

Columns may be chunked (a Table); they are combined first, which copies when there are several
chunks. Thread-safety: an evaluation owns its state; a shared :class:`JsonCache` locks itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore.errors import InvalidArgument
from vecstore.expr import ops
from vecstore.expr import plan as p
from vecstore.expr.jsoncol import JsonCache, JsonDoc
from vecstore.expr.schema import DataType
from vecstore.expr.sorted_index import SortedColumn
from vecstore.expr.vectors import TV, as_array, element, from_arrow, land, lor, validity


def evaluate_table(
    pred: p.Pred, data: pa.Table | pa.RecordBatch, cache: JsonCache | None = None,
    index: Callable[[str], SortedColumn | None] | None = None,
) -> np.ndarray:
    if not isinstance(data, (pa.Table, pa.RecordBatch)):
        raise InvalidArgument(
            f"data must be a pyarrow Table or RecordBatch, got {type(data).__name__}"
        )
    ev = _Evaluation(data, cache, index)
    value, _ = ev.pred(pred)
    return value


class _Evaluation:
    def __init__(self, data: pa.Table | pa.RecordBatch, cache: JsonCache | None,
                 index: Callable[[str], SortedColumn | None] | None = None) -> None:
        self.data = data
        self.n = data.num_rows
        self.cache = cache
        self.index = index
        self.tvs: dict[tuple, TV] = {}
        self.docs: dict[str, JsonDoc] = {}

    # -- columns -----------------------------------------------------------------------------
    def array(self, name: str) -> pa.Array:
        if name not in self.data.schema.names:
            raise InvalidArgument(f"the data has no column {name!r}, which the filter reads")
        col = self.data.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        return col

    def doc(self, name: str) -> JsonDoc:
        doc = self.docs.get(name)
        if doc is None:
            if self.cache is not None:
                if name not in self.data.schema.names:
                    self.array(name)  # raises the missing-column error
                # The cache keys on the chunks as they are, so a chunked column still hits.
                doc = self.cache.get(self.data.column(name), name)
            else:
                doc = JsonDoc(self.array(name), name)
            self.docs[name] = doc
        return doc

    def column(self, col: p.Column) -> TV:
        key = (col.name, col.path)
        tv = self.tvs.get(key)
        if tv is not None:
            return tv
        if col.kind == "json":
            tv = self.doc(col.name).tv(col.path)
        elif col.kind == "element":
            whole = p.Column(col.name, col.dtype, col.element_type, col.nullable, (), col.name)
            tv = element(self.column(whole), col.path[0])
        else:
            arr = self.array(col.name)
            _check_type(col, arr)
            tv = from_arrow(arr)
            if col.dtype is DataType.FLOAT:
                _as_float32(tv)
            elif col.kind == "array" and col.element_type is DataType.FLOAT:
                lst = tv.lst
                if lst is not None:
                    build = lst._build
                    lst._build = lambda: _as_float32(build())
        self.tvs[key] = tv
        return tv

    # -- values and predicates -----------------------------------------------------------------
    def value(self, node: p.Value) -> TV:
        if isinstance(node, p.Column):
            return self.column(node)
        if isinstance(node, p.Arith):
            right = self.value(node.right) if node.right is not None else None
            return ops.arith(node.op, self.value(node.left), right)
        if isinstance(node, p.ArrayLength):
            return ops.array_length(self.column(node.column))
        if isinstance(node, p.Const):  # an arithmetic operand (comparisons take Consts whole)
            return _const_tv(node.value, self.n)
        raise TypeError(f"not a value node: {node!r}")

    def pred(self, node: p.Pred) -> tuple[np.ndarray, Any]:
        n = self.n
        if isinstance(node, p.BoolConst):
            return np.full(n, node.value, dtype=bool), True
        if isinstance(node, (p.And, p.Or)):
            value: np.ndarray | None = None
            valid: Any = False
            for item in node.items:
                v, ok = self.pred(item)
                if value is None:
                    value = v.copy()
                elif isinstance(node, p.And):
                    value &= v
                else:
                    value |= v
                valid = lor(valid, ok)
            return value, valid  # type: ignore[return-value]
        if isinstance(node, p.Not):
            v, ok = self.pred(node.item)
            return as_array(land(~v, ok), n), ok
        if self.index is not None:
            hit = _lookup(self, node)
            if hit is not None:
                return hit, True
        if isinstance(node, p.Cmp):
            left = self.value(node.left)
            if isinstance(node.right, p.Const):
                return ops.compare_const(left, node.op, node.right.value), left.valid
            right = self.value(node.right)
            return ops.compare_tv(left, node.op, right), land(left.valid, right.valid)
        if isinstance(node, p.IsNull):
            valid = validity(self.array(node.column.name))
            is_null = ~as_array(valid, n)
            return (~is_null if node.negated else is_null), True
        tv = self.column(node.column)  # type: ignore[union-attr]
        if isinstance(node, p.Exists):
            return as_array(land(~tv.empty, tv.valid), n), True
        if isinstance(node, p.InList):
            return ops.in_list(tv, node.values), tv.valid
        if isinstance(node, p.Like):
            return ops.like(tv, node.pattern), tv.valid
        if isinstance(node, p.Contains):
            return ops.contains(tv, node.mode, node.values), tv.valid
        raise TypeError(f"not a predicate node: {node!r}")


def _indexed_column(node: p.Pred) -> p.Column | None:
    col = node.left if isinstance(node, p.Cmp) else getattr(node, "column", None)
    if isinstance(node, p.Cmp) and not isinstance(node.right, p.Const):
        return None
    if not isinstance(col, p.Column) or col.kind != "scalar" or col.nullable:
        return None
    return col


def _lookup(ev: _Evaluation, node: p.Pred) -> np.ndarray | None:
    """The scalar index's answer to a comparison with a constant or an ``in`` list on a
    non-nullable scalar column (always valid there), or None to evaluate by scanning."""
    if not isinstance(node, (p.Cmp, p.InList)):
        return None
    col = _indexed_column(node)
    if col is None:
        return None
    sorted_col = ev.index(col.name)  # type: ignore[misc]
    if sorted_col is None or sorted_col.n != ev.n:
        return None
    if isinstance(node, p.Cmp):
        return sorted_col.compare(node.op, node.right.value)  # type: ignore[union-attr]
    return sorted_col.isin(node.values)


def _const_tv(v: Any, n: int) -> TV:
    tv = TV(n)
    tv.num = True
    if isinstance(v, int):
        tv.is_int = True
        tv.ival = np.broadcast_to(np.int64(v), (n,))
    else:
        tv.fval = np.broadcast_to(np.float64(v), (n,))
    return tv


def _as_float32(tv: TV) -> TV:
    """FLOAT values are float32 whatever Arrow type carried them; constants compare in float32."""
    if tv.num is not False:
        with np.errstate(over="ignore"):
            tv.fval = tv.fval.astype(np.float32).astype(np.float64)
    tv.f32 = True
    return tv


_ARROW_OK = {
    DataType.BOOL: pa.types.is_boolean,
    DataType.INT8: pa.types.is_integer,
    DataType.INT16: pa.types.is_integer,
    DataType.INT32: pa.types.is_integer,
    DataType.INT64: pa.types.is_integer,
    DataType.FLOAT: pa.types.is_floating,
    DataType.DOUBLE: pa.types.is_floating,
    DataType.VARCHAR: lambda t: (
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    ),
}


def _check_type(col: p.Column, arr: pa.Array) -> None:
    t = arr.type
    if col.dtype is DataType.ARRAY:
        ok = (pa.types.is_list(t) or pa.types.is_large_list(t)) and _ARROW_OK[col.element_type](
            t.value_type
        )  # type: ignore[index]
        want = f"a list of {col.element_type.value}"  # type: ignore[union-attr]
    else:
        ok = _ARROW_OK[col.dtype](t)
        want = col.dtype.value
    if not ok:
        raise InvalidArgument(f"column {col.name!r} has Arrow type {t}, but the schema says {want}")
