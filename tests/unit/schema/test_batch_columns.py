"""validate_columns: dicts of numpy/pyarrow columns, Arrow tables and DataFrames."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.schema.util import basic_schema, data_error, vectors
from vecstore.schema import DataType, validate_columns


def columns_for(rng, n):
    return {
        "id": np.arange(n, dtype=np.int64),
        "vec": vectors(rng, n),
        "title": np.array([f"t{i}" for i in range(n)]),
    }


def test_numpy_columns(schema, rng):
    cols = columns_for(rng, 100)
    t = schema.validate_columns(cols)
    assert t.num_rows == 100 and t.column_names == ["id", "vec", "title"]
    np.testing.assert_array_equal(t.column("id").to_numpy(), cols["id"])
    flat = t.column("vec").combine_chunks().values.to_numpy()
    np.testing.assert_array_equal(flat.reshape(100, 4), cols["vec"])
    assert validate_columns(schema, cols).equals(t)


def test_numpy_columns_are_converted_losslessly(schema, rng):
    cols = columns_for(rng, 10)
    cols["id"] = cols["id"].astype(np.uint8)
    cols["vec"] = cols["vec"].astype(np.float64)
    t = schema.validate_columns(cols)
    assert (
        t.schema.field("id").type == pa.int64()
        and t.schema.field("vec").type.value_type == pa.float32()
    )


def test_arrow_inputs_and_idempotence(schema, rng):
    t = schema.validate_columns(columns_for(rng, 20))
    assert schema.validate_columns(t).equals(t)
    assert schema.validate_columns(t.to_batches()[0]).equals(t)
    chunked = pa.Table.from_batches(t.slice(0, 7).to_batches() + t.slice(7).to_batches())
    assert chunked.column("vec").num_chunks == 2
    assert schema.validate_columns(chunked).equals(t)
    as_dict = {name: t.column(name).combine_chunks() for name in t.column_names}
    assert schema.validate_columns(as_dict).equals(t)
    rows = schema.validate_rows(t.to_pylist())
    assert rows.equals(t)


def test_sliced_arrow_columns(schema, rng):
    t = schema.validate_columns(columns_for(rng, 20))
    part = t.slice(5, 10)
    again = schema.validate_columns({n: part.column(n).combine_chunks() for n in part.column_names})
    assert again.to_pylist() == part.to_pylist()


def test_column_lengths_must_agree(schema, rng):
    cols = columns_for(rng, 5)
    cols["title"] = cols["title"][:4]
    with data_error(
        "The data fields length is inconsistent. previous length is 5, current length is 4",
        field="title",
    ):
        schema.validate_columns(cols)


@pytest.mark.parametrize("bad", [5, "abc", {"a": 1}])
def test_a_column_must_be_a_sequence(schema, rng, bad):
    cols = columns_for(rng, 3)
    cols["title"] = bad
    with data_error("a column must be a sequence of row values", field="title"):
        schema.validate_columns(cols)


def test_input_must_be_columnar(schema):
    with data_error("columns must be a dict of name -> values"):
        schema.validate_columns([1, 2, 3])


def test_numpy_range_and_type_errors_name_the_row(rng):
    s = basic_schema()
    s.add_field("small", DataType.INT8)
    s.add_field("f", DataType.FLOAT)
    cols = columns_for(rng, 6)
    cols["small"] = np.array([0, 1, 2, 300, 4, 5])
    cols["f"] = np.zeros(6)
    with data_error(r"the 3th element \(300\) out of range: \[-128, 127\]", field="small", row=3):
        s.validate_columns(cols)
    cols["small"] = np.zeros(6, np.uint64)
    cols["f"] = np.array([0, 1, np.inf, 0, 0, 0])
    with data_error("value 'inf' is not a number or infinity", field="f", row=2):
        s.validate_columns(cols)
    cols["f"] = np.zeros(6, dtype=np.complex64)
    with data_error("should be a float", field="f"):
        s.validate_columns(cols)
    cols["f"] = np.zeros(6)
    cols["id"] = np.array([0, 1, 2, 3, 4, 2**64 - 1], dtype=np.uint64)
    with data_error(r"the 5th element \(18446744073709551615\) out of range", field="id", row=5):
        s.validate_columns(cols)
    cols["id"] = pa.array(np.array([0, 1, 2, 3, 4, 2**64 - 1], dtype=np.uint64))
    with data_error(r"the 5th element \(18446744073709551615\) out of range", field="id", row=5):
        s.validate_columns(cols)


def test_nulls_in_arrow_columns(rng):
    s = basic_schema()
    s.add_field("n", DataType.INT64, default_value=-1)
    cols = columns_for(rng, 4)
    cols["n"] = pa.array([1, None, 3, None])
    cols["title"] = pa.array(["a", None, "c", None])
    t = s.validate_columns(cols)
    assert t.column("n").to_pylist() == [1, -1, 3, -1]
    assert t.column("title").to_pylist() == ["a", None, "c", None]
    cols["id"] = pa.array([1, 2, None, 4])
    with data_error("None is not a valid value", field="id", row=2):
        s.validate_columns(cols)


def test_missing_columns(schema, rng):
    cols = columns_for(rng, 3)
    del cols["title"]
    assert schema.validate_columns(cols).column("title").to_pylist() == [None] * 3
    del cols["vec"]
    with data_error("Insert missed an field `vec`", field="vec"):
        schema.validate_columns(cols)


def test_duplicate_keys_in_columns(schema, rng):
    cols = columns_for(rng, 5)
    cols["id"] = np.array([3, 1, 4, 1, 5])
    with data_error(
        "duplicate primary keys are not allowed in the same batch: 1 is also in row 1",
        field="id",
        row=3,
    ):
        schema.validate_columns(cols)
    assert schema.validate_columns(cols, reject_duplicate_pks=False).num_rows == 5


def test_unknown_columns_and_meta_column(rng):
    s = basic_schema(enable_dynamic_field=True)
    cols = columns_for(rng, 3)
    cols["color"] = ["red", None, "blue"]
    cols["$meta"] = ['{"a": 1}', {"b": [1, 2]}, "{}"]
    t = s.validate_columns(cols)
    meta = [json.loads(x) for x in t.column("$meta").to_pylist()]
    assert meta == [{"a": 1, "color": "red"}, {"b": [1, 2], "color": None}, {"color": "blue"}]
    assert s.validate_columns(t).equals(t)
    for bad, match in (
        (
            ['{"title": 1}', "{}", "{}"],
            "dynamic field name cannot include the static field name: title",
        ),
        (['{"$meta": 1}', "{}", "{}"], "cannot set json key to: \\$meta"),
        (["[1]", "{}", "{}"], "invalid dynamic field data, only json map is supported"),
        (["{x", "{}", "{}"], "Invalid JSON value"),
    ):
        cols["$meta"] = bad
        with data_error(match, field="$meta", row=0):
            s.validate_columns(cols)
    cols["$meta"] = ['{"color": 1}', "{}", "{}"]
    with data_error("dynamic key 'color' is given twice", field="color", row=0):
        s.validate_columns(cols)


def test_meta_column_without_dynamic_field(schema, rng):
    cols = columns_for(rng, 2)
    cols["$meta"] = ["{}", "{}"]
    with data_error(
        "without dynamic schema enabled, the field name cannot be set to \\$meta", field="$meta"
    ):
        schema.validate_columns(cols)
    del cols["$meta"]
    cols["extra"] = [1, 2]
    with data_error("Attempt to insert an unexpected field `extra`", field="extra"):
        schema.validate_columns(cols)


def test_auto_id_column(rng):
    s = basic_schema(auto_id=True)
    cols = columns_for(rng, 3)
    with data_error("can not assign primary field data when auto id enabled", field="id"):
        s.validate_columns(cols)
    assert s.validate_columns(cols, allow_insert_auto_id=True).column_names[0] == "id"
    del cols["id"]
    assert s.validate_columns(cols).column_names == ["vec", "title"]


def test_empty_columns(schema):
    t = schema.validate_columns({"id": [], "vec": np.zeros((0, 4), np.float32)})
    assert t.num_rows == 0 and t.schema == schema.arrow_schema()
    assert schema.validate_columns({}).num_rows == 0


def test_pandas_dataframe(schema, rng):
    pd = pytest.importorskip("pandas")
    vecs = vectors(rng, 3)
    df = pd.DataFrame({"id": [1, 2, 3], "vec": list(vecs), "title": ["a", None, "c"]})
    t = schema.validate_columns(df)
    assert t.column("title").to_pylist() == ["a", None, "c"]
    np.testing.assert_array_equal(
        t.column("vec").combine_chunks().values.to_numpy().reshape(3, 4), vecs
    )
