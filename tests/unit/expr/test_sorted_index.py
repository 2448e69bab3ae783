"""The scalar index (SortedColumn) answers exactly what the scanning evaluator answers, for every
comparison and ``in`` list on INT64 and VARCHAR columns, at every selectivity (where it declines,
the scan answers)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from vecstore.expr import DataType, Field, Schema, SortedColumn, compile_filter

SCHEMA = Schema([Field("x", DataType.INT64), Field("s", DataType.VARCHAR),
                 Field("y", DataType.INT64, nullable=True)])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 5000
    x = rng.integers(-50, 1000, n)
    s = np.array([f"k{v:04d}" for v in rng.integers(0, 300, n)], dtype=object)
    y = pa.array(rng.integers(0, 10, n), mask=rng.random(n) < 0.2)
    table = pa.table({"x": x, "s": pa.array(s, pa.string()), "y": y})
    index = {"x": SortedColumn(x), "s": SortedColumn(s)}
    return table, index


EXPRS = ["x == 7", "x != 7", "x < -40", "x <= 0", "x > 990", "x >= 500", "x < 500",
         "x in [1, 2, 3, 999]", "x not in [1, 2]", "s == 'k0007'", "s < 'k0003'",
         "s in ['k0001', 'k0299', 'nope']", "s >= 'k0290'", "x < 100 and s > 'k0200'",
         "x > 900 or s == 'k0001'", "not (x < 10)", "y == 3", "y < 5 and x < 50",
         "x == 5000", "s > 'zzz'"]


@pytest.mark.parametrize("expr", EXPRS)
def test_indexed_equals_scan(data, expr):
    table, index = data
    f = compile_filter(expr, SCHEMA)
    used = []

    def lookup(name):
        used.append(name)
        return index.get(name)

    np.testing.assert_array_equal(f.evaluate(table, index=lookup), f.evaluate(table))
    if expr in ("x == 7", "x in [1, 2, 3, 999]", "s == 'k0007'", "x < 100 and s > 'k0200'"):
        assert used  # the index was asked (and answers these: see the counting test below)
    assert "y" not in used  # a nullable column is never looked up


def test_selective_lookups_are_answered_by_the_index(data):
    table, index = data
    answered = []

    class Counting(SortedColumn):
        def compare(self, op, value):
            got = super().compare(op, value)
            answered.append(got is not None)
            return got

    counting = Counting(table.column("x").to_numpy())
    f = compile_filter("x == 7 or x > 990", SCHEMA)
    np.testing.assert_array_equal(f.evaluate(table, index=lambda n: counting if n == "x"
                                             else None), f.evaluate(table))
    assert answered == [True, True]


def test_lookup_declines_broad_answers_and_other_types():
    col = SortedColumn(np.arange(1000, dtype=np.int64))
    assert col.compare("<", 500) is None  # half the rows: a scan is as cheap
    assert col.compare("<", 10).sum() == 10
    assert col.compare("!=", 3).sum() == 999  # cleared complement
    assert col.compare("<", "a") is None and col.compare("<", True) is None
    assert col.isin((1, 2.5)) is None
    assert col.isin((1, 2, 2)).sum() == 2
