"""Vectorised operations over typed vectors (:mod:`vecstore.expr.vectors`).

Every function returns a numpy bool array of length ``tv.n`` (predicates) or a new TV (values),
already combining the per-row rules of :mod:`vecstore.expr.plan`: a value of another type or a
missing JSON value makes ``!=`` true and everything else false; an out-of-range ARRAY element
(``emiss``) makes everything false; NULL rows (``valid``) are false. Numbers go through numpy,
strings through ``pyarrow.compute`` (C++ kernels, RE2 for LIKE), so no per-row Python runs here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.expr.constants import f32
from vecstore.expr.vectors import TV, as_array, gather, land, lnot, lor

_NP = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_PC = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_RE_SPECIAL = set("\\.^$|?*+()[]{}")


def finish(tv: TV, r: Any, op: str, match: Any, valid: Any = None, emiss: Any = None) -> np.ndarray:
    """Applies the ``!=``-on-mismatch, out-of-range and NULL rules to a raw result ``r``."""
    if op == "!=":
        r = lor(r, lnot(match))
    r = land(r, lnot(tv.emiss if emiss is None else emiss))
    r = land(r, tv.valid if valid is None else valid)
    return as_array(r, tv.n)


def compare_const(tv: TV, op: str, c: Any) -> np.ndarray:
    if isinstance(c, bool):
        match = tv.is_bool
        r = land(_NP[op](tv.bval, c), match) if match is not False else False
    elif isinstance(c, (int, float)):
        match = tv.num
        r = _num_const(tv, op, c) if match is not False else False
    elif isinstance(c, str):
        match = tv.is_str
        r = _str_cmp(tv.sval, op, c) if match is not False else False
    else:
        match = tv.is_list
        r = False
        if match is not False and op in ("==", "!="):
            eq = list_equal(tv, c)
            r = eq if op == "==" else land(match, ~eq)
    return finish(tv, r, op, match)


def _num_const(tv: TV, op: str, c: int | float) -> Any:
    f = _NP[op]
    if isinstance(c, int):
        r: Any = False
        if tv.is_int is not False:
            r = land(f(tv.ival, c), tv.is_int)
        floats = land(tv.num, lnot(tv.is_int))
        if floats is not False:
            r = lor(r, land(f(tv.fval, float(c)), floats))
        return r
    if tv.f32:
        c = f32(c)  # segcore casts the constant to the column's float type
    with np.errstate(invalid="ignore"):
        return land(f(tv.fval, c), tv.num)


def _str_cmp(sval: pa.Array, op: str, c: Any) -> np.ndarray:
    if isinstance(c, str):
        other = pa.scalar(c, type=sval.type)
    elif c.type != sval.type:
        sval, other = sval.cast(pa.large_string()), c.cast(pa.large_string())
    else:
        other = c
    res = _PC[op](sval, other)
    return pc.fill_null(res, False).to_numpy(zero_copy_only=False)


def compare_tv(a: TV, op: str, b: TV) -> np.ndarray:
    """Two non-constant operands (two fields, or arithmetic on both sides)."""
    f = _NP[op]
    r: Any = False
    num = land(a.num, b.num)
    if num is not False:
        ints = land(a.is_int, b.is_int)
        if ints is not False:
            r = land(f(a.ival.astype(np.int64), b.ival.astype(np.int64)), land(num, ints))
        floats = land(num, lnot(ints))
        if floats is not False:
            with np.errstate(invalid="ignore"):
                r = lor(r, land(f(a.fval, b.fval), floats))
    strs = land(a.is_str, b.is_str)
    if strs is not False:
        r = lor(r, land(_str_cmp(a.sval, op, b.sval), strs))
    bools = land(a.is_bool, b.is_bool)
    if bools is not False:
        r = lor(r, land(f(a.bval, b.bval), bools))
    match = lor(lor(num, strs), bools)
    return finish(a, r, op, match, valid=land(a.valid, b.valid), emiss=lor(a.emiss, b.emiss))


def list_equal(tv: TV, lit: list) -> np.ndarray:
    """Rows holding an array equal to ``lit`` (element by element, JSON equality)."""
    lst = tv.lst
    rows = as_array(tv.is_list, tv.n) & (lst.lengths == len(lit))
    for k, x in enumerate(lit):
        if not rows.any():
            break
        ek = gather(lst.elems, np.where(rows, lst.starts + k, -1))
        rows &= compare_const(ek, "==", x)
    return rows


def in_list(tv: TV, values: tuple) -> np.ndarray:
    """``tv in values``: numeric values match numerically, others by type and value."""
    r = _member(tv, values, strict_int=False)
    return finish(tv, r, "==", True)


def _member(tv: TV, values: tuple, *, strict_int: bool) -> Any:
    ints = [v for v in values if type(v) is int]
    floats = [v for v in values if type(v) is float and not math.isnan(v)]
    strs = [v for v in values if type(v) is str]
    bools = {v for v in values if type(v) is bool}
    lists = [v for v in values if type(v) is list]
    r: Any = False
    if ints and tv.is_int is not False:
        r = lor(r, land(_isin(tv.ival, np.array(ints, dtype=np.int64)), tv.is_int))
    if not strict_int and ints:
        floats_rows = land(tv.num, lnot(tv.is_int))
        if floats_rows is not False:
            r = lor(r, land(_isin(tv.fval, np.array(ints, dtype=np.float64)), floats_rows))
    if floats and tv.num is not False:
        vals = np.array([f32(v) for v in floats] if tv.f32 else floats, dtype=np.float64)
        r = lor(r, land(_isin(tv.fval, vals), tv.num))
    if strs and tv.is_str is not False:
        hit = pc.is_in(tv.sval, value_set=pa.array(strs, type=tv.sval.type))
        r = lor(r, pc.fill_null(hit, False).to_numpy(zero_copy_only=False))
    if bools and tv.is_bool is not False:
        hit = np.zeros(tv.n, dtype=bool)
        for b in bools:
            hit |= tv.bval == b
        r = lor(r, land(hit, tv.is_bool))
    for lit in lists:
        if tv.is_list is not False:
            r = lor(r, list_equal(tv, lit))
    return r


def _isin(arr: np.ndarray, values: np.ndarray) -> np.ndarray:
    if len(values) == 1:
        return arr == values[0]
    if arr.dtype != values.dtype:
        arr = arr.astype(values.dtype)
    if arr.dtype == np.int64 and len(values) <= 16_384 and len(arr) >= 4096:
        return _isin_prefiltered(arr, values)
    # Arrow's hash-based is_in: O(rows), where np.isin sorts.
    return pc.is_in(pa.array(arr), value_set=pa.array(values)).to_numpy(zero_copy_only=False)


def _isin_prefiltered(arr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Integer membership through a small bit table of hashed values: one multiply, shift and
    cache-resident gather per row leaves few candidates for the exact test. Measured on 1M int64
    rows against 100 values: 7.5 ms, where Arrow's ``is_in`` takes 18.5 ms and np.isin 18 ms."""
    bits = max(12, min(20, (len(values) * 64).bit_length()))
    shift = np.uint64(64 - bits)
    mult = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads structured keys
    with np.errstate(over="ignore"):
        table = np.zeros(1 << bits, dtype=bool)
        table[(values.view(np.uint64) * mult) >> shift] = True
        cand = np.flatnonzero(table[(arr.view(np.uint64) * mult) >> shift])
    if len(cand) > len(arr) // 4:  # adversarial keys: the prefilter does not pay
        return pc.is_in(pa.array(arr), value_set=pa.array(values)).to_numpy(zero_copy_only=False)
    out = np.zeros(len(arr), dtype=bool)
    out[cand] = np.isin(arr[cand], values)
    return out


def like(tv: TV, pattern: str) -> np.ndarray:
    match = tv.is_str
    if match is False:
        return finish(tv, False, "like", match)
    kind, operand = like_plan(pattern)
    s = tv.sval
    if kind == "all":
        res = pc.is_valid(s)
    elif kind == "equal":
        res = pc.equal(s, pa.scalar(operand, type=s.type))
    elif kind == "prefix":
        res = pc.starts_with(s, operand)
    elif kind == "suffix":
        res = pc.ends_with(s, operand)
    elif kind == "infix":
        res = pc.match_substring(s, operand)
    else:
        res = pc.match_substring_regex(s, operand)
    r = pc.fill_null(res, False).to_numpy(zero_copy_only=False)
    return finish(tv, land(r, match), "like", match)


def like_plan(pattern: str) -> tuple[str, str]:
    """How to run a LIKE pattern: all / equal / prefix / suffix / infix with a literal operand,
    or ``regex`` with an anchored RE2 pattern (``%`` -> ``.*``, ``_`` -> ``.``, dot-all)."""
    toks: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            toks.append(("lit", pattern[i + 1]))
            i += 2
        else:
            toks.append(("%", "") if c == "%" else ("_", "") if c == "_" else ("lit", c))
            i += 1
    kinds = [k for k, _ in toks]
    if "_" not in kinds:
        lead = 0
        while lead < len(kinds) and kinds[lead] == "%":
            lead += 1
        trail = len(kinds)
        while trail > lead and kinds[trail - 1] == "%":
            trail -= 1
        core = toks[lead:trail]
        if all(k == "lit" for k, _ in core):
            text = "".join(c for _, c in core)
            if lead == len(kinds) and lead > 0:
                return ("all", "")
            if lead == 0 and trail == len(kinds):
                return ("equal", text)
            if lead == 0:
                return ("prefix", text)
            if trail == len(kinds):
                return ("suffix", text)
            return ("infix", text)
    out = ["(?s)^"]
    for k, c in toks:
        if k == "%":
            out.append(".*")
        elif k == "_":
            out.append(".")
        else:
            out.append("\\" + c if c in _RE_SPECIAL else c)
    out.append("$")
    return ("regex", "".join(out))


def contains(tv: TV, mode: str, values: tuple) -> np.ndarray:
    """json_contains / array_contains (``one``), ``_all`` and ``_any``."""
    n = tv.n
    match = tv.is_list
    if match is False:
        return finish(tv, False, "contains", match)
    lst = tv.lst
    el = lst.elems
    parents = lst.parents(n)

    def rows(elem_mask: Any) -> np.ndarray:
        m = as_array(elem_mask, el.n)
        return np.bincount(parents[m], minlength=n) > 0

    if mode == "all":
        r = as_array(match, n).copy()
        for x in values:
            r &= rows(_member(el, (x,), strict_int=True))
    else:
        # segcore's element match: an int only matches JSON ints (get<int64>), a float any number.
        r = rows(_member(el, values, strict_int=True)) if values else np.zeros(n, dtype=bool)
    return finish(tv, land(r, match), "contains", match)


def array_length(tv: TV) -> TV:
    out = TV(tv.n, tv.valid)
    out.num = out.is_int = True
    out.ival = (
        np.where(as_array(tv.is_list, tv.n), tv.lst.lengths, 0)
        if tv.lst is not None
        else np.zeros(tv.n, dtype=np.int64)
    )
    return out


def arith(op: str, a: TV, b: TV | None) -> TV:
    """Numbers combined row by row: int64 (wrapping, C division) where both are ints, else
    float64; a zero divisor makes the row NULL; non-numbers leave no value."""
    if b is None:
        b = a
    n = a.n
    out = TV(n, land(a.valid, b.valid))
    out.emiss = lor(a.emiss, b.emiss)
    num = land(land(a.num, b.num), lnot(out.emiss))
    if num is False:
        return out
    with np.errstate(all="ignore"):
        if op == "**":
            out.num = num
            out.fval = np.power(a.fval, b.fval)
            return out
        ints = land(num, land(a.is_int, b.is_int)) if op != "neg" else land(num, a.is_int)
        floats = land(num, lnot(ints))
        zero: Any = False
        ival = fval = None
        if ints is not False:
            x = a.ival.astype(np.int64)
            y = b.ival.astype(np.int64)
            ival, zero_i = _int_op(op, x, y)
            zero = land(zero_i, ints) if zero_i is not False else False
        if floats is not False:
            fval, zero_f = _float_op(op, a.fval, b.fval)
            if zero_f is not False:
                zero = lor(zero, land(zero_f, floats))
    out.num = land(num, lnot(zero))
    out.valid = land(out.valid, lnot(zero))
    out.is_int = land(ints, lnot(zero)) if ints is not False else False
    if ival is not None:
        out.ival = ival
    if fval is None:
        out.fval = ival.astype(np.float64)
    elif ival is not None:
        out.fval = np.where(as_array(ints, n), ival.astype(np.float64), fval)
    else:
        out.fval = fval
    return out


def _int_op(op: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Any]:
    if op == "neg":
        return np.subtract(0, x), False
    if op == "+":
        return x + y, False
    if op == "-":
        return x - y, False
    if op == "*":
        return x * y, False
    zero = y == 0
    yy = np.where(zero, 1, y)
    q = np.floor_divide(x, yy)
    q = np.where(yy == -1, np.subtract(0, x), q)  # INT64_MIN / -1 wraps, as in C++ on x86
    rem = x - q * yy
    fix = (rem != 0) & ((x < 0) != (yy < 0))  # floor -> truncation toward zero
    q = q + fix
    if op == "/":
        return q, zero
    return x - q * yy, zero


def _float_op(op: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Any]:
    if op == "neg":
        return -x, False
    if op == "+":
        return x + y, False
    if op == "-":
        return x - y, False
    if op == "*":
        return x * y, False
    zero = y == 0.0
    if op == "/":
        return x / np.where(zero, 1.0, y), zero
    return np.fmod(x, np.where(zero, 1.0, y)), zero
