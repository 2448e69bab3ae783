"""Filter evaluation over ``scan_n`` rows (1M at full size) versus one exact vector search.

Typical filters a query node evaluates per segment, vectorised (:mod:`vecstore.expr`):

- ``range``: ``age >= 18 and age < 65`` on an INT32 column;
- ``in100``: ``id in [...100 values...]`` on the INT64 primary key (plus ``compile_in100``: the
  parse and type check of that filter text);
- ``like_prefix``: ``name like "prod-1%"`` on a VARCHAR column;
- ``json_cold``: ``meta["price"] > 50`` where the JSON column is decoded inside every round
  (Arrow's JSON reader; what a first query on a segment pays);
- ``json_warm``: the same with a :class:`~vecstore.expr.JsonCache` already holding the decoded
  column (every later query on an immutable segment);
- ``json_per_row``: the per-row ``json.loads`` fallback (a key holding numbers and strings) on a
  tenth of the rows: its cost per row is the number to read;
- ``knn``: one exact search, ``vecstore.knn(q, base, 10, threads=1)`` over ``scan_n`` x 128
  float32 (the same shape as bench_scan), which a filter should beat by a wide margin.

All in the group ``expr``; ``extra_info`` holds the row count and rows/s of the best round. The
test asserts results (against numpy), never timings.

    python -m pytest bench/bench_expr.py --benchmark-group-by=group
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

import benchutil
import vecstore
from vecstore.expr import DataType, Field, JsonCache, Schema, compile_filter

SCHEMA = Schema(
    [
        Field("id", DataType.INT64),
        Field("age", DataType.INT32),
        Field("name", DataType.VARCHAR),
        Field("meta", DataType.JSON),
    ],
    primary_key="id",
    enable_dynamic_field=False,
)
COLORS = ["red", "green", "blue", "black"]


@pytest.fixture(scope="module")
def expr_data(sizes):
    """An Arrow table of ``scan_n`` rows and the numpy columns it was built from."""
    rng = benchutil.make_rng("expr")
    n = sizes.scan_n
    ids = rng.permutation(n).astype(np.int64)
    age = rng.integers(0, 100, n, dtype=np.int32)
    name = np.char.add("prod-", rng.integers(0, 100_000, n).astype(str))
    price = np.round(rng.random(n) * 100, 2)
    color = np.array(COLORS)[rng.integers(0, len(COLORS), n)]
    texts = [
        json.dumps({"price": float(p), "color": str(c), "n": int(k)})
        for p, c, k in zip(price, color, age)
    ]
    table = pa.table(
        {"id": ids, "age": age, "name": pa.array(name.tolist()), "meta": pa.array(texts)}
    )
    return table, {"id": ids, "age": age, "name": name, "price": price}


def _describe(benchmark, name, rows, expr):
    benchmark.group = "expr"
    benchmark.extra_info.update(
        case=name, n=rows, expr=expr[:80], scale=benchutil.env_scale(), threads=1
    )


def _rows_per_s(benchmark, rows):
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["rows_per_s_best"] = rows / stats.stats.min


def _run(benchmark, name, table, expr, want, cache=None, params=None, rounds=None):
    f = compile_filter(expr, SCHEMA, params)
    _describe(benchmark, name, table.num_rows, expr)
    f.evaluate(table, cache=cache)  # warm-up (and fills the cache when there is one)
    if rounds is None:
        mask = benchmark(f.evaluate, table, cache=cache)
    else:
        mask = benchmark.pedantic(
            f.evaluate, args=(table,), kwargs={"cache": cache}, rounds=rounds, iterations=1
        )
    _rows_per_s(benchmark, table.num_rows)
    np.testing.assert_array_equal(mask, want)


def test_expr_range(benchmark, expr_data):
    table, cols = expr_data
    want = (cols["age"] >= 18) & (cols["age"] < 65)
    _run(benchmark, "range", table, "age >= 18 and age < 65", want)


def test_expr_in100(benchmark, expr_data):
    table, cols = expr_data
    values = benchutil.make_rng("expr-in").choice(len(cols["id"]), 100, replace=False)
    expr = f"id in [{', '.join(str(int(v)) for v in values)}]"
    _run(benchmark, "in100", table, expr, np.isin(cols["id"], values))


def test_expr_compile_in100(benchmark):
    values = ", ".join(str(i * 7919) for i in range(100))
    expr = f"id in [{values}] and age > 18"
    benchmark.group = "expr"
    benchmark.extra_info.update(case="compile_in100", expr=expr[:80])
    # Bypass the parse memo so each round really parses.
    from vecstore.expr.checker import check
    from vecstore.expr.parser import parse
    from vecstore.expr.schema import DEFAULT_LIMITS

    plan = benchmark(lambda: check(parse(expr), SCHEMA, None, DEFAULT_LIMITS))
    assert len(plan.items[0].values) == 100


def test_expr_like_prefix(benchmark, expr_data):
    table, cols = expr_data
    want = np.char.startswith(cols["name"], "prod-1")
    _run(benchmark, "like_prefix", table, 'name like "prod-1%"', want)


def test_expr_json_cold(benchmark, expr_data):
    table, cols = expr_data
    _run(benchmark, "json_cold", table, 'meta["price"] > 50', cols["price"] > 50, rounds=3)


def test_expr_json_warm(benchmark, expr_data):
    table, cols = expr_data
    _run(benchmark, "json_warm", table, 'meta["price"] > 50', cols["price"] > 50, cache=JsonCache())


def test_expr_json_per_row(benchmark, expr_data):
    table, cols = expr_data
    n = max(1_000, table.num_rows // 10)
    # Every 100th row stores the price as a string: Arrow's reader refuses the key, and each
    # 65,536-row block holding one is decoded with json.loads row by row.
    texts = table.column("meta").to_pylist()[:n]
    texts = [
        t if i % 100 else t.replace('"price": ', '"price": "').replace(', "color"', '", "color"')
        for i, t in enumerate(texts)
    ]
    small = table.slice(0, n).set_column(3, "meta", pa.array(texts))
    want = (cols["price"][:n] > 50) & (np.arange(n) % 100 != 0)
    _run(benchmark, "json_per_row", small, 'meta["price"] > 50', want, rounds=3)


def test_expr_knn_reference(benchmark, scan_data, sizes):
    query, base = scan_data
    benchutil.describe(
        benchmark,
        dim=base.shape[1],
        n=base.shape[0],
        nq=1,
        k=sizes.k,
        kind="float32",
        metric="L2",
        threads=1,
        case="knn",
    )
    benchmark.group = "expr"

    def run():
        return vecstore.knn(query, base, sizes.k, threads=1)

    run()
    ids, dist = benchmark(run)
    _rows_per_s(benchmark, base.shape[0])
    assert ids.shape == (1, sizes.k) and (np.diff(dist[0]) >= 0).all()
