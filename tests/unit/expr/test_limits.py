"""Hostile input: every bad filter is an ExprError, bounded in time, never a RecursionError or a
crash; long strings and lists cost linear time."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest

from vecstore.expr import DEFAULT_LIMITS, DataType, ExprError, Field, Schema, compile_filter

SCHEMA = Schema(
    [Field("id", DataType.INT64), Field("s", DataType.VARCHAR), Field("meta", DataType.JSON)],
    primary_key="id",
    enable_dynamic_field=True,
)


def test_defaults():
    assert (
        DEFAULT_LIMITS.max_length,
        DEFAULT_LIMITS.max_depth,
        DEFAULT_LIMITS.max_list,
        DEFAULT_LIMITS.max_string,
    ) == (1 << 20, 128, 100_000, 65_536)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 100_000,
        ")" * 100_000,
        "(" * 5000 + "id > 1" + ")" * 5000,
        "not " * 50_000 + "id > 1",
        "!" * 100_000 + "(id > 1)",
        "-" * 100_000 + "id > 1",
        "[" * 50_000,
        "id in " + "[" * 20_000 + "]" * 20_000,
        "id + " * 50_000 + "1 > 0",
        "id ** " * 50_000 + "1 > 0",
        "json_contains(meta, " * 10_000 + "1" + ")" * 10_000,
        "exists " * 10_000 + "meta['a']",
        "id > 1 " * 50_000,
        "'" + "a" * 70_000 + "'",
        "id > 1 or " * 200_000 + "id > 2",  # over max_length
    ],
)
def test_hostile_text_is_a_bounded_error(text):
    t0 = time.perf_counter()
    with pytest.raises(ExprError):
        compile_filter(text, SCHEMA)
    assert time.perf_counter() - t0 < 20


def test_long_paths_are_linear():
    f = compile_filter("meta" + "['a']" * 50_000 + " > 1", SCHEMA)
    table = pa.table({"id": pa.array([1]), "s": pa.array(["x"]), "meta": pa.array(['{"a": 2}'])})
    assert f.evaluate(table).tolist() == [False]


def test_large_in_lists_up_to_the_limit():
    values = ", ".join(str(i) for i in range(100_000))
    t0 = time.perf_counter()
    f = compile_filter(f"id in [{values}]", SCHEMA)
    parse_s = time.perf_counter() - t0
    table = pa.table({"id": pa.array(np.arange(0, 300_000, 3))})
    mask = f.evaluate(table)
    assert mask.sum() == 33_334 and parse_s < 30
    with pytest.raises(ExprError, match="more than 100000 values"):
        compile_filter(f"id in [{values}, 100000]", SCHEMA)
    with pytest.raises(ExprError, match="list of 100001 values exceeds the limit"):
        compile_filter("id in {v}", SCHEMA, {"v": list(range(100_001))})
    assert (
        compile_filter("id in {v}", SCHEMA, {"v": np.arange(100_000)}).evaluate(table).sum()
        == 33_334
    )


def test_long_strings_and_patterns_cost_linear_time():
    long = "ab" * 30_000
    table = pa.table(
        {"id": pa.array([1, 2]), "s": pa.array([long + "c", long]), "meta": pa.array(["{}", "{}"])}
    )
    pattern = "%a" * 1000 + "%c"  # exponential for a backtracking matcher, linear for RE2
    t0 = time.perf_counter()
    f = compile_filter(f"s like '{pattern}'", SCHEMA)
    assert f.evaluate(table).tolist() == [True, False]
    assert compile_filter(f"s == '{long}'", SCHEMA).evaluate(table).tolist() == [False, True]
    assert time.perf_counter() - t0 < 20


def test_random_token_soup_only_raises_expr_error():
    rng = np.random.default_rng(11)
    atoms = [
        "id",
        "s",
        "meta",
        "k",
        "[",
        "]",
        "(",
        ")",
        "{",
        "}",
        ",",
        "'a'",
        '"b"',
        "1",
        "-2",
        "3.5",
        "true",
        "and",
        "or",
        "not",
        "in",
        "like",
        "exists",
        "is",
        "null",
        "==",
        "!=",
        "<",
        ">=",
        "+",
        "*",
        "/",
        "%",
        "**",
        "!",
        "&&",
        "||",
        "json_contains",
        "array_length",
        "'%'",
        "$meta",
        "0x1",
        "1e3",
        "\\",
        "'",
        '"',
        "é",
        "\x00",
        "=",
        "~",
        "&",
    ]
    for _ in range(3000):
        text = " ".join(atoms[int(i)] for i in rng.integers(0, len(atoms), rng.integers(1, 12)))
        try:
            compile_filter(text, SCHEMA, {"a": 1})
        except ExprError:
            pass


def test_random_bytes_only_raise_expr_error():
    rng = np.random.default_rng(12)
    for _ in range(2000):
        text = bytes(rng.integers(0, 128, rng.integers(0, 40))).decode("ascii")
        try:
            compile_filter(text, SCHEMA)
        except ExprError:
            pass
