"""Seeded generators for the filter tests: random schemas, rows with NULLs, Arrow tables, and
random filter expressions (as text) over a schema.

Rows are dicts of Python values as the reference evaluator takes them (JSON fields decoded);
``to_table`` encodes them the way a segment holds them (JSON as text, FLOAT as float32, ARRAY as
Arrow lists), optionally in several chunks and with JSON as binary or pretty-printed text.
JSON floats are never integral and JSON ints stay small: the fast JSON path documents that it
cannot tell 1.0 from 1 in a key mixing ints and floats, and these tests hold it to exactness.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from vecstore.expr import DataType, Field, Schema

SCALARS = [
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
]
ARROW = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(),
}
STRINGS = [
    "",
    "a",
    "ab",
    "abc",
    "b",
    "ba",
    "A",
    "%",
    "a%b",
    "a_b",
    "x\\y",
    "é",
    "éa",
    "😀",
    "2024-01-01",
    "line\nbreak",
    "10",
    "Prod-1",
    "prod",
]
JSON_KEYS = ["a", "b", "c", "0", "k"]
INT_RANGE = {
    DataType.INT8: (-128, 127),
    DataType.INT16: (-300, 300),
    DataType.INT32: (-1000, 1000),
    DataType.INT64: (-(1 << 63), (1 << 63) - 1),
}


def random_schema(rng: np.random.Generator, dynamic: bool | None = None) -> Schema:
    fields = [Field("id", DataType.INT64)]
    for i in range(int(rng.integers(3, 7))):
        t = SCALARS[int(rng.integers(len(SCALARS)))]
        fields.append(Field(f"s{i}_{t.value.lower()}", t, nullable=bool(rng.random() < 0.5)))
    for i in range(int(rng.integers(1, 3))):
        t = SCALARS[int(rng.integers(len(SCALARS)))]
        fields.append(
            Field(
                f"arr{i}_{t.value.lower()}",
                DataType.ARRAY,
                element_type=t,
                nullable=bool(rng.random() < 0.5),
            )
        )
    fields.append(Field("meta", DataType.JSON, nullable=bool(rng.random() < 0.5)))
    if dynamic is None:
        dynamic = bool(rng.random() < 0.7)
    return Schema(tuple(fields), "id", dynamic)


def scalar_value(rng: np.random.Generator, t: DataType) -> object:
    if t is DataType.BOOL:
        return bool(rng.random() < 0.5)
    if t.is_integer:
        lo, hi = INT_RANGE[t]
        r = rng.random()
        if r < 0.05:
            return lo
        if r < 0.1:
            return hi
        return int(rng.integers(-6, 7))
    if t.is_floating:
        r = rng.random()
        if r < 0.03 and t is DataType.DOUBLE:
            return float("nan")
        pool = [0.0, 1.0, -1.0, 1.1, 2.5, -2.5, 0.1, 3.0, 1e10, -7.25, 1.100000023841858]
        return pool[int(rng.integers(len(pool)))]
    return STRINGS[int(rng.integers(len(STRINGS)))]


def json_value(rng: np.random.Generator, depth: int = 0, uniform: str | None = None) -> object:
    kinds = ["int", "float", "str", "bool", "null", "list", "obj"]
    kind = uniform or kinds[int(rng.integers(len(kinds) if depth < 2 else 5))]
    if kind == "int":
        return int(rng.integers(-5, 6))
    if kind == "float":
        return float(rng.integers(-10, 10)) + [0.5, 0.25, -0.75][int(rng.integers(3))]
    if kind == "str":
        return STRINGS[int(rng.integers(len(STRINGS)))]
    if kind == "bool":
        return bool(rng.random() < 0.5)
    if kind == "null":
        return None
    if kind == "list":
        elem = None if rng.random() < 0.5 else ["int", "str", "float"][int(rng.integers(3))]
        return [json_value(rng, depth + 1, elem) for _ in range(int(rng.integers(0, 4)))]
    return {k: json_value(rng, depth + 1) for k in JSON_KEYS[: int(rng.integers(0, 3))]}


def json_spec(rng: np.random.Generator, depth: int = 0) -> object:
    """A JSON type per key, nested: values drawn from it keep Arrow's fast path usable."""
    kinds = ["int", "float", "str", "bool", "null", "list", "obj"]
    kind = kinds[int(rng.integers(len(kinds) if depth < 2 else 5))]
    if kind == "list":
        return ("list", json_spec(rng, depth + 1))
    if kind == "obj":
        return ("obj", {k: json_spec(rng, depth + 1) for k in JSON_KEYS[: int(rng.integers(1, 3))]})
    return kind


def value_of(rng: np.random.Generator, spec: object) -> object:
    if rng.random() < 0.1:
        return None
    if isinstance(spec, tuple) and spec[0] == "list":
        return [value_of(rng, spec[1]) for _ in range(int(rng.integers(0, 4)))]
    if isinstance(spec, tuple):
        return {k: value_of(rng, v) for k, v in spec[1].items() if rng.random() < 0.8}
    return json_value(rng, 2, spec)  # type: ignore[arg-type]


def random_doc(rng: np.random.Generator, specs: dict | None) -> dict:
    doc = {}
    for k in JSON_KEYS:
        if rng.random() < 0.7:
            doc[k] = value_of(rng, specs[k]) if specs else json_value(rng, 0)
    return doc


def random_rows(rng: np.random.Generator, schema: Schema, n: int) -> list[dict]:
    # Half the data sets keep one JSON type per key (Arrow's fast path), half mix types
    # (the per-row fallback).
    specs = {k: json_spec(rng) for k in JSON_KEYS} if rng.random() < 0.5 else None
    rows = []
    for i in range(n):
        row: dict = {"id": i}
        for f in schema.fields[1:]:
            if f.nullable and rng.random() < 0.2:
                row[f.name] = None
            elif f.dtype is DataType.ARRAY:
                k = int(rng.integers(0, 5))
                row[f.name] = [scalar_value(rng, f.element_type) for _ in range(k)]
            elif f.dtype is DataType.JSON:
                row[f.name] = random_doc(rng, specs)
            else:
                row[f.name] = scalar_value(rng, f.dtype)
        rows.append(row)
    return rows


def to_table(rows: list[dict], schema: Schema, rng: np.random.Generator | None = None) -> pa.Table:
    cols = {}
    for f in schema.fields:
        vals = [r.get(f.name) for r in rows]
        if f.dtype is DataType.JSON:
            style = int(rng.integers(3)) if rng is not None else 0
            text = [
                None if v is None else json.dumps(v, indent=2 if style == 2 else None) for v in vals
            ]
            cols[f.name] = (
                pa.array([None if s is None else s.encode() for s in text], pa.binary())
                if style == 1
                else pa.array(text, pa.string())
            )
        elif f.dtype is DataType.ARRAY:
            cols[f.name] = pa.array(vals, pa.list_(ARROW[f.element_type]))
        else:
            cols[f.name] = pa.array(vals, ARROW[f.dtype])
    table = pa.table(cols)
    if rng is not None and len(rows) > 3 and rng.random() < 0.5:
        cut = sorted({int(x) for x in rng.integers(1, len(rows), 2)})
        bounds = [0, *cut, len(rows)]
        batches = [
            b for a, z in zip(bounds, bounds[1:]) for b in table.slice(a, z - a).to_batches()
        ]
        table = pa.Table.from_batches(batches, table.schema)
    return table


def lit(v: object) -> str:
    """A constant written as filter text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        out = []
        for c in v:
            if c in '"\\':
                out.append("\\" + c)
            elif c == "\n":
                out.append("\\n")
            else:
                out.append(c)
        return '"' + "".join(out) + '"'
    return "[" + ", ".join(lit(x) for x in v) + "]"  # type: ignore[union-attr]


class ExprGen:
    """Random, mostly well-typed filters over one schema."""

    def __init__(self, rng: np.random.Generator, schema: Schema) -> None:
        self.rng = rng
        self.schema = schema
        self.scalars = [f for f in schema.fields if f.dtype in ARROW]
        self.arrays = [f for f in schema.fields if f.dtype is DataType.ARRAY]
        self.params: dict = {}

    def pick(self, xs):
        return xs[int(self.rng.integers(len(xs)))]

    def const(self, t: DataType) -> str:
        v = scalar_value(self.rng, t)
        if isinstance(v, float) and v != v:
            v = 2.5
        if t.is_integer and self.rng.random() < 0.3:
            v = int(self.rng.integers(-200, 200))
        if self.rng.random() < 0.15:  # through a template: typed, never spliced
            name = f"p{len(self.params)}"
            self.params[name] = v
            return "{" + name + "}"
        return lit(v)

    def json_path(self) -> str:
        keys = [self.pick(JSON_KEYS) for _ in range(int(self.rng.integers(1, 3)))]
        if self.schema.enable_dynamic_field and self.rng.random() < 0.3:
            head = keys[0] if keys[0] not in ("0",) and keys[0] != "k" else "k"
            return head + "".join(f'["{k}"]' for k in keys[1:])
        return "meta" + "".join(
            f'["{k}"]' if not k.isdigit() or self.rng.random() < 0.5 else f"[{k}]" for k in keys
        )

    def json_const(self) -> str:
        def clean(v: object) -> object:
            if v is None or isinstance(v, dict):
                return 1
            return [clean(x) for x in v] if isinstance(v, list) else v

        return lit(clean(json_value(self.rng, 1)))

    def leaf(self) -> str:
        r = self.rng.random()
        op = self.pick(["==", "!=", "<", "<=", ">", ">="])
        if r < 0.3 and self.scalars:
            f = self.pick(self.scalars)
            if self.rng.random() < 0.1:
                return f"{f.name} is {'not ' if self.rng.random() < 0.5 else ''}null"
            if f.dtype is DataType.VARCHAR and self.rng.random() < 0.3:
                return f"{f.name} like {lit(self.pattern())}"
            if self.rng.random() < 0.2:
                vals = ", ".join(self.const(f.dtype) for _ in range(int(self.rng.integers(0, 4))))
                return f"{f.name} {'not in' if self.rng.random() < 0.3 else 'in'} [{vals}]"
            if f.dtype.is_numeric and self.rng.random() < 0.3:
                return self.arith(f, op)
            if f.dtype.is_numeric and self.rng.random() < 0.15:
                lo, hi = sorted([int(self.rng.integers(-6, 7)), int(self.rng.integers(-6, 7))])
                return f"{lo} <= {f.name} < {hi + 1}"
            other = [
                g
                for g in self.scalars
                if g is not f
                and (g.dtype == f.dtype or (g.dtype.is_numeric and f.dtype.is_numeric))
            ]
            if other and self.rng.random() < 0.15:
                return f"{f.name} {op} {self.pick(other).name}"
            return f"{f.name} {op} {self.const(f.dtype)}"
        if r < 0.5 and self.arrays:
            f = self.pick(self.arrays)
            t = f.element_type
            k = self.rng.random()
            if k < 0.3:
                return f"{f.name}[{int(self.rng.integers(0, 4))}] {op} {self.const(t)}"
            if k < 0.5:
                fn = self.pick(["array_contains", "ARRAY_CONTAINS", "json_contains"])
                return f"{fn}({f.name}, {self.const(t)})"
            if k < 0.7:
                fn = self.pick(["array_contains_all", "array_contains_any"])
                vals = ", ".join(self.const(t) for _ in range(int(self.rng.integers(0, 3))))
                return f"{fn}({f.name}, [{vals}])"
            if k < 0.85:
                return f"array_length({f.name}) {op} {int(self.rng.integers(0, 4))}"
            if k < 0.92:
                vals = ", ".join(self.const(t) for _ in range(int(self.rng.integers(0, 3))))
                return f"{f.name} {self.pick(['==', '!='])} [{vals}]"
            return f"{f.name} is {'not ' if self.rng.random() < 0.5 else ''}null"
        path = self.json_path()
        k = self.rng.random()
        if k < 0.4:
            return f"{path} {op} {self.json_const()}"
        if k < 0.5:
            return f"{'exists ' + path if self.rng.random() < 0.5 else path + ' is null'}"
        if k < 0.6:
            return f"{path} like {lit(self.pattern())}"
        if k < 0.7:
            vals = ", ".join(self.json_const() for _ in range(int(self.rng.integers(0, 4))))
            return f"{path} {'not in' if self.rng.random() < 0.3 else 'in'} [{vals}]"
        if k < 0.8:
            fn = self.pick(["json_contains", "json_contains_all", "json_contains_any"])
            arg = (
                self.json_const()
                if fn == "json_contains"
                else "["
                + ", ".join(self.json_const() for _ in range(int(self.rng.integers(0, 3))))
                + "]"
            )
            return f"{fn}({path}, {arg})"
        if k < 0.9:
            return f"array_length({path}) {op} {int(self.rng.integers(0, 3))}"
        return (
            f"{path} {self.pick(['+', '-', '*', '%'])} {int(self.rng.integers(1, 4))} {op} "
            f"{int(self.rng.integers(-3, 4))}"
        )

    def arith(self, f: Field, op: str) -> str:
        integer = f.dtype.is_integer
        a = self.pick(["+", "-", "*", "/", "%", "**"] if integer else ["+", "-", "*", "/", "**"])
        operand = int(self.rng.integers(1, 5)) * self.pick([1, -1])
        if a == "**":
            operand = abs(operand) % 3
        rhs = (
            int(self.rng.integers(-10, 11))
            if integer and a != "**"
            else float(self.rng.integers(-10, 11)) + 0.5
        )
        if self.rng.random() < 0.2 and a != "**":
            return f"-{f.name} {a} {operand} {op} {lit(rhs)}"
        return f"{f.name} {a} {operand} {op} {lit(rhs)}"

    def pattern(self) -> str:
        return self.pick(
            [
                "a%",
                "%a",
                "%b%",
                "a_",
                "_",
                "%",
                "",
                "a\\%b",
                "a\\_b",
                "%é%",
                "%\\\\%",
                "_b%",
                "a%b%",
                "2024%",
                "line%",
                "%😀",
            ]
        )

    def expr(self, depth: int = 0) -> str:
        r = self.rng.random()
        if depth >= 3 or r < 0.35:
            return self.leaf()
        if r < 0.55:
            return f"not ({self.expr(depth + 1)})"
        op = self.pick(["and", "or", "AND", "||", "&&"])
        items = [self.expr(depth + 1) for _ in range(int(self.rng.integers(2, 4)))]
        return "(" + f" {op} ".join(items) + ")"
