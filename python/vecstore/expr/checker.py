"""Type checker: syntax tree + schema + ``filter_params`` -> bound plan (:mod:`vecstore.expr.plan`).

``check(node, schema, params, limits)`` resolves every name against the schema, substitutes
``{placeholders}`` with typed constants from ``params`` (values are never spliced into the text,
so a parameter can only ever be a value), folds constant sub-expressions the way Milvus's parser
does (Go integer semantics), and rejects what Milvus rejects, with the field and the mismatch in
the message:

- ``field x not exist`` for an unknown name when the dynamic field is disabled (with it enabled,
  an unknown name ``k`` means ``$meta["k"]``);
- comparisons across types (``comparisons between VARCHAR field 'name' and INT64 value 3 are not
  supported``), an INT field against a float (Milvus casts constants to the field's type and
  refuses ``age > 1.5``), ARRAY fields compared whole except with ``==``/``!=``;
- ``in`` and ``like`` on anything but a single field, JSON path or ARRAY element; ``%`` on floats;
  division or modulus by a constant zero; an inverted range (``5 < x < 1``);
- a filter that is not a condition (a bare ``flag`` field: write ``flag == true``).

Beyond Milvus (documented in the package docstring): arithmetic may nest and combine fields
(``a * 2 + b > 10``, ``price ** 2 > 1000``), not only ``field op constant``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vecstore.expr import ast
from vecstore.expr import plan as p
from vecstore.expr.constants import (
    comparable,
    fold,
    fold_compare,
    show_const,
    template_value,
    wrap64,
)
from vecstore.expr.errors import ExprError
from vecstore.expr.schema import DYNAMIC_FIELD, DataType, Limits, Schema

_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NUMERIC = ("int", "float32", "float", "json")
_CONTAINS_MODE = {
    "json_contains": "one",
    "array_contains": "one",
    "json_contains_all": "all",
    "array_contains_all": "all",
    "json_contains_any": "any",
    "array_contains_any": "any",
}
_TYPE_NAME = {
    "int": "INT64",
    "float": "DOUBLE",
    "float32": "FLOAT",
    "string": "VARCHAR",
    "bool": "BOOL",
    "list": "ARRAY",
    "json": "JSON",
    "array": "ARRAY",
}


def check(node: ast.Node | None, schema: Schema, params: Mapping | None, limits: Limits) -> p.Pred:
    if node is None:
        return p.BoolConst(True)
    if params is not None and not isinstance(params, Mapping):
        raise ExprError(f"filter_params must be a dict, got {type(params).__name__}")
    return _Checker(schema, params or {}, limits).pred(node)


class _Checker:
    def __init__(self, schema: Schema, params: Mapping, limits: Limits) -> None:
        self.schema = schema
        self.params = params
        self.limits = limits

    # -- names -------------------------------------------------------------------------------
    def column(self, node: ast.Node) -> p.Column:
        if isinstance(node, ast.Name):
            name, keys = node.name, ()
        elif isinstance(node, ast.Path):
            name, keys = node.name, node.keys
        else:
            raise ExprError(f"expected a field name, found {ast.show(node)}", node.pos)
        field = self.schema.get(name)
        if field is None:
            dyn = self.schema.get(DYNAMIC_FIELD) if self.schema.enable_dynamic_field else None
            if dyn is None:
                raise ExprError(f"field {name} not exist", node.pos)
            path = (name,) + tuple(str(k) for k in keys)
            return p.Column(DYNAMIC_FIELD, DataType.JSON, None, True, path, ast.show(node))
        if field.dtype.is_vector:
            raise ExprError(
                f"field {name} is a vector field ({field.dtype.value}) and cannot be "
                "used in a filter",
                node.pos,
            )
        label = ast.show(node)
        if not keys:
            return p.Column(name, field.dtype, field.element_type, field.nullable, (), label)
        if field.dtype is DataType.JSON:
            path = tuple(str(k) for k in keys)
            return p.Column(name, field.dtype, None, field.nullable, path, label)
        if field.dtype is DataType.ARRAY:
            if any(isinstance(k, str) for k in keys):
                raise ExprError(
                    f"ARRAY field {name} can only be accessed with an integer index", node.pos
                )
            if len(keys) != 1:
                raise ExprError(f"ARRAY field {name} takes a single index", node.pos)
            return p.Column(
                name, field.dtype, field.element_type, field.nullable, tuple(keys), label
            )
        raise ExprError(
            f"field {name} of type {field.describe()} cannot be accessed with []", node.pos
        )

    # -- values ------------------------------------------------------------------------------
    def value(self, node: ast.Node) -> p.Value:
        if isinstance(node, ast.Literal):
            return p.Const(node.value)
        if isinstance(node, ast.ListLit):
            items = []
            for item in node.items:
                if type(item) is ast.Literal:
                    items.append(item.value)
                    continue
                v = self.value(item)
                if not isinstance(v, p.Const):
                    raise ExprError(
                        f"list elements must be constants, found {ast.show(item)}", item.pos
                    )
                items.append(v.value)
            return p.Const(items)
        if isinstance(node, ast.Placeholder):
            return p.Const(self.param(node))
        if isinstance(node, (ast.Name, ast.Path)):
            return self.column(node)
        if isinstance(node, ast.Unary):
            v = self.value(node.operand)
            self.need_numeric(v, node.op, node.operand.pos)
            if node.op == "+":
                return v
            if isinstance(v, p.Const):
                return p.Const(wrap64(-v.value) if isinstance(v.value, int) else -v.value)
            return p.Arith("neg", v, None, _arith_type(v.vtype, v.vtype))
        if isinstance(node, ast.Binary):
            return self.arith(node)
        if isinstance(node, ast.Call) and node.name == "array_length":
            col = self.column(node.args[0])
            if col.kind not in ("json", "array"):
                raise ExprError(
                    f"array_length applies to an ARRAY field or a JSON value, not "
                    f"{col.label} ({_describe(col)})",
                    node.args[0].pos,
                )
            return p.ArrayLength(col)
        raise ExprError(f"expected a value, found the condition {ast.show(node)}", node.pos)

    def need_numeric(self, v: p.Value, op: str, pos: int) -> None:
        if v.vtype not in _NUMERIC:
            raise ExprError(f"'{op}' needs numbers, but {_what(v)} is {_vdesc(v)}", pos)

    def arith(self, node: ast.Binary) -> p.Value:
        left, right = self.value(node.left), self.value(node.right)
        for v, sub in ((left, node.left), (right, node.right)):
            self.need_numeric(v, node.op, sub.pos)
        op = node.op
        if op == "%":
            for v, sub in ((left, node.left), (right, node.right)):
                if v.vtype not in ("int", "json"):
                    raise ExprError(
                        f"modulo can only apply on integer types, but {_what(v)} is {_vdesc(v)}",
                        sub.pos,
                    )
        if op in ("/", "%") and isinstance(right, p.Const) and right.value == 0:
            raise ExprError("division or modulus by zero", node.right.pos)
        if isinstance(left, p.Const) and isinstance(right, p.Const):
            return p.Const(fold(op, left.value, right.value))
        vtype = "float" if op == "**" else _arith_type(left.vtype, right.vtype)
        return p.Arith(op, left, right, vtype)

    def param(self, node: ast.Placeholder) -> Any:
        if node.name not in self.params:
            raise ExprError(
                f"the value of expression template variable name {{{node.name}}} is "
                "not found in filter_params",
                node.pos,
            )
        return template_value(self.params[node.name], node.name, node.pos, self.limits)

    # -- predicates --------------------------------------------------------------------------
    def pred(self, node: ast.Node) -> p.Pred:
        if isinstance(node, ast.Logical):
            items = []
            for item in node.items:
                sub = self.pred(item)
                items.append(sub)
            return p.And(tuple(items)) if node.op == "and" else p.Or(tuple(items))
        if isinstance(node, ast.Not):
            inner = self.pred(node.operand)
            if isinstance(inner, p.BoolConst):
                return p.BoolConst(not inner.value)
            return p.Not(inner)
        if isinstance(node, ast.Compare):
            return self.compare(node.op, node.left, node.right, node.pos)
        if isinstance(node, ast.Range):
            return self.range(node)
        if isinstance(node, ast.In):
            return self.in_list(node)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.IsNull):
            return self.is_null(node)
        if isinstance(node, ast.Exists):
            col = self.column(node.operand)
            if col.kind != "json":
                raise ExprError(
                    f"exists applies to a JSON key, not to {col.label} ({_describe(col)})",
                    node.operand.pos,
                )
            if not col.path:
                raise ExprError(
                    f'exists needs a key: write exists {col.label}["key"]', node.operand.pos
                )
            return p.Exists(col)
        if isinstance(node, ast.Call) and node.name in _CONTAINS_MODE:
            return self.contains(node)
        v = self.value(node)
        if isinstance(v, p.Const) and isinstance(v.value, bool):
            return p.BoolConst(v.value)
        if isinstance(v, p.Column) and v.vtype in ("bool", "json"):
            raise ExprError(
                f"the filter must be a condition; {v.label} is a {_describe(v)} "
                f"value: compare it, e.g. {v.label} == true",
                node.pos,
            )
        raise ExprError(
            f"the filter must be a condition, found {ast.show(node)} ({_vdesc(v)})", node.pos
        )

    def compare(self, op: str, lnode: ast.Node, rnode: ast.Node, pos: int) -> p.Pred:
        left, right = self.value(lnode), self.value(rnode)
        if isinstance(left, p.Const) and isinstance(right, p.Const):
            return p.BoolConst(fold_compare(op, left.value, right.value, pos))
        if isinstance(left, p.Const):
            left, right, op = right, left, _FLIP[op]
            lnode, rnode = rnode, lnode
        lt = left.vtype
        if isinstance(right, p.Const):
            return p.Cmp(op, left, p.Const(self.cast(left, right.value, op, rnode.pos)))
        rt = right.vtype
        if "json" in (lt, rt) and (isinstance(left, p.Column) or isinstance(right, p.Column)):
            raise ExprError(
                f"two column comparison with JSON type is not supported: "
                f"{_what(left)} and {_what(right)}",
                pos,
            )
        if "array" in (lt, rt):
            raise ExprError(
                "ARRAY fields cannot be compared with another field; compare an "
                "element (tags[0]) or use array functions",
                pos,
            )
        ok = (lt in _NUMERIC and rt in _NUMERIC) or lt == rt
        if not ok:
            raise ExprError(
                f"comparisons between {_what(left)} ({_vdesc(left)}) and "
                f"{_what(right)} ({_vdesc(right)}) are not supported",
                pos,
            )
        return p.Cmp(op, left, right)

    def cast(self, target: p.Value, v: Any, op: str, pos: int) -> Any:
        """``v`` converted to the type of ``target`` (Milvus ``castValue``), or an ExprError."""
        t = target.vtype
        vt = p.const_vtype(v)
        if t == "json":
            return v
        if t == "array":
            col = target  # an ARRAY field compared whole
            if op not in ("==", "!="):
                raise ExprError(
                    f"ARRAY field {col.label} cannot be compared with '{op}'; compare "
                    f"an element ({col.label}[0]) or use array functions",
                    pos,
                )
            if vt != "list":
                raise ExprError(
                    f"ARRAY field {col.label} can only be compared with a list, not {_cdesc(v)}",
                    pos,
                )
            et = p._VTYPE[col.element_type]  # type: ignore[index]
            return [self._cast_scalar(et, x, col, pos) for x in v]
        if vt == "list":
            raise ExprError(
                f"{_what(target)} ({_vdesc(target)}) cannot be compared with a list", pos
            )
        return self._cast_scalar(t, v, target, pos)

    def _cast_scalar(self, t: str, v: Any, target: p.Value, pos: int) -> Any:
        vt = p.const_vtype(v)
        if t in ("float", "float32") and vt in ("int", "float"):
            return float(v)
        if t == vt:
            return v
        if t == "int" and vt == "float":
            raise ExprError(
                f"cannot compare {_what(target)} ({_vdesc(target)}) with the float "
                f"value {v!r}: Milvus casts the value to the field's integer type",
                pos,
            )
        raise ExprError(
            f"comparisons between {_what(target)} ({_vdesc(target)}) and "
            f"{_TYPE_NAME[vt]} value {_cdesc(v)} are not supported",
            pos,
        )

    def range(self, node: ast.Range) -> p.Pred:
        if not isinstance(node.operand, (ast.Name, ast.Path)):
            raise ExprError(
                f"a range (a < x < b) needs a field or JSON path in the middle, "
                f"found {ast.show(node.operand)}",
                node.operand.pos,
            )
        col = self.column(node.operand)
        if col.kind == "array":
            raise ExprError(f"ARRAY field {col.label} cannot be compared with ranges", node.pos)
        if col.vtype == "bool":
            raise ExprError("invalid range operations on boolean expr", node.pos)
        bounds = []
        for b in (node.lower, node.upper):
            v = self.value(b)
            if not isinstance(v, p.Const):
                raise ExprError(f"range bounds must be constants, found {ast.show(b)}", b.pos)
            bounds.append(self.cast(col, v.value, "<", b.pos))
        lo, hi = bounds
        lo_op, hi_op = node.op1, node.op2
        if node.op1 in (">", ">="):  # 5 > x > 1 reads upper first
            lo, hi, lo_op, hi_op = hi, lo, node.op2, node.op1
        inclusive = lo_op in ("<=", ">=") and hi_op in ("<=", ">=")
        if comparable(lo, hi) and (lo > hi or (lo == hi and not inclusive)):
            raise ExprError("invalid range: lowerbound is greater than upperbound", node.pos)
        lower = p.Cmp(">=" if lo_op in ("<=", ">=") else ">", col, p.Const(lo))
        upper = p.Cmp("<=" if hi_op in ("<=", ">=") else "<", col, p.Const(hi))
        return p.And((lower, upper))

    def const_list(self, node: ast.Node, what: str) -> list:
        v = self.value(node)
        if not isinstance(v, p.Const) or not isinstance(v.value, list):
            raise ExprError(
                f"{what} must be a list such as [1, 2], found {ast.show(node)}", node.pos
            )
        if len(v.value) > self.limits.max_list:
            raise ExprError(
                f"list of {len(v.value)} values exceeds the limit of {self.limits.max_list}",
                node.pos,
            )
        return v.value

    def single_column(self, node: ast.Node, what: str) -> p.Column:
        if not isinstance(node, (ast.Name, ast.Path)):
            raise ExprError(
                f"'{what}' can only be used on a single field, JSON path or array "
                f"element, found {ast.show(node)}",
                node.pos,
            )
        return self.column(node)

    def in_list(self, node: ast.In) -> p.Pred:
        col = self.single_column(node.operand, "in")
        if col.kind == "array":
            raise ExprError(
                f"'in' does not apply to a whole ARRAY field ({col.label}); use "
                "array_contains_any or an element index",
                node.operand.pos,
            )
        values = self.const_list(node.values, "the right-hand side of 'in'")
        cast = []
        for x in values:
            if col.kind != "json" and isinstance(x, list):
                raise ExprError(
                    f"value {_cdesc(x)} in list cannot be compared with "
                    f"{_what(col)} ({_vdesc(col)})",
                    node.values.pos,
                )
            cast.append(self.cast(col, x, "==", node.values.pos))
        term: p.Pred = p.InList(col, tuple(cast))
        return p.Not(term) if node.negated else term

    def like(self, node: ast.Like) -> p.Pred:
        col = self.single_column(node.operand, "like")
        if col.vtype not in ("string", "json"):
            raise ExprError(
                f"like applies to VARCHAR or JSON values, not {col.label} ({_describe(col)})",
                node.operand.pos,
            )
        pat = self.value(node.pattern)
        if not isinstance(pat, p.Const) or not isinstance(pat.value, str):
            raise ExprError(
                f"the pattern of like must be a string, found {ast.show(node.pattern)}",
                node.pattern.pos,
            )
        s = pat.value
        i = 0
        while i < len(s):  # a lone trailing backslash escapes nothing
            if s[i] == "\\":
                if i + 1 == len(s):
                    raise ExprError(
                        "like pattern ends with an escape character '\\'", node.pattern.pos
                    )
                i += 1
            i += 1
        return p.Like(col, s)

    def is_null(self, node: ast.IsNull) -> p.Pred:
        col = self.column(node.operand)
        if col.kind == "json" and col.path:
            ex = p.Exists(col)
            return ex if node.negated else p.Not(ex)
        if col.kind == "element":
            raise ExprError(
                f"IS NULL applies to a field or a JSON key, not to the ARRAY element {col.label}",
                node.operand.pos,
            )
        return p.IsNull(col, node.negated)

    def contains(self, node: ast.Call) -> p.Pred:
        mode = _CONTAINS_MODE[node.name]
        target, arg = node.args
        if not isinstance(target, (ast.Name, ast.Path)):
            raise ExprError(
                f"{node.name} needs a JSON or ARRAY field first, found {ast.show(target)}",
                target.pos,
            )
        col = self.column(target)
        if col.kind not in ("json", "array"):
            raise ExprError(
                f"contains operations are only supported on json or array fields, "
                f"not {col.label} ({_describe(col)})",
                target.pos,
            )
        if mode == "one":
            v = self.value(arg)
            if not isinstance(v, p.Const):
                raise ExprError(
                    f"{node.name} needs a constant element, found {ast.show(arg)}", arg.pos
                )
            values = [v.value]
        else:
            values = self.const_list(arg, f"the second argument of {node.name}")
        if col.kind == "array":
            et = p._VTYPE[col.element_type]  # type: ignore[index]
            values = [
                self._cast_scalar(et, x, col, arg.pos)
                if not isinstance(x, list)
                else self._bad_elem(col, x, arg.pos)
                for x in values
            ]
        return p.Contains(col, mode, tuple(values))

    def _bad_elem(self, col: p.Column, x: Any, pos: int) -> Any:
        raise ExprError(
            f"ARRAY field {col.label} holds {col.element_type.value} elements, "  # type: ignore[union-attr]
            f"not lists like {_cdesc(x)}",
            pos,
        )


def _arith_type(a: str, b: str) -> str:
    if "float" in (a, b) or "float32" in (a, b):
        return "float"
    if "int" in (a, b):
        return "int"
    return "json"


def _describe(col: p.Column) -> str:
    if col.kind == "element":
        return f"{col.element_type.value} element"  # type: ignore[union-attr]
    if col.kind == "json" and col.path:
        return "JSON"
    return (
        col.dtype.value if col.dtype is not DataType.ARRAY else f"ARRAY<{col.element_type.value}>"
    )  # type: ignore[union-attr]


def _what(v: p.Value) -> str:
    if isinstance(v, p.Column):
        if v.kind == "json" and v.name == DYNAMIC_FIELD and v.label and not v.label.startswith("$"):
            return f"dynamic field key {v.label}"
        return f"field {v.label}" if v.kind != "json" or not v.path else f"JSON path {v.label}"
    if isinstance(v, p.Const):
        return f"value {_cdesc(v.value)}"
    if isinstance(v, p.ArrayLength):
        return f"array_length({v.column.label})"
    return "the arithmetic expression"


def _vdesc(v: p.Value) -> str:
    if isinstance(v, p.Column):
        return _describe(v)
    return _TYPE_NAME.get(v.vtype, v.vtype)


_cdesc = show_const
