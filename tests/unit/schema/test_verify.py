"""Milvus's create_collection checks: each rule refused with Milvus's text and code, and allowed."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.schema.util import basic_schema, schema_error
from vecstore.schema import (
    CollectionSchema,
    DataType,
    FieldNameInvalid,
    FieldSchema,
    Function,
    FunctionType,
    ParameterMissing,
    SchemaError,
    limits,
    validate_collection_name,
    validate_field_name,
    verify_schema,
)


def with_field(name, dtype, **kw) -> CollectionSchema:
    s = basic_schema()
    s.add_field(name, dtype, **kw)
    return s


def test_basic_schema_passes():
    basic_schema().verify("my_collection_1")
    verify_schema(basic_schema(), None)


@pytest.mark.parametrize("name", ["a", "_x", "A1_b", "x" * 255])
def test_good_collection_names(name):
    assert validate_collection_name(name) == name


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "collection name should not be empty"),
        ("1abc", "the first character of a collection name must be an underscore or letter"),
        ("a-b", "collection name can only contain numbers, letters and underscores"),
        ("a b", "collection name can only contain numbers, letters and underscores"),
        ("ñame", "the first character of a collection name must be an underscore or letter"),
        ("x" * 256, "the length of a collection name must be less than 255 characters"),
    ],
)
def test_bad_collection_names(name, match):
    with schema_error(match):
        validate_collection_name(name)
    with schema_error(match):
        basic_schema().verify(name)


@pytest.mark.parametrize("name", ["a", "_id", "Vec_2", "x" * 255, "iso", "Like"])
def test_good_field_names(name):
    assert validate_field_name(name) == name


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "field name should not be empty"),
        ("9lives", "The first character of a field name must be an underscore or letter"),
        ("$meta", "The first character of a field name must be an underscore or letter"),
        ("a.b", "Field name can only contain numbers, letters, and underscores"),
        ("x" * 256, "The length of a field name must be less than 255 characters"),
        ("like", "like is keyword in milvus"),
        ("NULL", "NULL is keyword in milvus"),
        ("nUlL", "nUlL is keyword in milvus"),
        ("array_contains", "array_contains is keyword in milvus"),
        ("TRUE", "TRUE is keyword in milvus"),
    ],
)
def test_bad_field_names_use_code_1701(name, match):
    with schema_error(match, code=1701, cls=FieldNameInvalid):
        validate_field_name(name)
    with schema_error(match, code=1701, cls=FieldNameInvalid):
        with_field(name, DataType.BOOL).verify()


@pytest.mark.parametrize("name", ["RowID", "Timestamp"])
def test_system_field_names_are_reserved(name):
    with schema_error(f'field name "{name}" is reserved', code=1701, cls=FieldNameInvalid):
        with_field(name, DataType.INT64).verify()


def test_field_count_limit():
    s = basic_schema()
    for i in range(limits.MAX_FIELD_NUM - 3):
        s.add_field(f"f{i}", DataType.INT8)
    s.verify()  # exactly 64
    s.add_field("one_more", DataType.INT8)
    with schema_error("maximum field's number should be limited to 64"):
        s.verify()


def test_vector_field_count_limit_and_at_least_one_vector():
    s = basic_schema()
    for i in range(limits.MAX_VECTOR_FIELD_NUM - 1):
        s.add_field(f"v{i}", DataType.BINARY_VECTOR, dim=16)
    s.verify()  # exactly 4
    s.add_field("v_more", DataType.SPARSE_FLOAT_VECTOR)
    with schema_error("maximum vector field's number should be limited to 4"):
        s.verify()
    no_vec = CollectionSchema().add_field("id", DataType.INT64, is_primary=True)
    with schema_error("schema does not contain vector field"):
        no_vec.verify()


def test_primary_key_rules():
    no_pk = CollectionSchema().add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with schema_error("primary key is not specified", code=1101, cls=ParameterMissing):
        no_pk.verify()
    float_pk = CollectionSchema().add_field("id", DataType.FLOAT, is_primary=True)
    float_pk.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with schema_error("the data type of primary key should be Int64 or VarChar"):
        float_pk.verify()
    two = basic_schema()
    two.fields[2].is_primary = True  # bypasses add_field's own check, as a raw request could
    with schema_error("there are more than one primary key, field name = id, title"):
        two.verify()
    nullable_pk = CollectionSchema().add_field("id", DataType.INT64, is_primary=True, nullable=True)
    nullable_pk.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with schema_error("primary field not support null"):
        nullable_pk.verify()
    default_pk = CollectionSchema().add_field(
        "id", DataType.INT64, is_primary=True, default_value=1
    )
    default_pk.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with schema_error("primary field not support default_value"):
        default_pk.verify()


@pytest.mark.parametrize("dtype", [DataType.INT64, DataType.VARCHAR])
def test_auto_id_on_int64_and_varchar_keys(dtype):
    s = CollectionSchema(auto_id=True)
    s.add_field("id", dtype, is_primary=True, max_length=36)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.verify()
    assert s.primary_field.auto_id


def test_auto_id_only_on_the_primary_key():
    s = basic_schema()
    s.fields[2].auto_id = True
    with schema_error("only primary field can speficy AutoID with true, field name = title"):
        s.verify()


def test_explicit_dynamic_field_is_refused():
    s = with_field("extra", DataType.JSON, is_dynamic=True)
    with schema_error("cannot explicitly set a field as a dynamic field"):
        s.verify()


@pytest.mark.parametrize(
    ("dtype", "dim"),
    [
        (DataType.FLOAT_VECTOR, 2),
        (DataType.FLOAT_VECTOR, 32768),
        (DataType.FLOAT16_VECTOR, 3),
        (DataType.BFLOAT16_VECTOR, 32768),
        (DataType.INT8_VECTOR, 100),
        (DataType.BINARY_VECTOR, 8),
        (DataType.BINARY_VECTOR, 32768 * 8),
    ],
)
def test_good_dims(dtype, dim):
    with_field("v2", dtype, dim=dim).verify()


@pytest.mark.parametrize(
    ("dtype", "dim", "match"),
    [
        (DataType.FLOAT_VECTOR, 1, r"invalid dimension: 1. should be in range 2 ~ 32768"),
        (DataType.FLOAT_VECTOR, 0, r"invalid dimension: 0. should be in range 2 ~ 32768"),
        (
            DataType.FLOAT_VECTOR,
            32769,
            "invalid dimension: 32769 of field v2. float vector dimension should be in range "
            "2 ~ 32768",
        ),
        (DataType.INT8_VECTOR, 40000, "float vector dimension should be in range 2 ~ 32768"),
        (
            DataType.BINARY_VECTOR,
            12,
            "invalid dimension: 12 of field v2. binary vector dimension should be multiple of 8",
        ),
        (
            DataType.BINARY_VECTOR,
            32768 * 8 + 8,
            "binary vector dimension should be in range 2 ~ 262144",
        ),
        (DataType.FLOAT_VECTOR, "eight", "the value for dim of field v2 must be an integer"),
    ],
)
def test_bad_dims(dtype, dim, match):
    with schema_error(match):
        with_field("v2", dtype, dim=dim).verify()


def test_dim_is_required_for_dense_and_refused_for_sparse():
    with schema_error("dimension is not defined in field type params of field v2"):
        with_field("v2", DataType.FLOAT_VECTOR, dimension=8).verify()
    with schema_error(r"dim should not be specified for sparse vector field v2\(0\)"):
        with_field("v2", DataType.SPARSE_FLOAT_VECTOR, dim=8).verify()


@pytest.mark.parametrize("length", [1, 65535, "300"])
def test_good_max_length(length):
    with_field("s", DataType.VARCHAR, max_length=length).verify()


@pytest.mark.parametrize("length", [0, -1, 65536])
def test_bad_max_length(length):
    with schema_error(
        rf"the maximum length specified for the field\(s\) should be in \(0, 65535\], but got "
        rf"{length} instead"
    ):
        with_field("s", DataType.VARCHAR, max_length=length).verify()


def test_max_length_is_required():
    with schema_error(
        r"type param\(max_length\) should be specified for the field\(s\) of collection c",
        code=1101,
        cls=ParameterMissing,
    ):
        with_field("s", DataType.VARCHAR).verify("c")


def test_array_rules():
    with_field("a", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4096).verify()
    with_field(
        "a", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=1, max_length=10
    ).verify()
    with schema_error(
        r"type param\(max_capacity\) should be specified for array field a",
        code=1101,
        cls=ParameterMissing,
    ):
        with_field("a", DataType.ARRAY, element_type=DataType.INT64).verify()
    for cap in (0, 4097):
        with schema_error(r"the maximum capacity specified for a Array should be in \(0, 4096\]"):
            with_field("a", DataType.ARRAY, element_type=DataType.INT64, max_capacity=cap).verify()
    with schema_error(
        r"type param\(max_length\) should be specified for the field\(a\)",
        code=1101,
        cls=ParameterMissing,
    ):
        with_field("a", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=2).verify()
    with schema_error("element data type None is not valid"):
        with_field("a", DataType.ARRAY, max_capacity=2).verify()
    for et, shown in (
        (DataType.JSON, "JSON"),
        (DataType.ARRAY, "Array"),
        (DataType.FLOAT_VECTOR, "FloatVector"),
    ):
        with schema_error(f"element type {shown} is not supported"):
            with_field("a", DataType.ARRAY, element_type=et, max_capacity=2).verify()
    with schema_error("string data type not supported yet, please use VarChar type instead"):
        with_field("a", DataType.ARRAY, element_type=DataType.STRING, max_capacity=2).verify()


@pytest.mark.parametrize(
    ("dtype", "match"),
    [
        (DataType.STRING, "string data type not supported yet, please use VarChar type instead"),
        (DataType.NONE, "data type None is not valid"),
        (DataType.STRUCT, "data type STRUCT of field x is not supported by vecstore yet"),
        (DataType._ARRAY_OF_VECTOR, "data type _ARRAY_OF_VECTOR of field x is not supported"),
    ],
)
def test_unsupported_types(dtype, match):
    with schema_error(match):
        with_field("x", dtype).verify()


def test_duplicate_field_names():
    s = basic_schema()
    s.add_field("title", DataType.INT64)
    with schema_error("duplicated field name title found"):
        s.verify()


def test_partition_key_rules():
    with_field(
        "tenant", DataType.VARCHAR, max_length=8, is_partition_key=True, default_value="x"
    ).verify()
    with schema_error("partition key field not support nullable"):
        with_field("tenant", DataType.INT64, is_partition_key=True, nullable=True).verify()
    with schema_error("the data type of partition key should be Int64 or VarChar"):
        with_field("tenant", DataType.INT32, is_partition_key=True).verify()
    s = basic_schema()
    s.fields[0].is_partition_key = True
    with schema_error("the partition key field must not be primary field"):
        s.verify()
    s = with_field("p1", DataType.INT64, is_partition_key=True)
    s.fields[2].is_partition_key = True
    with schema_error("there are more than one partition key, field name = title, p1"):
        s.verify()


def test_clustering_key_rules():
    with_field("c", DataType.DOUBLE, is_clustering_key=True).verify()
    with schema_error("clustering key field c has unsupported data type Bool"):
        with_field("c", DataType.BOOL, is_clustering_key=True).verify()
    s = basic_schema()
    s.fields[1].is_clustering_key = True
    with schema_error("vector clustering key not allowed"):
        s.verify()


def test_nullable_vectors_are_allowed():
    with_field("v2", DataType.FLOAT_VECTOR, dim=4, nullable=True).verify()
    with_field("v2", DataType.SPARSE_FLOAT_VECTOR, nullable=True).verify()


@pytest.mark.parametrize(
    ("dtype", "value", "extra"),
    [
        (DataType.BOOL, True, {}),
        (DataType.INT8, np.int8(-128), {}),
        (DataType.INT16, np.int16(7), {}),
        (DataType.INT32, np.int32(7), {}),
        (DataType.INT64, 7, {}),
        (DataType.INT64, np.int64(7), {}),
        (DataType.FLOAT, 3.5, {}),
        (DataType.FLOAT, np.float32(3.5), {}),
        (DataType.DOUBLE, 3.5, {}),
        (DataType.VARCHAR, "héé", {"max_length": 5}),
        (DataType.VARCHAR, "", {"max_length": 1}),
    ],
)
def test_good_default_values(dtype, value, extra):
    with_field("d", dtype, default_value=value, **extra).verify()


@pytest.mark.parametrize(
    ("dtype", "value", "extra", "match"),
    [
        # pymilvus sends a Python int as an Int64 ("long") value, which Milvus refuses for INT32.
        (
            DataType.INT32,
            7,
            {},
            r"type \(Int32\) of field \(d\) is not equal to the "
            r"type\(DataType_Int64\) of default_value; pass a np.int32",
        ),
        (
            DataType.INT64,
            np.int32(7),
            {},
            r"type \(Int64\) of field \(d\) is not equal to the "
            r"type\(DataType_Int\) of default_value",
        ),
        (
            DataType.VARCHAR,
            2,
            {"max_length": 9},
            r"type \(VarChar\) of field \(d\) is not equal "
            r"to the type\(DataType_Int64\)",
        ),
        (DataType.DOUBLE, np.float32(2.5), {}, r"type\(DataType_Float\) of default_value"),
        (DataType.FLOAT, "2.6", {}, r"type\(DataType_VarChar\) of default_value"),
        (DataType.BOOL, 1, {}, r"type \(Bool\) of field \(d\)"),
        (DataType.INT8, np.int32(128), {}, r"\[128 out of range -128 <= value <= 127\]"),
        (DataType.INT16, np.int32(-32769), {}, r"\[-32769 out of range -32768 <= value <= 32767\]"),
        (
            DataType.VARCHAR,
            "défaut",
            {"max_length": 6},
            r"the length \(7\) of string exceeds max length \(6\)",
        ),
        (DataType.DOUBLE, float("nan"), {}, "is not a number or infinity"),
        (DataType.JSON, 1, {}, "type not support default_value, type:JSON, name:d"),
        (
            DataType.ARRAY,
            1,
            {"element_type": DataType.INT64, "max_capacity": 2},
            "type not support default_value, type:Array, name:d",
        ),
        (
            DataType.FLOAT_VECTOR,
            1.0,
            {"dim": 2},
            "type not support default_value, type:FloatVector, name:d",
        ),
    ],
)
def test_bad_default_values(dtype, value, extra, match):
    with schema_error(match):
        with_field("d", dtype, default_value=value, **extra).verify()


def test_function_rules():
    s = basic_schema()
    s.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm25", FunctionType.BM25, "text", "sparse"))
    s.verify()
    bad = basic_schema().add_function(Function("f", FunctionType.BM25, "nope", "vec"))
    with schema_error("Function input field not found in collection schema: nope"):
        bad.verify()
    bad = basic_schema().add_function(Function("f", FunctionType.BM25, "title", "nope"))
    with schema_error("Function output field not found in collection schema: nope"):
        bad.verify()
    bad = basic_schema().add_function(Function("f", FunctionType.BM25, "title", "vec"))
    with schema_error("BM25 function output field must be SPARSE_FLOAT_VECTOR"):
        bad.verify()
    bad = basic_schema().add_function(Function("f", FunctionType.BM25, "title", "id"))
    with schema_error("The output field must not be primary key"):
        bad.verify()


def test_verify_schema_takes_a_collection_schema():
    with schema_error("schema must be a CollectionSchema"):
        verify_schema({"fields": []})
    assert issubclass(FieldNameInvalid, SchemaError) and issubclass(ParameterMissing, SchemaError)
    assert FieldSchema("x", DataType.INT64).default_kind is None
