"""The bound, type-checked filter plan that both evaluators execute, and its row semantics.

The checker (:mod:`vecstore.expr.checker`) turns a syntax tree into these nodes; everything the
evaluators need is resolved: which column, which JSON path, the constants already cast to the
operand's type, templates substituted, constant sub-expressions folded.

Value nodes: :class:`Column`, :class:`Const`, :class:`Arith`, :class:`ArrayLength`.
Predicate nodes: :class:`Cmp`, :class:`InList`, :class:`Like`, :class:`IsNull`, :class:`Exists`,
:class:`Contains`, :class:`And`, :class:`Or`, :class:`Not`, :class:`BoolConst`.

Row semantics (Milvus segcore's, which both evaluators implement): a predicate yields, per row,
a pair ``(value, valid)`` with ``value`` implying ``valid``.

- ``valid`` is false where a column the predicate reads is NULL (a NULL field, or a NULL JSON
  column); the value there is false. A missing JSON key or a too-short array is *not* NULL: the
  column is valid and the comparison is simply false.
- ``Not``: ``value = not value and valid`` -- so ``not (age > 1)`` is false on a NULL ``age``,
  like SQL, but true on a missing JSON key. ``Exists``/``IsNull``/``BoolConst`` are always valid,
  so ``not exists k`` is true on a NULL JSON column.
- ``And``/``Or``: values combine as booleans; ``valid`` is the OR of the operands' (segcore's
  ``LogicalBinaryExpr``, not SQL's three-valued logic): with ``x`` NULL, ``not (x > 1 and y > 1)``
  is true whatever ``y`` is, where SQL gives NULL when ``y > 1`` holds.
- JSON comparisons by value type: ints compare exactly, ints and floats numerically, strings
  bytewise, bools as 0 < 1; a value of another type (or missing) makes every operator false except
  ``!=``, which is true (``UnaryRangeJSONCompareNotEqual``). Lists compare only with ``==``/``!=``.
- ARRAY element ``tags[i]`` beyond the array's length is false for every operator, ``!=``
  included.
- FLOAT (float32) fields compare with constants rounded to float32, as segcore casts the value
  to the column type; arithmetic runs in float64 (segcore's HighPrecisionType).
- Integer arithmetic wraps at 64 bits; ``/`` truncates toward zero and ``%`` takes the dividend's
  sign (C++); a zero divisor read from a column makes that row NULL. ``**`` is always float.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from vecstore.expr.schema import DataType


@dataclass(frozen=True)
class Column:
    """A field's value, or a JSON path into a JSON field, or one element of an ARRAY field.

    ``path``: JSON keys as strings (``meta[0]`` and ``meta["0"]`` are the same key, as in Milvus,
    and index arrays when they are decimal), or ``(index,)`` for an ARRAY element.
    """

    name: str  # column name in the data (the field name, or "$meta")
    dtype: DataType
    element_type: DataType | None
    nullable: bool
    path: tuple = ()
    label: str = ""

    @property
    def kind(self) -> str:
        if self.dtype is DataType.JSON:
            return "json"
        if self.dtype is DataType.ARRAY:
            return "element" if self.path else "array"
        return "scalar"

    @property
    def vtype(self) -> str:
        """Static value type: bool, int, float32, float, string, json or array."""
        if self.dtype is DataType.JSON:
            return "json"
        t = self.dtype
        if t is DataType.ARRAY:
            if not self.path:
                return "array"
            t = self.element_type  # type: ignore[assignment]
        return _VTYPE[t]


_VTYPE = {
    DataType.BOOL: "bool",
    DataType.INT8: "int",
    DataType.INT16: "int",
    DataType.INT32: "int",
    DataType.INT64: "int",
    DataType.FLOAT: "float32",
    DataType.DOUBLE: "float",
    DataType.VARCHAR: "string",
}


@dataclass(frozen=True)
class Const:
    """A constant: bool, int (INT64 range), float, str, or a list of constants."""

    value: Any

    @property
    def vtype(self) -> str:
        return const_vtype(self.value)


def const_vtype(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "list"


@dataclass(frozen=True)
class Arith:
    """``op``: ``+ - * / % **`` or ``neg`` (``right`` is None); ``vtype``: int, float or json."""

    op: str
    left: Value
    right: Value | None
    vtype: str


@dataclass(frozen=True)
class ArrayLength:
    """Length of an ARRAY field or of the JSON array at a path (0 when it is not an array)."""

    column: Column
    vtype: str = "int"


Value = Union[Column, Const, Arith, ArrayLength]


@dataclass(frozen=True)
class Cmp:
    """``left op right``; ``left`` is never a Const (the checker swaps and flips)."""

    op: str
    left: Value
    right: Value


@dataclass(frozen=True)
class InList:
    column: Column
    values: tuple


@dataclass(frozen=True)
class Like:
    """SQL LIKE: ``%`` any run, ``_`` one character, ``\\`` escapes the next character."""

    column: Column
    pattern: str


@dataclass(frozen=True)
class IsNull:
    """NULL test of a whole field (JSON paths become :class:`Exists`)."""

    column: Column
    negated: bool


@dataclass(frozen=True)
class Exists:
    """The JSON path holds a value that is not empty: not null, and not an object or array
    whose members are all empty (``{}``, ``[]``, ``[null]``), as segcore's ``Json::exist``."""

    column: Column


@dataclass(frozen=True)
class Contains:
    """``mode``: ``one`` (json/array_contains), ``all`` or ``any``; ``values`` are constants."""

    column: Column
    mode: str
    values: tuple


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: Pred


@dataclass(frozen=True)
class BoolConst:
    value: bool


Pred = Union[Cmp, InList, Like, IsNull, Exists, Contains, And, Or, Not, BoolConst]


def columns_of(node: Any) -> set[str]:
    """Names of the data columns a plan reads."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Column):
            out.add(n.name)
        elif isinstance(n, (Cmp, Arith)):
            stack.extend(x for x in (n.left, n.right) if x is not None)
        elif isinstance(n, (And, Or)):
            stack.extend(n.items)
        elif isinstance(n, Not):
            stack.append(n.item)
        elif isinstance(n, (InList, Like, IsNull, Exists, Contains, ArrayLength)):
            stack.append(n.column)
    return out
