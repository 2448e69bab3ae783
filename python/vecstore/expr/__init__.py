"""Milvus boolean filter expressions: parse, type-check, evaluate to a row bitset.

Query nodes turn ``filter="..."`` (plus ``filter_params``) into a boolean numpy array over a
segment's columns::

    from vecstore.expr import Schema, Field, DataType, compile_filter

    schema = Schema([Field("id", DataType.INT64), Field("age", DataType.INT32, nullable=True),
                     Field("meta", DataType.JSON)], primary_key="id", enable_dynamic_field=True)
    f = compile_filter('age > {a} and meta["color"] in ["red", "blue"]', schema, {"a": 18})
    mask = f.evaluate(table)            # pyarrow Table/RecordBatch -> np.ndarray[bool]
    f.columns                           # {"age", "meta"}: load only these

Pipeline: :mod:`.lexer` -> :mod:`.parser` (syntax tree, :mod:`.ast`) -> :mod:`.checker` (schema,
templates, constant folding -> :mod:`.plan`) -> :mod:`.evaluator` (vectorised, numpy +
``pyarrow.compute``; JSON through :mod:`.jsoncol`) or :mod:`.reference` (row by row, for tests).
Errors in the text, types or parameters raise :class:`ExprError` (an ``InvalidArgument``, code
1100) naming the position and what was expected.

The language is Milvus 2.6's (``Plan.g4``): comparisons (``1 < x <= 5`` ranges), ``and or not``
/ ``&& || !``, ``in`` / ``not in``, ``like`` (``%``, ``_``, ``\\`` escapes), arithmetic ``+ - * /
% **``, ``is [not] null``, JSON paths ``meta["a"][0]``, ``exists``, ``json_contains[_all|_any]``,
ARRAY indexing and ``array_contains[_all|_any]``, ``array_length``, dynamic-field keys,
``{placeholder}`` templates. Keywords are all-lower or all-upper, as in Milvus.

Where this differs from Milvus, on purpose:

- ``not`` binds looser than comparisons (``not a > 1`` is ``not (a > 1)``); Milvus's grammar
  makes such input an error, so filters Milvus accepts keep their meaning.
- Arithmetic may nest and mix fields (``a * 2 + b > 10``, ``price ** 2 > 1000``); Milvus only
  runs ``field op constant`` (its docs show ``price ** 2 > 1000``, its parser refuses it). A zero
  divisor read from a column makes that row NULL.
- Small leniencies: whitespace inside ``meta ["a"]`` and ``is  not   null``, and ``IS null``
  (Milvus's lexer wants ``meta["a"]`` and ``is null``/``IS NULL`` exactly).
- Not supported, with a clear error: TEXT_MATCH / PHRASE_MATCH (need an analyzer index),
  RANDOM_SAMPLE, geometry ``ST_*``, ARRAY-of-STRUCT ``element_filter``/``MATCH_*``, TIMESTAMPTZ
  ``ISO``/``INTERVAL``, bitwise and shift operators (Milvus refuses those too), regex ``=~``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from vecstore.expr import ast
from vecstore.expr import plan as _plan
from vecstore.expr.checker import check
from vecstore.expr.errors import ExprError
from vecstore.expr.evaluator import evaluate_table
from vecstore.expr.jsoncol import JsonCache, JsonDoc
from vecstore.expr.parser import parse as _parse
from vecstore.expr.reference import evaluate_rows
from vecstore.expr.schema import DEFAULT_LIMITS, DYNAMIC_FIELD, DataType, Field, Limits, Schema
from vecstore.expr.sorted_index import SortedColumn

_CACHE_TEXT = 1 << 16


def parse(text: str, limits: Limits = DEFAULT_LIMITS) -> ast.Node | None:
    """The syntax tree of ``text`` (None for an empty filter). Trees are immutable, so texts up to
    64 KiB are memoised (Milvus caches parsed expressions the same way)."""
    if isinstance(text, str) and len(text) <= _CACHE_TEXT:
        return _parse_cached(text, limits)
    return _parse(text, limits)


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str, limits: Limits) -> ast.Node | None:
    return _parse(text, limits)


class Filter:
    """A compiled filter: the checked plan plus the columns it reads. Immutable and thread-safe."""

    __slots__ = ("expression", "plan", "columns")

    def __init__(self, expression: str, plan: _plan.Pred) -> None:
        self.expression = expression
        self.plan = plan
        self.columns = frozenset(_plan.columns_of(plan))

    def evaluate(
        self, data: pa.Table | pa.RecordBatch, *, cache: JsonCache | None = None,
        index: Callable[[str], SortedColumn | None] | None = None,
    ) -> np.ndarray:
        """Bool array with one entry per row of ``data``: True where the filter holds.
        ``index(column)`` may give a :class:`SortedColumn` of ``data``'s column (a scalar
        index) to answer comparisons with constants and ``in`` lists on it."""
        return evaluate_table(self.plan, data, cache, index)

    def evaluate_rows(self, rows: Sequence[Mapping]) -> np.ndarray:
        """The slow reference evaluator over row dicts (decoded JSON values); for tests."""
        return evaluate_rows(self.plan, rows)

    def __repr__(self) -> str:
        return f"Filter({self.expression!r})"


def compile_filter(
    expression: str,
    schema: Schema | Mapping,
    params: Mapping | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> Filter:
    """Parses and type-checks ``expression`` against ``schema`` with ``params`` substituted for
    its ``{placeholders}``. Raises :class:`ExprError`."""
    if not isinstance(schema, Schema):
        schema = Schema.from_dict(schema)
    return Filter(expression, check(parse(expression, limits), schema, params, limits))


def evaluate(
    expression: str,
    schema: Schema | Mapping,
    data: pa.Table | pa.RecordBatch,
    params: Mapping | None = None,
    *,
    cache: JsonCache | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> np.ndarray:
    """``compile_filter(expression, schema, params).evaluate(data)`` in one call."""
    return compile_filter(expression, schema, params, limits=limits).evaluate(data, cache=cache)


__all__ = [
    "DEFAULT_LIMITS",
    "SortedColumn",
    "DYNAMIC_FIELD",
    "DataType",
    "ExprError",
    "Field",
    "Filter",
    "JsonCache",
    "JsonDoc",
    "Limits",
    "Schema",
    "compile_filter",
    "evaluate",
    "parse",
]
