"""Parser: filter text -> syntax tree (:mod:`vecstore.expr.ast`), no schema involved.

A Pratt parser. Operator precedence, loosest first (Milvus's ``Plan.g4`` order unless noted):

==========================  =========================================================
``or`` ``||``               n-ary, flattened
``and`` ``&&``              n-ary, flattened
``not`` ``!`` (prefix)      binds looser than comparisons, as in SQL: ``not a > 1`` is
                            ``not (a > 1)``. Milvus's grammar binds it tighter, which
                            makes such input an error there, so every filter Milvus
                            accepts means the same here (``NOT color == "green"`` from
                            Milvus's own docs only works this way).
``== !=``                   not chainable
``< <= > >=``               ``1 < x <= 5`` (same direction both sides) is a range
``in`` ``not in`` ``like``
``+ -``                     left-associative
``* / %``                   left-associative
``-`` ``+`` (prefix)        ``-x ** 2`` is ``-(x ** 2)``
``**``                      LEFT-associative like Milvus's grammar (ANTLR's default):
                            ``2 ** 3 ** 2`` is ``(2 ** 3) ** 2`` = 64, not Python's 512
primary                     literal, ``[...]``, ``(...)``, ``{param}``, name, ``name[...]``,
                            ``name is [not] null``, ``exists path``, function call
==========================  =========================================================

Errors are :class:`ExprError` with the offending position. Nesting is bounded by
``Limits.max_depth`` in two ways: parser recursion (parentheses, prefixes, right operands) and the
height of the tree built (left-deep chains such as ``x + 1 + 1 + ...``); long ``and``/``or``
chains stay flat and cost nothing against the bound.
"""

from __future__ import annotations

from vecstore.expr import ast
from vecstore.expr.errors import ExprError
from vecstore.expr.lexer import KEYWORDS, Token, tokenize
from vecstore.expr.schema import DEFAULT_LIMITS, Limits

_CONTAINS = {
    "json_contains",
    "json_contains_all",
    "json_contains_any",
    "array_contains",
    "array_contains_all",
    "array_contains_any",
}
_UNSUPPORTED = {
    "text_match": "it needs a text-match index built with the field's analyzer",
    "phrase_match": "it needs a text-match index built with the field's analyzer",
    "random_sample": "sampling is not implemented",
    "element_filter": "ARRAY of STRUCT fields are not supported",
    "st_equals": "geometry fields are not supported",
    "st_touches": "geometry fields are not supported",
    "st_overlaps": "geometry fields are not supported",
    "st_crosses": "geometry fields are not supported",
    "st_contains": "geometry fields are not supported",
    "st_intersects": "geometry fields are not supported",
    "st_within": "geometry fields are not supported",
    "st_dwithin": "geometry fields are not supported",
    "st_isvalid": "geometry fields are not supported",
}
for _m in ("match_all", "match_any", "match_least", "match_most", "match_exact"):
    _UNSUPPORTED[_m] = "ARRAY of STRUCT fields are not supported"

_OR, _AND, _NOT_OPERAND, _EQ, _REL, _IN, _ADD, _MUL, _SIGN_OPERAND, _POW = (
    10,
    20,
    25,
    40,
    50,
    60,
    70,
    80,
    85,
    90,
)
_REL_OPS = ("<", "<=", ">", ">=")
_LITERALS = ("int", "float", "str", "bool")
_REJECTED_OPS = {
    "&": "bitwise and (&)",
    "|": "bitwise or (|)",
    "^": "bitwise xor (^)",
    "~": "bitwise not (~)",
    "<<": "shift (<<)",
    ">>": "shift (>>)",
    "=~": "regular-expression match (=~)",
    "!~": "regular-expression match (!~)",
}


def parse(text: str, limits: Limits = DEFAULT_LIMITS) -> ast.Node | None:
    """Parses ``text``; None for an empty (all-whitespace) filter, which matches all rows."""
    if not isinstance(text, str):
        raise ExprError(f"filter must be a string, got {type(text).__name__}")
    if len(text) > limits.max_length:
        raise ExprError(
            f"filter of {len(text)} characters exceeds the limit of {limits.max_length}; pass "
            "long value lists through filter_params instead"
        )
    if not text.strip():
        return None
    return _Parser(tokenize(text, limits.max_string), limits).parse_all()


class _Parser:
    def __init__(self, tokens: list[Token], limits: Limits) -> None:
        self.tokens = tokens
        self.i = 0
        self.limits = limits
        self.nesting = 0

    # -- helpers ---------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def is_op(self, value: str) -> bool:
        t = self.tokens[self.i]
        return t.kind == "op" and t.value == value

    def is_kw(self, value: str) -> bool:
        t = self.tokens[self.i]
        return t.kind == "kw" and t.value == value

    def expect_op(self, value: str, context: str) -> Token:
        if not self.is_op(value):
            raise ExprError(f"expected '{value}' {context}, found {self.tok.text}", self.tok.pos)
        return self.advance()

    def node(self, cls, *args, pos: int):
        children = [a for a in args if hasattr(a, "depth")]
        for a in args:
            if isinstance(a, tuple):
                children.extend(x for x in a if hasattr(x, "depth"))
        depth = 1 + max((c.depth for c in children), default=0)
        if depth > self.limits.max_depth:
            raise ExprError(f"expression nests deeper than {self.limits.max_depth} levels", pos)
        return cls(*args, pos=pos, depth=depth)

    # -- entry points ----------------------------------------------------------------------
    def parse_all(self) -> ast.Node:
        node = self.expr(0)
        t = self.tok
        if t.kind != "eof":
            raise ExprError(self._unexpected(t), t.pos)
        return node

    def expr(self, rbp: int) -> ast.Node:
        self.nesting += 1
        if self.nesting > self.limits.max_depth:
            raise ExprError(
                f"expression nests deeper than {self.limits.max_depth} levels", self.tok.pos
            )
        try:
            left = self.nud()
            while self.lbp(self.tok) > rbp:
                left = self.led(left)
            return left
        finally:
            self.nesting -= 1

    def lbp(self, t: Token) -> int:
        if t.kind == "kw":
            return {"or": _OR, "and": _AND, "in": _IN, "like": _IN, "not": _IN}.get(t.value, 0)
        if t.kind != "op":
            return 0
        v = t.value
        if v in ("==", "!="):
            return _EQ
        if v in _REL_OPS:
            return _REL
        if v in ("+", "-"):
            return _ADD
        if v in ("*", "/", "%"):
            return _MUL
        if v == "**":
            return _POW
        if v in _REJECTED_OPS or v == "=":
            return 100  # reach led(), which names the operator in its refusal
        return 0

    # -- prefix positions --------------------------------------------------------------------
    def nud(self) -> ast.Node:
        t = self.tok
        if t.kind in ("int", "float", "str", "bool"):
            self.advance()
            return ast.Literal(t.value, t.kind, t.pos)
        if t.kind == "ident":
            return self.name_or_call()
        if t.kind == "kw":
            if t.value == "not":
                self.advance()
                return self.node(ast.Not, self.expr(_NOT_OPERAND), pos=t.pos)
            if t.value == "exists":
                self.advance()
                return self.node(ast.Exists, self.expr(_POW), pos=t.pos)
        if t.kind == "op":
            v = t.value
            if v == "(":
                self.advance()
                inner = self.expr(0)
                self.expect_op(")", f"to close the '(' at position {t.pos}")
                return inner
            if v == "[":
                return self.list_literal()
            if v == "{":
                self.advance()
                if self.tok.kind != "ident":
                    raise ExprError(
                        f"expected a parameter name after '{{', found {self.tok.text}", self.tok.pos
                    )
                name = self.advance().value
                self.expect_op("}", "to close the template parameter")
                return ast.Placeholder(name, t.pos)
            if v in ("-", "+"):
                self.advance()
                return self.node(ast.Unary, v, self.expr(_SIGN_OPERAND), pos=t.pos)
            if v in _REJECTED_OPS:
                raise ExprError(f"{_REJECTED_OPS[v]} is not supported in filters", t.pos)
            if v == "$":
                raise ExprError(
                    "unexpected character '$' (struct element references such as "
                    "$[field] are not supported)",
                    t.pos,
                )
        raise ExprError(self._expected_value(t), t.pos)

    def _expected_value(self, t: Token) -> str:
        if self.i == 0:
            return f"expected a value at the start of the expression, found {t.text}"
        prev = self.tokens[self.i - 1]
        return f"expected a value after {prev.text}, found {t.text}"

    def list_literal(self) -> ast.ListLit:
        start = self.advance()
        items: list[ast.Node] = []
        self.nesting += 1
        try:
            if self.nesting > self.limits.max_depth:
                raise ExprError(
                    f"expression nests deeper than {self.limits.max_depth} levels", start.pos
                )
            tokens = self.tokens
            while not self.is_op("]"):
                t = tokens[self.i]
                nxt = tokens[self.i + 1] if t.kind in _LITERALS else t  # eof ends every list
                if t.kind in _LITERALS and nxt.kind == "op" and nxt.value in (",", "]"):
                    # Fast path for long value lists: a bare literal needs no Pratt round trip.
                    items.append(ast.Literal(t.value, t.kind, t.pos))
                    self.i += 1
                else:
                    items.append(self.expr(0))
                if len(items) > self.limits.max_list:
                    raise ExprError(
                        f"list of more than {self.limits.max_list} values; pass it through "
                        "filter_params or raise Limits.max_list",
                        start.pos,
                    )
                if self.is_op(","):
                    self.advance()
                    continue
                if not self.is_op("]"):
                    raise ExprError(
                        f"expected ',' or ']' in the list opened at position {start.pos}, "
                        f"found {self.tok.text}",
                        self.tok.pos,
                    )
            self.advance()
        finally:
            self.nesting -= 1
        return self.node(ast.ListLit, tuple(items), pos=start.pos)

    def name_or_call(self) -> ast.Node:
        t = self.advance()
        name = t.value
        if self.is_op("("):
            return self.call(t)
        if name in ("iso", "ISO", "interval", "INTERVAL") and self.tok.kind == "str":
            raise ExprError("TIMESTAMPTZ comparisons (ISO / INTERVAL) are not supported", t.pos)
        keys: list = []
        while self.is_op("["):
            open_ = self.advance()
            k = self.tok
            if k.kind == "str":
                if k.value == "":
                    raise ExprError("a JSON key must not be empty", k.pos)
                keys.append(k.value)
            elif k.kind == "int":
                if len(str(k.value)) != k.end - k.pos:
                    # Milvus's JSONIdentifier takes a plain decimal index: no 0x, 0b or 010.
                    raise ExprError(
                        "an index must be written in decimal without leading zeros", k.pos
                    )
                keys.append(k.value)
            else:
                raise ExprError(
                    f"expected a quoted key or an integer index after '[', found {k.text}", k.pos
                )
            self.advance()
            self.expect_op("]", f"to close the '[' at position {open_.pos}")
        node: ast.Node = ast.Path(name, tuple(keys), t.pos) if keys else ast.Name(name, t.pos)
        return self.is_null_suffix(node)

    def is_null_suffix(self, node: ast.Node) -> ast.Node:
        t = self.tok
        if t.kind != "ident" or t.value not in ("is", "IS"):
            return node
        j = self.i + 1
        negated = False
        nxt = self.tokens[j]
        if nxt.kind == "kw" and nxt.value == "not":
            negated = True
            j += 1
            nxt = self.tokens[j]
        if nxt.kind == "ident" and nxt.value in ("null", "NULL"):
            self.i = j + 1
            return self.node(ast.IsNull, node, negated, pos=t.pos)
        raise ExprError(
            f"expected 'null' or 'not null' after '{t.value}', found {nxt.text}", nxt.pos
        )

    def call(self, t: Token) -> ast.Node:
        name = t.value
        low = name.lower()
        if low in _UNSUPPORTED and name in (low, low.upper()):
            raise ExprError(
                f"{low.upper()} is not supported by vecstore filters: {_UNSUPPORTED[low]}", t.pos
            )
        if low not in _CONTAINS and low != "array_length":
            raise ExprError(f"unknown function '{name}'", t.pos)
        if name not in (low, low.upper()):
            raise ExprError(
                f"unknown function '{name}' (function names are written in lower or upper case: "
                f"{low} or {low.upper()})",
                t.pos,
            )
        open_ = self.advance()
        args: list[ast.Node] = []
        while not self.is_op(")"):
            args.append(self.expr(0))
            if self.is_op(","):
                self.advance()
            elif not self.is_op(")"):
                raise ExprError(
                    f"expected ',' or ')' in the call of {name}, found {self.tok.text}",
                    self.tok.pos,
                )
        self.advance()
        want = 1 if low == "array_length" else 2
        if len(args) != want:
            raise ExprError(
                f"{name} takes {want} argument{'s' if want > 1 else ''}, got {len(args)}", open_.pos
            )
        return self.node(ast.Call, low, tuple(args), pos=t.pos)

    # -- infix positions ---------------------------------------------------------------------
    def led(self, left: ast.Node) -> ast.Node:
        t = self.advance()
        v = t.value
        if t.kind == "kw":
            if v in ("and", "or"):
                bp = _AND if v == "and" else _OR
                items = [left]
                while True:
                    items.append(self.expr(bp))
                    if not self.is_kw(v):
                        break
                    self.advance()
                return self.node(ast.Logical, v, tuple(items), pos=left.pos)
            if v == "not":
                if not self.is_kw("in"):
                    raise ExprError(
                        f"expected 'in' after 'not', found {self.tok.text}", self.tok.pos
                    )
                self.advance()
                return self.node(ast.In, left, self.expr(_IN), True, pos=left.pos)
            if v == "in":
                return self.node(ast.In, left, self.expr(_IN), False, pos=left.pos)
            if v == "like":
                return self.node(ast.Like, left, self.expr(_IN), pos=left.pos)
        if v in ("==", "!="):
            right = self.expr(_EQ)
            if self.tok.kind == "op" and self.tok.value in ("==", "!="):
                raise ExprError(
                    "comparison operators cannot be chained; join the comparisons with 'and'",
                    self.tok.pos,
                )
            return self.node(ast.Compare, v, left, right, pos=left.pos)
        if v in _REL_OPS:
            middle = self.expr(_REL)
            nxt = self.tok
            if nxt.kind == "op" and nxt.value in _REL_OPS:
                if (v in ("<", "<=")) != (nxt.value in ("<", "<=")):
                    raise ExprError(
                        f"a range needs both comparisons in one direction ('<'/'<=' or "
                        f"'>'/'>='), found '{v}' then '{nxt.value}'",
                        nxt.pos,
                    )
                self.advance()
                upper = self.expr(_REL)
                if self.tok.kind == "op" and self.tok.value in _REL_OPS:
                    raise ExprError(
                        "a range compares one value with two bounds; more "
                        "comparisons must be joined with 'and'",
                        self.tok.pos,
                    )
                return self.node(ast.Range, left, v, middle, nxt.value, upper, pos=left.pos)
            return self.node(ast.Compare, v, left, middle, pos=left.pos)
        if v in ("+", "-", "*", "/", "%", "**"):
            bp = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "%": _MUL, "**": _POW}[v]
            return self.node(ast.Binary, v, left, self.expr(bp), pos=left.pos)
        if v in _REJECTED_OPS:
            raise ExprError(f"{_REJECTED_OPS[v]} is not supported in filters", t.pos)
        if v == "=":
            raise ExprError("'=' is not an operator; use '==' to compare", t.pos)
        raise ExprError(self._unexpected(t), t.pos)  # pragma: no cover (lbp gates led)

    def _unexpected(self, t: Token) -> str:
        if t.kind == "op" and t.value in (")", "]", "}"):
            return f"unexpected '{t.value}' with nothing to close"
        msg = f"expected an operator or the end of the expression, found {t.text}"
        if t.kind == "ident" and t.value.lower() in KEYWORDS | {"is"}:
            low = t.value.lower()
            msg += f" (keywords are written in lower or upper case: {low} or {low.upper()})"
        return msg
