"""validate_rows: MilvusClient.insert's list of dicts, checked whole and returned as Arrow."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.schema.util import basic_schema, data_error, vectors
from vecstore.schema import CollectionSchema, DataType, Function, FunctionType, validate_rows


def rows_for(rng, n, **extra):
    vecs = vectors(rng, n)
    return [{"id": i, "vec": vecs[i].tolist(), "title": f"t{i}", **extra} for i in range(n)]


def test_rows_become_the_canonical_table(schema, rng):
    rows = rows_for(rng, 5)
    t = schema.validate_rows(rows)
    assert t.column_names == ["id", "vec", "title"]
    assert t.schema.field("id").type == pa.int64() and not t.schema.field("id").nullable
    assert t.schema.field("vec").type == pa.list_(pa.float32(), 4)
    assert t.schema.field("title").nullable
    assert t.column("id").to_pylist() == list(range(5))
    got = t.column("vec").combine_chunks().values.to_numpy().reshape(5, 4)
    np.testing.assert_array_equal(got, np.asarray([r["vec"] for r in rows], np.float32))
    assert validate_rows(schema, rows).equals(t)


def test_a_single_dict_is_one_row(schema, rng):
    t = schema.validate_rows(rows_for(rng, 1)[0])
    assert t.num_rows == 1


@pytest.mark.parametrize("bad", ["abc", 5, None])
def test_rows_must_be_dicts(schema, bad):
    with data_error("rows must be a dict or a list of dicts"):
        schema.validate_rows(bad)


def test_each_row_must_be_a_dict(schema, rng):
    rows = rows_for(rng, 3)
    rows[2] = [1, [0.0] * 4, "x"]
    with data_error("expected Dict, got 'list'", row=2):
        schema.validate_rows(rows)


def test_missing_required_field_names_field_and_row(schema, rng):
    rows = rows_for(rng, 4)
    del rows[2]["vec"]
    with data_error(
        "Insert missed an field `vec` to collection without set nullable==true", field="vec", row=2
    ):
        schema.validate_rows(rows)
    rows = [{"id": 1, "title": "x"}]
    with data_error("Insert missed an field `vec`", field="vec", row=0):
        schema.validate_rows(rows)


def test_missing_or_none_nullable_field_is_null(schema, rng):
    rows = rows_for(rng, 3)
    del rows[0]["title"]
    rows[1]["title"] = None
    t = schema.validate_rows(rows)
    assert t.column("title").to_pylist() == [None, None, "t2"]


def test_none_in_a_required_field_is_refused(schema, rng):
    rows = rows_for(rng, 3)
    rows[1]["vec"] = None
    with data_error("None is not a valid value: the field is not nullable", field="vec", row=1):
        schema.validate_rows(rows)


def test_default_value_fills_missing_and_none(rng):
    s = basic_schema()
    s.add_field("age", DataType.INT32, default_value=np.int32(18))
    s.add_field("status", DataType.VARCHAR, max_length=10, default_value="active", nullable=True)
    rows = rows_for(rng, 3)
    rows[0]["age"], rows[0]["status"] = 30, "gone"
    rows[1]["age"], rows[1]["status"] = None, None
    t = s.validate_rows(rows)
    assert t.column("age").to_pylist() == [30, 18, 18]
    assert t.column("status").to_pylist() == ["gone", "active", "active"]
    assert t.schema.field("age").type == pa.int32() and t.column("age").null_count == 0


def test_unknown_field_without_dynamic_field(schema, rng):
    rows = rows_for(rng, 3)
    rows[1]["color"] = "red"
    with data_error(
        "Attempt to insert an unexpected field `color` to collection without "
        "enabling dynamic field",
        field="color",
        row=1,
    ):
        schema.validate_rows(rows)


def test_dynamic_keys_go_to_meta(rng):
    s = basic_schema(enable_dynamic_field=True)
    rows = rows_for(rng, 3)
    rows[0]["color"] = "red"
    rows[2].update(n=np.int64(3), tags=np.array([1.5, 2.0]), nested={"é": [1, None]})
    t = s.validate_rows(rows)
    assert t.column_names == ["id", "vec", "title", "$meta"]
    meta = [json.loads(x) for x in t.column("$meta").to_pylist()]
    assert meta == [{"color": "red"}, {}, {"n": 3, "tags": [1.5, 2.0], "nested": {"é": [1, None]}}]
    assert t.schema.field("$meta").metadata[b"vecstore.dtype"] == b"JSON"
    assert s.validate_rows(rows_for(rng, 2)).column("$meta").to_pylist() == ["{}", "{}"]


def test_dynamic_values_must_be_json(rng):
    s = basic_schema(enable_dynamic_field=True)
    rows = rows_for(rng, 2)
    rows[1]["x"] = float("nan")
    with data_error("dynamic field values must be JSON values", field="$meta", row=1):
        s.validate_rows(rows)
    rows[1]["x"] = object()
    with data_error("is not JSON serializable", field="$meta", row=1):
        s.validate_rows(rows)


def test_meta_key_in_a_row_is_refused(rng):
    for dynamic in (True, False):
        s = basic_schema(enable_dynamic_field=dynamic)
        rows = rows_for(rng, 2)
        rows[1]["$meta"] = {"a": 1}
        with data_error("\\$meta", field="$meta", row=1):
            s.validate_rows(rows)


def test_function_output_may_not_be_given(rng):
    s = basic_schema()
    s.add_field("text", DataType.VARCHAR, max_length=20, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm25", FunctionType.BM25, "text", "sparse"))
    rows = rows_for(rng, 2, text="hello")
    t = s.validate_rows(rows)
    assert "sparse" not in t.column_names
    rows[1]["sparse"] = {1: 0.5}
    with data_error("unexpected function output field `sparse`", field="sparse", row=1):
        s.validate_rows(rows)


def test_auto_id_key_must_not_be_given(rng):
    s = basic_schema(auto_id=True)
    rows = rows_for(rng, 3)
    for r in rows[:2]:
        del r["id"]
    with data_error(
        "can not assign primary field data when auto id enabled and "
        "allow_insert_auto_id is false id",
        field="id",
        row=2,
    ):
        s.validate_rows(rows)
    for r in rows:
        r.pop("id", None)
    t = s.validate_rows(rows)
    assert t.column_names == ["vec", "title"]
    assert s.arrow_schema() == t.schema


def test_allow_insert_auto_id_keeps_given_keys(rng):
    s = basic_schema(auto_id=True)
    rows = rows_for(rng, 3)
    t = s.validate_rows(rows, allow_insert_auto_id=True)
    assert t.column("id").to_pylist() == [0, 1, 2]
    assert s.arrow_schema(include_auto_id=True) == t.schema
    del rows[1]["id"]
    with data_error("Insert missed an field `id`", field="id", row=1):
        s.validate_rows(rows, allow_insert_auto_id=True)


@pytest.mark.parametrize("pk_type", [DataType.INT64, DataType.VARCHAR])
def test_duplicate_primary_keys_in_a_batch(rng, pk_type):
    s = CollectionSchema()
    s.add_field("id", pk_type, is_primary=True, max_length=8)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    keys = [5, 7, 9, 7, 5] if pk_type == DataType.INT64 else ["a", "b", "c", "b", "a"]
    vecs = vectors(rng, 5)
    rows = [{"id": k, "vec": v} for k, v in zip(keys, vecs)]
    with data_error(
        "duplicate primary keys are not allowed in the same batch: .* is also in row 1",
        field="id",
        row=3,
    ):
        s.validate_rows(rows)
    t = s.validate_rows(rows, reject_duplicate_pks=False)  # Milvus's insert accepts them
    assert t.column("id").to_pylist() == keys


def test_varchar_max_length_counts_utf8_bytes(rng):
    s = basic_schema()
    rows = rows_for(rng, 3)
    rows[0]["title"] = "é" * 4  # 8 bytes: fits 8
    rows[1]["title"] = "🙂🙂"  # 8 bytes
    assert s.validate_rows(rows).column("title").to_pylist()[:2] == ["éééé", "🙂🙂"]
    rows[2]["title"] = "ééééé"  # 5 characters, 10 bytes: Milvus refuses, Milvus Lite accepts
    with data_error(
        "length of varchar field title exceeds max length, row number: 2, length: "
        "10, max length: 8",
        field="title",
        row=2,
    ):
        s.validate_rows(rows)


@pytest.mark.parametrize(
    ("dtype", "value", "match"),
    [
        (DataType.INT8, 128, r"the 1th element \(128\) out of range: \[-128, 127\]"),
        (DataType.INT16, -40000, r"out of range: \[-32768, 32767\]"),
        (DataType.INT32, 2**31, r"out of range: \[-2147483648, 2147483647\]"),
        (DataType.INT64, 2**63, "int64 cannot be read|cannot be read as int64"),
        (DataType.INT64, 1.5, r"should be a int64, but got a \{float\}"),
        (DataType.INT32, True, r"should be a int32, but got a \{bool\}"),
        (DataType.INT64, "3", r"should be a int64, but got a \{str\}"),
        (DataType.FLOAT, float("nan"), "value 'nan' is not a number or infinity"),
        (DataType.DOUBLE, float("-inf"), "value '-inf' is not a number or infinity"),
        (DataType.FLOAT, 1e300, r"is not a number or infinity \(FLOAT overflows\)"),
        (DataType.FLOAT, "1.0", r"should be a float, but got a \{str\}"),
        (DataType.BOOL, 1, r"should be a bool, but got a \{int\}"),
        (DataType.VARCHAR, 5, r"should be a string, but got a \{int\}"),
        (DataType.VARCHAR, b"x", r"should be a string, but got a \{bytes\}"),
    ],
)
def test_scalar_type_and_range_errors(rng, dtype, value, match):
    s = basic_schema()
    s.add_field("x", dtype, max_length=8)
    rows = rows_for(rng, 3)
    for r in rows:
        r["x"] = {DataType.BOOL: False, DataType.VARCHAR: "ok"}.get(dtype, 1)
    rows[1]["x"] = value
    with data_error(match, field="x", row=1):
        s.validate_rows(rows)


def test_scalar_conversions(rng):
    s = basic_schema()
    for name, dtype in (
        ("b", DataType.BOOL),
        ("i8", DataType.INT8),
        ("f", DataType.FLOAT),
        ("d", DataType.DOUBLE),
    ):
        s.add_field(name, dtype)
    rows = rows_for(rng, 2)
    rows[0].update(b=True, i8=np.int8(-128), f=1, d=np.float32(0.5))
    rows[1].update(b=np.bool_(False), i8=127, f=2.5, d=3)
    t = s.validate_rows(rows)
    assert t.schema.field("i8").type == pa.int8() and t.schema.field("f").type == pa.float32()
    assert t.column("b").to_pylist() == [True, False]
    assert t.column("i8").to_pylist() == [-128, 127]
    assert t.column("f").to_pylist() == [1.0, 2.5] and t.column("d").to_pylist() == [0.5, 3.0]


def test_json_field(rng):
    s = basic_schema()
    s.add_field("meta", DataType.JSON, nullable=True)
    rows = rows_for(rng, 5)
    values = [{"a": 1, "b": [1, 2]}, '{"x": "é"}', [1, "two"], None, np.array([1, 2])]
    for r, v in zip(rows, values):
        r["meta"] = v
    t = s.validate_rows(rows)
    assert t.column("meta").to_pylist() == [
        '{"a":1,"b":[1,2]}',
        '{"x": "é"}',
        '[1,"two"]',
        None,
        "[1,2]",
    ]
    for bad, match in (
        ("{not json", "Invalid JSON value"),
        ({1: "a"}, "JSON key must be str"),
        ({"x": float("inf")}, "replace NaN/infinity with None"),
        (
            {"x": "y" * 70000},
            r"the length \(70\d+\) of json field \(meta\) exceeds "
            r"max length \(65536\)",
        ),
    ):
        rows[2]["meta"] = bad
        with data_error(match, field="meta", row=2):
            s.validate_rows(rows)


def test_array_field(rng):
    s = basic_schema()
    s.add_field("nums", DataType.ARRAY, element_type=DataType.INT8, max_capacity=3)
    s.add_field(
        "tags",
        DataType.ARRAY,
        element_type=DataType.VARCHAR,
        max_capacity=2,
        max_length=4,
        nullable=True,
    )
    s.add_field("ws", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=2)
    rows = rows_for(rng, 3)
    rows[0].update(nums=[1, 2, 3], tags=["ab", "éé"], ws=[1, 2.5])
    rows[1].update(nums=np.array([-1], dtype=np.int16), tags=None, ws=())
    rows[2].update(nums=[], tags=[], ws=[0.25])
    t = s.validate_rows(rows)
    assert t.schema.field("nums").type == pa.list_(pa.int8())
    assert t.column("nums").to_pylist() == [[1, 2, 3], [-1], []]
    assert t.column("tags").to_pylist() == [["ab", "éé"], None, []]
    assert t.column("ws").to_pylist() == [[1.0, 2.5], [], [0.25]]
    for key, bad, match in (
        ("nums", [1, 2, 3, 4], r"the length \(4\) of 2th array exceeds max capacity \(3\)"),
        ("nums", [1, None], "array element 1 is None"),
        ("nums", [1, 200], r"the 1th element \(200\) out of range: \[-128, 127\]"),
        ("nums", [1.5], "should be a list of INT8"),
        ("nums", "abc", "should be a list"),
        (
            "tags",
            ["a", "ééé"],
            'length of Array array field "tags" exceeds max length, row '
            "number: 2, array index: 1, length: 6, max length: 4",
        ),
        ("ws", ["x"], "should be a list of DOUBLE"),
    ):
        saved = rows[2][key]
        rows[2][key] = bad
        with data_error(match, field=key, row=2):
            s.validate_rows(rows)
        rows[2][key] = saved


def test_geometry_and_timestamptz(rng):
    s = basic_schema()
    s.add_field("geo", DataType.GEOMETRY)
    s.add_field("ts", DataType.TIMESTAMPTZ)
    rows = rows_for(rng, 3)
    rows[0].update(geo="POINT (1 2)", ts="2025-01-31T12:00:00+08:00")
    rows[1].update(geo="polygon ((0 0, 1 0, 1 1, 0 0))", ts="2025-01-31T04:00:00Z")
    rows[2].update(geo=" LINESTRING (0 0, 1 1)", ts="2025-01-31T04:00:00")
    t = s.validate_rows(rows)
    assert t.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    want = dt.datetime(2025, 1, 31, 4, tzinfo=dt.timezone.utc)
    assert t.column("ts").to_pylist() == [want] * 3
    rows[2]["ts"] = dt.datetime(2025, 1, 31, 4)  # naive datetimes are UTC
    assert s.validate_rows(rows).column("ts").to_pylist() == [want] * 3
    rows[2]["geo"] = "CIRCLE (1)"
    with data_error("invalid Geometry data", field="geo", row=2):
        s.validate_rows(rows)
    rows[2]["geo"] = "POINT (0 0)"
    rows[2]["ts"] = "yesterday"
    with data_error("got invalid timestamptz string 'yesterday'", field="ts", row=2):
        s.validate_rows(rows)


def test_empty_batch_is_an_empty_table(schema):
    t = schema.validate_rows([])
    assert t.num_rows == 0 and t.schema == schema.arrow_schema()
