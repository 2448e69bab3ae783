"""Slow reference evaluator: the plan's row semantics written out row by row in plain Python.

``evaluate_rows(pred, rows)`` -> numpy bool array, one entry per row. Each row is a mapping from
column name to a Python value: ``None`` for NULL, ``bool``/``int``/``float``/``str`` for scalar
fields, a ``list`` for ARRAY fields, and for JSON fields (the dynamic field ``$meta`` included)
the *decoded* JSON value (``dict``/``list``/scalar). It shares nothing with the vectorised
evaluator but the plan, and exists for tests: it is the executable statement of
:mod:`vecstore.expr.plan`'s semantics, which the vectorised evaluator must reproduce exactly.
Cost: microseconds per row and node; never use it on real data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vecstore.expr import plan as p
from vecstore.expr.constants import c_pow, f32, int_div, int_mod, wrap64
from vecstore.expr.schema import DataType

NULL = ("null", None)  # the column is NULL: comparisons false and not valid
MISS_JSON = ("missing-json", None)  # no value at a JSON path: only != is true
MISS_ELEM = ("missing-elem", None)  # ARRAY index out of range: every operator false
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)\Z")
_I64 = (-(1 << 63), (1 << 63) - 1)


def evaluate_rows(pred: p.Pred, rows: Sequence[Mapping]) -> np.ndarray:
    return np.array([_pred(pred, row)[0] for row in rows], dtype=bool)


def json_get(obj: Any, path: tuple) -> Any:
    """The value at ``path`` (keys as strings), or MISS_JSON."""
    cur = obj
    for k in path:
        if isinstance(cur, dict):
            if k not in cur:
                return MISS_JSON
            cur = cur[k]
        elif isinstance(cur, list) and _DECIMAL.match(k) and int(k) < len(cur):
            cur = cur[int(k)]
        else:
            return MISS_JSON
    return cur


def json_tag(v: Any) -> tuple:
    """A decoded JSON value as ``(type, value)``; JSON null is missing."""
    if v is None or v is MISS_JSON:
        return MISS_JSON
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        # simdjson's get_int64 fails beyond INT64 and Milvus falls back to get_double.
        return ("int", v) if _I64[0] <= v <= _I64[1] else ("float", _to_float(v))
    if isinstance(v, float):
        return ("float", v)
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, list):
        return ("list", v)
    return ("obj", v)


def _to_float(v: int) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.copysign(math.inf, v)


def is_empty(v: Any) -> bool:
    """segcore's ``isObjectEmpty``: null, or an object/array whose members are all empty."""
    stack = [v]
    while stack:
        x = stack.pop()
        if x is None:
            continue
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
        else:
            return False
    return True


def _scalar_tag(dtype: DataType, v: Any) -> tuple:
    if dtype is DataType.BOOL:
        return ("bool", bool(v))
    if dtype.is_integer:
        return ("int", int(v))
    if dtype is DataType.FLOAT:
        return ("float32", f32(float(v)))
    if dtype is DataType.DOUBLE:
        return ("float", float(v))
    return ("str", v)


def _column(col: p.Column, row: Mapping) -> tuple:
    v = row.get(col.name)
    if v is None:
        return NULL
    kind = col.kind
    if kind == "json":
        return json_tag(json_get(v, col.path))
    if kind == "element":
        i = col.path[0]
        if i >= len(v):
            return MISS_ELEM
        return _scalar_tag(col.element_type, v[i])  # type: ignore[arg-type]
    if kind == "array":
        return ("array", [_scalar_tag(col.element_type, x) for x in v])  # type: ignore[arg-type]
    return _scalar_tag(col.dtype, v)


def _value(node: p.Value, row: Mapping) -> tuple:
    if isinstance(node, p.Column):
        return _column(node, row)
    if isinstance(node, p.Const):
        return json_tag(node.value) if not isinstance(node.value, list) else ("list", node.value)
    if isinstance(node, p.ArrayLength):
        v = _column(node.column, row)
        if v is NULL:
            return NULL
        if v[0] in ("list", "array"):
            return ("int", len(v[1]))
        return ("int", 0)  # segcore: not an array (or missing) counts as length 0
    return _arith(node, row)


def _arith(node: p.Arith, row: Mapping) -> tuple:
    a = _value(node.left, row)
    b = _value(node.right, row) if node.right is not None else a
    for v in (a, b):
        if v is NULL:
            return NULL
    for v in (a, b):
        if v is MISS_ELEM:
            return MISS_ELEM
    for v in (a, b):
        if v[0] not in ("int", "float", "float32"):
            return MISS_JSON
    x, y = a[1], b[1]
    if node.op == "neg":
        return ("int", wrap64(-x)) if a[0] == "int" else ("float", -float(x))
    if node.op == "**":
        return ("float", c_pow(float(x), float(y)))
    if a[0] == "int" and b[0] == "int":
        if node.op in ("/", "%") and y == 0:
            return NULL
        if node.op == "/":
            return ("int", int_div(x, y))
        if node.op == "%":
            return ("int", int_mod(x, y))
        r = x + y if node.op == "+" else x - y if node.op == "-" else x * y
        return ("int", wrap64(r))
    x, y = float(x), float(y)
    if node.op in ("/", "%") and y == 0.0:
        return NULL
    if node.op == "/":
        return ("float", x / y)
    if node.op == "%":
        return ("float", math.fmod(x, y))
    r = x + y if node.op == "+" else x - y if node.op == "-" else x * y
    return ("float", r)


_NUM = ("int", "float", "float32")


def _num_cmp(op: str, a: tuple, b: tuple, f32_const: bool) -> bool:
    x, y = a[1], b[1]
    if a[0] == "int" and b[0] == "int":
        pass
    elif f32_const:
        x, y = f32(float(x)), f32(float(y))
    else:
        x, y = float(x), float(y)
    return _apply(op, x, y)


def _apply(op: str, x: Any, y: Any) -> bool:
    if op == "==":
        return x == y
    if op == "!=":
        return x != y
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    return x >= y


def json_equal(a: tuple, b: tuple) -> bool:
    """Equality of two tagged values as segcore's JSON comparisons see it."""
    if a[0] in _NUM and b[0] in _NUM:
        return _num_cmp("==", a, b, False)
    if a[0] in ("list", "array") and b[0] in ("list", "array"):
        xs = [json_tag(x) if a[0] == "list" else x for x in a[1]]
        ys = [json_tag(y) if b[0] == "list" else y for y in b[1]]
        return len(xs) == len(ys) and all(
            x is not MISS_JSON and y is not MISS_JSON and json_equal(x, y) for x, y in zip(xs, ys)
        )
    return a[0] == b[0] and a[0] in ("str", "bool") and a[1] == b[1]


def _compare(op: str, left: p.Value, right: p.Value, row: Mapping) -> tuple:
    a, b = _value(left, row), _value(right, row)
    if a is NULL or b is NULL:
        return (False, False)
    if a is MISS_ELEM or b is MISS_ELEM:
        return (False, True)
    if a is MISS_JSON or b is MISS_JSON:
        return (op == "!=", True)
    f32_const = a[0] == "float32" and isinstance(right, p.Const)
    if a[0] in _NUM and b[0] in _NUM:
        return (_num_cmp(op, a, b, f32_const), True)
    if a[0] in ("list", "array") or b[0] in ("list", "array"):
        if op in ("==", "!="):
            if a[0] == "array" and b[0] == "list":
                eq = _array_equal(a[1], b[1])
            else:
                eq = json_equal(a, b)
            return (eq == (op == "=="), True)
        return (False, True)
    if a[0] == b[0] and a[0] in ("str", "bool"):
        return (_apply(op, a[1], b[1]), True)
    return (op == "!=", True)  # a JSON value of another type


def _array_equal(elems: list, lit: list) -> bool:
    """An ARRAY field (tagged elements) against a list constant already cast to its type."""
    if len(elems) != len(lit):
        return False
    for e, x in zip(elems, lit):
        if e[0] == "float32":
            if e[1] != f32(float(x)):
                return False
        elif e[1] != x or (e[0] == "bool") != isinstance(x, bool):
            return False
    return True


def _contains_elem(e: tuple, x: Any) -> bool:
    """segcore's JSONContains element match: an int only matches JSON ints (get<int64>)."""
    if e is MISS_JSON:
        return False
    if isinstance(x, bool):
        return e[0] == "bool" and e[1] == x
    if isinstance(x, int):
        return e[0] == "int" and e[1] == x
    if isinstance(x, float):
        return e[0] in _NUM and float(e[1]) == x
    if isinstance(x, str):
        return e[0] == "str" and e[1] == x
    return e[0] == "list" and json_equal(e, ("list", x))


def like_match(s: str, pattern: str) -> bool:
    """SQL LIKE over code points, simulated as an NFA: linear in len(s) * len(pattern)."""
    toks: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            toks.append(("lit", pattern[i + 1]))
            i += 2
            continue
        toks.append(("any", "") if c == "%" else ("one", "") if c == "_" else ("lit", c))
        i += 1
    m = len(toks)

    def closure(states: list[bool]) -> list[bool]:
        for k in range(m):  # '%' may match nothing: reaching it reaches the next token
            if states[k] and toks[k][0] == "any":
                states[k + 1] = True
        return states

    states = closure([k == 0 for k in range(m + 1)])
    for ch in s:
        nxt = [False] * (m + 1)
        for k in range(m):
            if not states[k]:
                continue
            kind, lit = toks[k]
            if kind == "any":
                nxt[k] = True
            elif kind == "one" or lit == ch:
                nxt[k + 1] = True
        states = closure(nxt)
        if not any(states):
            return False
    return states[m]


def _pred(node: p.Pred, row: Mapping) -> tuple[bool, bool]:
    if isinstance(node, p.BoolConst):
        return (node.value, True)
    if isinstance(node, p.And):
        res = [_pred(i, row) for i in node.items]
        return (all(v for v, _ in res), any(ok for _, ok in res))
    if isinstance(node, p.Or):
        res = [_pred(i, row) for i in node.items]
        return (any(v for v, _ in res), any(ok for _, ok in res))
    if isinstance(node, p.Not):
        v, ok = _pred(node.item, row)
        return (not v and ok, ok)
    if isinstance(node, p.Cmp):
        return _compare(node.op, node.left, node.right, row)
    if isinstance(node, p.IsNull):
        return ((row.get(node.column.name) is None) != node.negated, True)
    if isinstance(node, p.Exists):
        doc = row.get(node.column.name)
        if doc is None:
            return (False, True)
        v = json_get(doc, node.column.path)
        return (v is not MISS_JSON and not is_empty(v), True)
    v = _column(node.column, row)  # type: ignore[union-attr]
    if v is NULL:
        return (False, False)
    if isinstance(node, p.InList):
        if v in (MISS_JSON, MISS_ELEM):
            return (False, True)
        f32_const = v[0] == "float32"
        hit = False
        for x in node.values:
            t = ("list", x) if isinstance(x, list) else json_tag(x)
            if v[0] in _NUM and t[0] in _NUM:
                hit = _num_cmp("==", v, t, f32_const)
            else:
                hit = json_equal(v, t)
            if hit:
                break
        return (hit, True)
    if isinstance(node, p.Like):
        return (v[0] == "str" and like_match(v[1], node.pattern), True)
    if isinstance(node, p.Contains):
        if v[0] == "array":
            elems = v[1]
            f32e = node.column.element_type is DataType.FLOAT

            def has(x: Any) -> bool:
                xv = f32(float(x)) if f32e else x
                return any(e[1] == xv and (e[0] == "bool") == isinstance(x, bool) for e in elems)
        elif v[0] == "list":
            tagged = [json_tag(e) for e in v[1]]

            def has(x: Any) -> bool:
                return any(_contains_elem(e, x) for e in tagged)
        else:
            return (False, True)
        if node.mode == "all":
            return (all(has(x) for x in node.values), True)
        return (any(has(x) for x in node.values), True)
    raise TypeError(f"not a predicate: {node!r}")
