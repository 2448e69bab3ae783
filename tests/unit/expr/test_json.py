"""JSON paths, JSON functions and dynamic-field keys: Milvus's per-type rules, both JSON decoding
paths (Arrow's reader and the per-row fallback), the decoded-column cache, and odd JSON text."""

from __future__ import annotations

import json
import threading

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.expr.conftest import select
from vecstore.errors import InvalidArgument
from vecstore.expr import DataType, Field, JsonCache, JsonDoc, Schema, compile_filter, jsoncol

SCHEMA = Schema(
    [Field("id", DataType.INT64), Field("meta", DataType.JSON, nullable=True)],
    primary_key="id",
    enable_dynamic_field=True,
)

# One JSON type per key: Arrow's reader takes it whole.
UNIFORM = [
    {
        "id": 1,
        "meta": {
            "a": 1,
            "s": "x",
            "b": True,
            "arr": [1, 2, 3],
            "o": {"x": 1},
            "n": None,
            "0": "zero",
            "big": 9007199254740993,
        },
        "$meta": {"k": 1, "tag": "x"},
    },
    {
        "id": 2,
        "meta": {"a": 2, "s": "y", "b": False, "arr": [], "o": {}, "t": "2024-01-01"},
        "$meta": {"k": 2},
    },
    {
        "id": 3,
        "meta": {"a": -3, "s": "", "arr": [4], "o": {"x": None}, "t": "2024-01-02 10:00:00"},
        "$meta": {},
    },
    {"id": 4, "meta": {}, "$meta": {"k": 3}},
    {"id": 5, "meta": None, "$meta": {"k": 1}},
    {
        "id": 6,
        "meta": {"a": 1, "s": "x\ny", "b": True, "arr": [1, 1], "o": {"x": 2}, "n": None},
        "$meta": {},
    },
]
# One key of every type: Arrow refuses it, the per-row path decodes it.
MIXED = [
    {"id": i + 1, "meta": m, "$meta": {}}
    for i, m in enumerate(
        [
            {"v": 1},
            {"v": 1.0},
            {"v": "1"},
            {"v": True},
            {"v": [1, "a"]},
            {"v": {"x": 1}},
            {"v": None},
            {},
            {"v": [1.0, 2]},
            {"v": 2.5},
            None,
        ]
    )
]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ('meta["a"] == 1', [1, 6]),
        ('meta["a"] >= 2', [2]),
        ('meta["a"] < 0', [3]),
        ('meta["a"] != 1', [2, 3, 4]),  # a missing key is != anything; a NULL column is not
        ('not (meta["a"] == 1)', [2, 3, 4]),
        ('meta["a"] > 0.5', [1, 2, 6]),
        ('meta["s"] == "x"', [1]),
        ('meta["s"] like "x%"', [1, 6]),
        ('meta["s"] > ""', [1, 2, 6]),
        ('meta["b"] == true', [1, 6]),
        ('meta["b"] != true', [2, 3, 4]),
        ('json_contains(meta["arr"], 1)', [1, 6]),
        ('JSON_CONTAINS_ALL(meta["arr"], [1, 2])', [1]),
        ('json_contains_any(meta["arr"], [4, 9])', [3]),
        ('json_contains_all(meta["arr"], [])', [1, 2, 3, 6]),
        ('array_contains(meta["arr"], 4)', [3]),
        ('array_length(meta["arr"]) == 0', [2, 4]),  # not an array (or missing) counts as 0
        ('meta["arr"][0] == 1', [1, 6]),
        ('meta["arr"]["0"] == 1', [1, 6]),  # "0" indexes an array, as in a JSON pointer
        ('meta["arr"][2] > 2', [1]),
        ('meta["arr"][5] != 1', [1, 2, 3, 4, 6]),  # JSON: a missing element is != anything
        ('meta["arr"] == [1, 1]', [6]),
        ('meta["arr"] == []', [2]),
        ('meta["arr"] != [1, 1]', [1, 2, 3, 4]),
        ('meta["arr"] > [1]', []),
        ('meta["o"]["x"] == 1', [1]),
        ('meta["o"]["x"] in [1, 2]', [1, 6]),
        ('exists meta["o"]', [1, 6]),  # {} and {"x": null} hold nothing
        ('exists meta["o"]["x"]', [1, 6]),
        ('exists meta["n"]', []),
        ('meta["n"] is null', [1, 2, 3, 4, 5, 6]),
        ('meta["o"] is not null', [1, 6]),
        ('not exists meta["a"]', [4, 5]),
        ("meta is null", [5]),
        ("meta is not null", [1, 2, 3, 4, 6]),
        ("meta[0] == 'zero'", [1]),
        ('meta["0"] == "zero"', [1]),
        ('meta["t"] == "2024-01-01"', [2]),  # date-like strings stay strings
        ('meta["t"] like "2024%"', [2, 3]),
        ('meta["big"] == 9007199254740993', [1]),  # ints compare exactly
        ('meta["big"] == 9007199254740992', []),
        ("1 <= meta['a'] < 2", [1, 6]),
        ("k == 1", [1, 5]),
        ("k > 1", [2, 4]),
        ("tag == 'x'", [1]),
        ("$meta['k'] == 2", [2]),
        ("exists k", [1, 2, 4, 5]),
        ("k is null", [3, 6]),
        ("k in [1, 3]", [1, 4, 5]),
        ("k + 1 == 2", [1, 5]),
        ("k * 2 > 3 and meta['a'] > 1", [2]),
    ],
)
def test_uniform_json(json_mode, expr, want):
    assert select(expr, UNIFORM, SCHEMA) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ('meta["v"] == 1', [1, 2]),  # ints and floats compare numerically
        ('meta["v"] != 1', [3, 4, 5, 6, 7, 8, 9, 10]),
        ('meta["v"] > 0', [1, 2, 10]),
        ('meta["v"] == "1"', [3]),
        ('meta["v"] == true', [4]),  # a bool is not the number 1
        ('meta["v"] == [1, "a"]', [5]),
        ('meta["v"] != [1, "a"]', [1, 2, 3, 4, 6, 7, 8, 9, 10]),
        ('meta["v"] in [1, "1"]', [1, 2, 3]),
        ('meta["v"] in [true]', [4]),
        ('meta["v"] in [[1.0, 2]]', [9]),
        ('json_contains(meta["v"], 1)', [5]),  # an int element only matches JSON ints
        ('json_contains(meta["v"], 1.0)', [5, 9]),  # a float matches any number
        ('json_contains_any(meta["v"], ["a", 2])', [5, 9]),
        ('json_contains_all(meta["v"], [1, "a"])', [5]),
        ('array_length(meta["v"]) == 2', [5, 9]),
        ('array_length(meta["v"]) == 0', [1, 2, 3, 4, 6, 7, 8, 10]),
        ('exists meta["v"]', [1, 2, 3, 4, 5, 6, 9, 10]),
        ('meta["v"] is null', [7, 8, 11]),
        ('meta["v"]["x"] == 1', [6]),
        ('meta["v"][0] == 1', [5, 9]),
        ('meta["v"] like "1%"', [3]),
        ('meta["v"] + 1 == 2', [1, 2]),
        ('meta["v"] + 1 != 2', [3, 4, 5, 6, 7, 8, 9, 10]),
        ('meta["v"] % 2 == 1', [1, 2]),
        ('not (meta["v"] == 1)', [3, 4, 5, 6, 7, 8, 9, 10]),
        ('1 < meta["v"] < 3', [10]),
        ("meta['v'] > 'a'", []),
    ],
)
def test_mixed_types_follow_milvus(json_mode, expr, want):
    assert select(expr, MIXED, SCHEMA) == want


def test_arrow_path_is_used_for_uniform_data_and_fallback_for_mixed():
    uniform = pa.array([json.dumps(r["meta"]) if r["meta"] is not None else None for r in UNIFORM])
    mixed = pa.array([json.dumps(r["meta"]) if r["meta"] is not None else None for r in MIXED])
    assert JsonDoc(uniform).slow_rows == 0
    assert JsonDoc(mixed).fast_rows == 0


def test_only_conflicting_blocks_fall_back(monkeypatch):
    monkeypatch.setattr(jsoncol, "BLOCK_ROWS", 4)
    docs = [{"a": i} for i in range(10)] + [{"a": "x"}] + [{"a": i} for i in range(5)]
    texts = pa.array([json.dumps(d) for d in docs])
    doc = JsonDoc(texts)
    assert (doc.fast_rows, doc.slow_rows) == (12, 4)
    rows = [{"id": i, "meta": d} for i, d in enumerate(docs)]
    assert select("meta['a'] > 7 or meta['a'] == 'x'", rows, SCHEMA) == [8, 9, 10]


@pytest.mark.parametrize(
    "texts",
    [
        ["null", '{"a": 1}'],  # pyarrow 26 crashes on a block starting with a `null` document
        [" null", '{"a": 1}'],
        ["[1, 2]", '{"a": 1}'],  # a top-level array
        ['{"a": 1}', '"s"'],
        ['{"a": [null]}', '{"a": [null, null]}', "{}", '{"a": [null]}'],  # list<null> is broken
        ['{"a": 1, "a": 2}', '{"a": 1}'],  # duplicate keys: the last one wins
        ["", '{"a": 1}'],  # empty text holds nothing
    ],
)
def test_odd_json_text_is_decoded_safely(texts):
    schema = Schema([Field("meta", DataType.JSON)])
    table = pa.table({"meta": pa.array(texts)})
    rows = [{"meta": json.loads(t) if t else None} for t in texts]
    for expr in (
        'meta["a"] == 1',
        'exists meta["a"]',
        "json_contains(meta, 1)",
        "meta[0] == 1",
        'array_length(meta["a"]) == 1',
        'meta["a"] == 2',
    ):
        f = compile_filter(expr, schema)
        got = f.evaluate(table)
        if texts[0] != "":  # the reference reads "" as NULL; the column is not NULL
            np.testing.assert_array_equal(got, f.evaluate_rows(rows), err_msg=expr)


def test_json_text_as_binary_or_pretty_printed_or_large():
    docs = [{"a": 1, "s": "x\ny"}, {"a": 2}, None]
    schema = Schema([Field("meta", DataType.JSON, nullable=True)])
    for arr in (
        pa.array([json.dumps(d) if d else None for d in docs], pa.large_string()),
        pa.array([json.dumps(d).encode() if d else None for d in docs], pa.binary()),
        pa.array([json.dumps(d).encode() if d else None for d in docs], pa.large_binary()),
        pa.array([json.dumps(d, indent=4) if d else None for d in docs]),
        pa.array([json.dumps(d, indent=1).encode() if d else None for d in docs], pa.binary()),
    ):
        table = pa.table({"meta": arr})
        assert compile_filter("meta['a'] == 1 or meta['a'] > 1", schema).evaluate(
            table
        ).tolist() == [True, True, False]
        assert compile_filter("meta['s'] == 'x\\ny'", schema).evaluate(table).tolist() == [
            True,
            False,
            False,
        ]


def test_invalid_json_names_the_row():
    table = pa.table({"meta": pa.array(['{"a": 1}', '{"a": '])})
    with pytest.raises(InvalidArgument, match="JSON column 'meta', row 1: not valid JSON"):
        compile_filter("meta['a'] == 1", Schema([Field("meta", DataType.JSON)])).evaluate(table)
    with pytest.raises(InvalidArgument, match="must hold JSON text"):
        compile_filter("meta['a'] == 1", Schema([Field("meta", DataType.JSON)])).evaluate(
            pa.table({"meta": pa.array([1, 2])})
        )


def test_fast_path_reads_integral_floats_mixed_with_ints_as_ints():
    """The documented limit of the Arrow path: a key mixing ints and floats is read as float64,
    so a stored 1.0 next to ints looks like the int 1 to json_contains (Milvus: no match)."""
    schema = Schema([Field("meta", DataType.JSON)])
    table = pa.table({"meta": pa.array(['{"v": [1.0]}', '{"v": [2]}', '{"v": [1.5]}'])})
    f = compile_filter("json_contains(meta['v'], 1)", schema)
    assert f.evaluate(table).tolist() == [True, False, False]
    assert f.evaluate_rows(
        [{"meta": {"v": [1.0]}}, {"meta": {"v": [2]}}, {"meta": {"v": [1.5]}}]
    ).tolist() == [False, False, False]


def test_cache_reuses_decoding_and_never_mixes_columns(monkeypatch):
    calls = []
    real = jsoncol._read_fast

    def counting(arr):
        calls.append(len(arr))
        return real(arr)

    monkeypatch.setattr(jsoncol, "_read_fast", counting)
    schema = Schema([Field("meta", DataType.JSON)])
    a = pa.table({"meta": pa.array(['{"x": 1}', '{"x": 2}'])})
    b = pa.table({"meta": pa.array(['{"x": 2}', '{"x": 1}'])})
    cache = JsonCache(max_columns=1)
    f1, f2 = compile_filter("meta['x'] == 1", schema), compile_filter("meta['x'] > 1", schema)
    assert f1.evaluate(a, cache=cache).tolist() == [True, False]
    assert f2.evaluate(a, cache=cache).tolist() == [False, True]
    assert len(calls) == 1 and len(cache) == 1
    assert f1.evaluate(b, cache=cache).tolist() == [False, True]  # other buffers, other entry
    assert f1.evaluate(a.slice(1), cache=cache).tolist() == [False]  # a slice is other data
    assert len(calls) == 3 and len(cache) == 1  # the bound evicts
    cache.clear()
    assert len(cache) == 0
    chunked = pa.Table.from_batches(a.to_batches() + b.to_batches())
    assert chunked.column("meta").num_chunks == 2
    for _ in range(2):
        assert f1.evaluate(chunked, cache=cache).tolist() == [True, False, False, True]
    assert len(calls) == 4  # a column of several chunks is decoded once too

    cache = JsonCache()
    results, errors = [], []

    def worker():
        try:
            for _ in range(20):
                results.append(f1.evaluate(a, cache=cache).tolist())
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(r == [True, False] for r in results)
