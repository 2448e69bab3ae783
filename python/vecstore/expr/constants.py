"""Constants in filters: Go/C++ integer arithmetic for folding, and ``filter_params`` values.

Milvus folds constant sub-expressions in its Go parser, so folding follows Go: INT64 arithmetic
wraps, ``/`` truncates toward zero, ``%`` takes the dividend's sign, ``**`` is always a float
(C's ``pow``: inf on overflow, nan off its domain). The vectorised and reference evaluators use
the same helpers for the columns, so a constant and a column value compute identically.

``template_value`` turns one ``filter_params`` entry into a typed constant: bool, int (INT64
range), float, str (at most ``Limits.max_string`` characters), or a list of those (at most
``Limits.max_list`` values); numpy scalars and arrays are accepted. Anything else (``None``, a
dict, an object) is an :class:`ExprError` naming the parameter.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from vecstore.expr.errors import ExprError
from vecstore.expr.lexer import INT64_MAX
from vecstore.expr.plan import const_vtype
from vecstore.expr.schema import Limits


def wrap64(v: int) -> int:
    """Two's-complement wrap to INT64, as Go and C++ integer arithmetic do."""
    return ((v + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


def int_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return wrap64(q if (a < 0) == (b < 0) else -q)


def int_mod(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def c_pow(x: float, y: float) -> float:
    """C's ``pow`` (inf on overflow, nan off its domain), as numpy computes it vectorised."""
    with np.errstate(all="ignore"):
        return float(np.power(np.float64(x), np.float64(y)))


def f32(x: float) -> float:
    """``x`` rounded to float32 (C++ ``static_cast<float>``: inf beyond its range), as a float."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def fold(op: str, a: Any, b: Any) -> Any:
    """``a op b`` for two numeric constants (a zero divisor was refused before)."""
    if op == "**":
        return c_pow(a, b)
    both_int = isinstance(a, int) and isinstance(b, int)
    if op == "%":
        return int_mod(a, b)
    if op == "/":
        return int_div(a, b) if both_int else float(a) / float(b)
    r = a + b if op == "+" else a - b if op == "-" else a * b
    return wrap64(r) if both_int else float(r)


def comparable(a: Any, b: Any) -> bool:
    """Two constants Milvus can order: two numbers or two strings."""
    ta, tb = const_vtype(a), const_vtype(b)
    num = ("int", "float")
    return (ta in num and tb in num) or (ta == tb and ta == "string")


def fold_compare(op: str, a: Any, b: Any, pos: int) -> bool:
    if comparable(a, b) or const_vtype(a) == const_vtype(b) == "bool":
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    raise ExprError(
        f"comparison operations cannot be applied to two incompatible operands: "
        f"{show_const(a)} {op} {show_const(b)}",
        pos,
    )


def show_const(v: Any) -> str:
    s = repr(v) if not isinstance(v, bool) else ("true" if v else "false")
    return s if len(s) <= 40 else s[:37] + "..."


def template_value(v: Any, name: str, pos: int, limits: Limits, depth: int = 0) -> Any:
    where = f"filter_params[{name!r}]"
    if hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0:  # numpy scalars
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        if not -(1 << 63) <= v <= INT64_MAX:
            raise ExprError(f"{where}: integer {v} is out of range for INT64", pos)
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        if len(v) > limits.max_string:
            raise ExprError(
                f"{where}: string of {len(v)} characters exceeds the limit of {limits.max_string}",
                pos,
            )
        return str(v)
    if isinstance(v, (list, tuple)) or (hasattr(v, "tolist") and hasattr(v, "ndim")):
        items = v.tolist() if hasattr(v, "tolist") else v
        if len(items) > limits.max_list:
            raise ExprError(
                f"{where}: list of {len(items)} values exceeds the limit of {limits.max_list}", pos
            )
        if depth >= limits.max_depth:
            raise ExprError(f"{where}: lists nest too deeply", pos)
        return [template_value(x, name, pos, limits, depth + 1) for x in items]
    raise ExprError(
        f"{where}: unsupported value type {type(v).__name__}; use bool, int, float, str or a "
        "list of them",
        pos,
    )
