"""DataType and FunctionType carry pymilvus's names and wire values."""

from __future__ import annotations

import pytest

from vecstore.schema import DataType, FunctionType
from vecstore.schema import types as t

# pymilvus 3.0 client/types.py DataType = milvus-proto schema.proto DataType (read from both).
PYMILVUS_DATA_TYPES = {
    "NONE": 0,
    "BOOL": 1,
    "INT8": 2,
    "INT16": 3,
    "INT32": 4,
    "INT64": 5,
    "FLOAT": 10,
    "DOUBLE": 11,
    "STRING": 20,
    "VARCHAR": 21,
    "ARRAY": 22,
    "JSON": 23,
    "GEOMETRY": 24,
    "TEXT": 25,
    "TIMESTAMPTZ": 26,
    "BINARY_VECTOR": 100,
    "FLOAT_VECTOR": 101,
    "FLOAT16_VECTOR": 102,
    "BFLOAT16_VECTOR": 103,
    "SPARSE_FLOAT_VECTOR": 104,
    "INT8_VECTOR": 105,
    "_ARRAY_OF_VECTOR": 106,
    "_ARRAY_OF_STRUCT": 200,
    "STRUCT": 201,
    "UNKNOWN": 999,
}


def test_data_type_names_and_values_match_pymilvus():
    assert {m.name: m.value for m in DataType} == PYMILVUS_DATA_TYPES


@pytest.mark.parametrize("name", sorted(PYMILVUS_DATA_TYPES))
def test_data_type_round_trips_through_its_value(name):
    member = DataType[name]
    assert DataType(PYMILVUS_DATA_TYPES[name]) is member
    assert member == PYMILVUS_DATA_TYPES[name]  # IntEnum: equal to the wire int


def test_str_of_a_data_type_is_its_value_as_pymilvus():
    assert str(DataType.BOOL) == "1"
    assert str(DataType.FLOAT_VECTOR) == "101"


def test_function_type_values_match_pymilvus():
    assert {m.name: m.value for m in FunctionType} == {
        "UNKNOWN": 0,
        "BM25": 1,
        "TEXTEMBEDDING": 2,
        "RERANK": 3,
        "MINHASH": 4,
    }


def test_type_groups():
    assert t.VECTOR_TYPES == {
        DataType.FLOAT_VECTOR,
        DataType.FLOAT16_VECTOR,
        DataType.BFLOAT16_VECTOR,
        DataType.INT8_VECTOR,
        DataType.BINARY_VECTOR,
        DataType.SPARSE_FLOAT_VECTOR,
    }
    assert t.PRIMARY_KEY_TYPES == {DataType.INT64, DataType.VARCHAR}
    assert DataType.JSON not in t.ARRAY_ELEMENT_TYPES
    assert set(t.VECTOR_KIND) == t.DENSE_VECTOR_TYPES
    assert t.VECTOR_KIND[DataType.BFLOAT16_VECTOR] == "bfloat16"
    assert all(d in t.MILVUS_TYPE_NAME for d in DataType)
    assert t.milvus_name(DataType.VARCHAR) == "VarChar"
    assert t.is_vector(DataType.SPARSE_FLOAT_VECTOR) and not t.is_vector(DataType.ARRAY)
