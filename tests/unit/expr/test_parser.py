"""Lexer and parser: precedence, literals, keywords, and errors that name the position."""

from __future__ import annotations

import time

import pytest

from vecstore.expr import ExprError, Limits, parse
from vecstore.expr.ast import show
from vecstore.expr.lexer import tokenize


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        # not binds looser than comparisons, tighter than and/or
        ("not a > 1 or b < 2", "((not (a > 1)) or (b < 2))"),
        ("NOT color == 'green'", "(not (color == 'green'))"),
        ("not a and b", "((not a) and b)"),
        ("!a || b && c", "((not a) or (b and c))"),
        ("not not x == 1", "(not (not (x == 1)))"),
        # arithmetic: ** binds tighter than unary minus and is left-associative, like Milvus
        ("-x ** 2", "(-(x ** 2))"),
        ("2 ** 3 ** 2", "((2 ** 3) ** 2)"),
        ("2 ** -1", "(2 ** (-1))"),
        ("a + b * c", "(a + (b * c))"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b % c * d", "(((a / b) % c) * d)"),
        ("-a * b", "((-a) * b)"),
        ("age % 2 == 0", "((age % 2) == 0)"),
        ("price * 2 > 10", "((price * 2) > 10)"),
        # logic: and/or flatten into n-ary nodes
        ("a and b or c and d", "((a and b) or (c and d))"),
        ("a or b or c or d", "(a or b or c or d)"),
        ("a && b AND c", "(a and b and c)"),
        ("(a or b) and c", "((a or b) and c)"),
        # comparisons, ranges, membership, patterns
        ("1 < x < 5", "(1 < x < 5)"),
        ("5 >= x > 1", "(5 >= x > 1)"),
        ("x > 1 and x < 5", "((x > 1) and (x < 5))"),
        ("a + 1 < b", "((a + 1) < b)"),
        ("x in [1, 2,] and y not in ['a']", "((x in [1, 2]) and (y not in ['a']))"),
        ("x IN [] or y NOT IN [1]", "((x in []) or (y not in [1]))"),
        ("name like 'Prod%' or b", "((name like 'Prod%') or b)"),
        ('name LIKE "%XYZ"', "(name like '%XYZ')"),
        # names, paths, null tests, exists, functions, templates
        ('meta["a"][0] > 1', "(meta['a'][0] > 1)"),
        ("tags[3] == 'x'", "(tags[3] == 'x')"),
        ("$meta['k'] == 1", "($meta['k'] == 1)"),
        ("x is null or y IS NOT NULL", "((x is null) or (y is not null))"),
        ('meta["a"] is not null', "(meta['a'] is not null)"),
        ('exists meta["a"] and x', "((exists meta['a']) and x)"),
        ('EXISTS (meta["a"])', "(exists meta['a'])"),
        ("json_contains(a, [1, 'x'])", "json_contains(a, [1, 'x'])"),
        ("JSON_CONTAINS_ANY(a, [1])", "json_contains_any(a, [1])"),
        ("ARRAY_LENGTH(a) == 2", "(array_length(a) == 2)"),
        ("age > {age} and city in {city}", "((age > {age}) and (city in {city}))"),
    ],
)
def test_precedence_and_structure(text, tree):
    assert show(parse(text)) == tree


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("0x1F", 31),
        ("0X1f", 31),
        ("010", 8),
        ("0b101", 5),
        ("0", 0),
        ("9223372036854775807", 9223372036854775807),
        ("1.5", 1.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
        ("0x1p3", 8.0),
        ("'it''s'", None),
        ('"a\\"b"', 'a"b'),
        ("'a\\'b'", "a'b"),
        (r'"\n\t\\"', "\n\t\\"),
        (r'"\x41\101\u00e9\U0001F600"', "AAé😀"),
        ('"é😀"', "é😀"),
        (r"r'a\b'", "a\\b"),
        (r'R"\d+"', "\\d+"),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
    ],
)
def test_literals(text, value):
    if value is None:  # two adjacent strings are two tokens, not an escaped quote
        with pytest.raises(ExprError):
            parse(text)
        return
    node = parse(text)
    assert node.value == value and type(node.value) is type(value)


def test_keywords_are_lower_or_upper_case_only():
    kinds = [(t.kind, t.value) for t in tokenize("and AND And in IN In like Like exists")][:-1]
    assert kinds == [
        ("kw", "and"),
        ("kw", "and"),
        ("ident", "And"),
        ("kw", "in"),
        ("kw", "in"),
        ("ident", "In"),
        ("kw", "like"),
        ("ident", "Like"),
        ("kw", "exists"),
    ]
    with pytest.raises(ExprError, match="keywords are written in lower or upper case"):
        parse("a > 1 And b < 2")


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("age == ", 7, "expected a value after '==', found end of expression"),
        ("", None, None),
        ("(a > 1", 6, "expected ')' to close the '(' at position 0"),
        ("a > 1)", 5, "unexpected ')' with nothing to close"),
        ("a >", 3, "expected a value after '>'"),
        ("and a", 0, "expected a value at the start of the expression"),
        ("a > 1 b", 6, "expected an operator or the end of the expression, found 'b'"),
        ("a == b == c", 7, "cannot be chained"),
        ("1 < x > 2", 6, "both comparisons in one direction"),
        ("1 < x < 2 < 3", 10, "a range compares one value with two bounds"),
        ("a = 1", 2, "use '==' to compare"),
        ("a & 1", 2, "bitwise and (&) is not supported"),
        ("~a", 0, "bitwise not (~) is not supported"),
        ("a << 1", 2, "shift (<<) is not supported"),
        ("a =~ 'x'", 2, "regular-expression match"),
        ("x in [1 2]", 8, "expected ',' or ']' in the list opened at position 5"),
        ("x not 1", 6, "expected 'in' after 'not'"),
        ("a is nul", 5, "expected 'null' or 'not null' after 'is'"),
        ("meta[-1]", 5, "expected a quoted key or an integer index"),
        ("meta[01]", 5, "decimal without leading zeros"),
        ("meta['']", 5, "a JSON key must not be empty"),
        ("meta['a'", 8, "expected ']' to close the '[' at position 4"),
        ("'abc", 0, "unterminated string literal"),
        ('"ab\ncd"', 0, "unterminated string literal"),
        (r"'\q'", 1, "invalid escape sequence '\\q'"),
        (r"'\x4'", 1, "\\x needs two hexadecimal digits"),
        (r"'\ud800'", 1, "not a Unicode scalar value"),
        (r"'\xff'", 0, "not valid UTF-8"),
        ("9223372036854775808", 0, "out of range for INT64"),
        ("1e999", 0, "out of range"),
        ("$x > 1", 0, "unexpected character '$'"),
        ("a # b", 2, "unexpected character '#'"),
        ("{1}", 1, "expected a parameter name after '{'"),
        ("{a", 2, "expected '}'"),
        ("foo(1)", 0, "unknown function 'foo'"),
        ("Json_Contains(a, 1)", 0, "lower or upper case: json_contains or JSON_CONTAINS"),
        ("json_contains(a)", 13, "json_contains takes 2 arguments, got 1"),
        ("array_length(a, b)", 12, "array_length takes 1 argument, got 2"),
        ("text_match(t, 'x')", 0, "TEXT_MATCH is not supported"),
        ("PHRASE_MATCH(t, 'x', 1)", 0, "PHRASE_MATCH is not supported"),
        ("random_sample(0.1)", 0, "RANDOM_SAMPLE is not supported"),
        ("ST_CONTAINS(g, 'POINT(1 1)')", 0, "geometry fields are not supported"),
        ("element_filter(s, $[a] > 1)", 0, "ARRAY of STRUCT"),
        ("ts > ISO '2025-01-01'", 5, "TIMESTAMPTZ"),
    ],
)
def test_errors_name_position_and_expectation(text, position, message):
    if message is None:
        assert parse(text) is None and parse("  \n\t ") is None  # empty filter: all rows
        return
    with pytest.raises(ExprError) as info:
        parse(text)
    err = info.value
    assert err.position == position, str(err)
    assert message in err.detail
    assert str(err) == f"at position {position}: {err.detail}"
    assert err.code == 1100 and isinstance(err, ValueError)


def test_nesting_up_to_the_limit_parses_and_beyond_is_an_error():
    # Milvus accepts 100 nested parentheses by default; so does the default limit here.
    assert parse("(" * 100 + "a > 1" + ")" * 100) is not None
    assert parse("not " * 100 + "(a > 1)") is not None
    for text in (
        "(" * 129 + "a" + ")" * 129,
        "not " * 200 + "a",
        "-" * 300 + "1",
        "[" * 300 + "]" * 300,
        "x + " * 200 + "1",
        "a" + "[0]" * 10 + " + 1" * 130,
    ):
        with pytest.raises(ExprError, match="nests deeper than 128 levels"):
            parse(text)
    with pytest.raises(ExprError, match="deeper than 5"):
        parse("((((((a))))))", Limits(max_depth=5))


def test_long_flat_chains_are_cheap():
    text = " or ".join(f"x == {i}" for i in range(20_000))
    t0 = time.perf_counter()
    node = parse(text)
    assert len(node.items) == 20_000 and node.depth == 3
    assert time.perf_counter() - t0 < 10


def test_size_limits():
    limits = Limits(max_length=100, max_list=3, max_string=5)
    with pytest.raises(ExprError, match="exceeds the limit of 100"):
        parse("a" * 101, limits)
    with pytest.raises(ExprError, match="more than 3 values"):
        parse("x in [1, 2, 3, 4]", limits)
    with pytest.raises(ExprError, match="exceeds the limit of 5"):
        parse("x == 'abcdef'", limits)
    assert parse("x in [1, 2, 3]", limits) is not None
    with pytest.raises(ExprError, match="must be a string"):
        parse(b"a > 1")  # type: ignore[arg-type]


def test_parse_is_memoised_and_trees_are_immutable():
    a, b = parse("a > 1 and b < 2"), parse("a > 1 and b < 2")
    assert a is b
    with pytest.raises(AttributeError):
        a.op = "or"  # type: ignore[misc]
