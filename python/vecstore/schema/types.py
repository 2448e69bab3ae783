"""Milvus's data types and function types, with pymilvus's names and wire values.

``DataType`` and ``FunctionType`` are ``IntEnum``s whose names and values are those of pymilvus 3.0
(``pymilvus/client/types.py``), which take them from milvus-proto's ``schema.proto``: a value
crosses the wire unchanged and ``DataType(101)`` is ``FLOAT_VECTOR`` on both sides. As in pymilvus,
``str(DataType.BOOL) == "1"``. ``_ARRAY_OF_VECTOR`` and ``_ARRAY_OF_STRUCT`` are internal to Milvus
(struct arrays); vecstore lists them for completeness and refuses them in a schema.

The sets and tables below classify the types once for every layer (schema checks, batch checks,
storage): which are vectors, which may be a primary key, an array element, a clustering key, which
storage vector kind (``storage.segment.manifest.VECTOR_KINDS``) each vector type maps to, and the
spelling Milvus uses for a type in its error messages (Go's ``schemapb.DataType.String()``).
"""

from __future__ import annotations

from enum import IntEnum


class DataType(IntEnum):
    """A field's type. Same names and values as ``pymilvus.DataType``."""

    NONE = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5

    FLOAT = 10
    DOUBLE = 11

    STRING = 20
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    GEOMETRY = 24
    TEXT = 25
    TIMESTAMPTZ = 26

    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101
    FLOAT16_VECTOR = 102
    BFLOAT16_VECTOR = 103
    SPARSE_FLOAT_VECTOR = 104
    INT8_VECTOR = 105

    STRUCT = 201

    # Internal to Milvus (struct arrays); never valid in a user schema.
    _ARRAY_OF_VECTOR = 106
    _ARRAY_OF_STRUCT = 200

    UNKNOWN = 999

    def __str__(self) -> str:
        return str(self.value)


class FunctionType(IntEnum):
    """A schema function's type. Same names and values as ``pymilvus.FunctionType``."""

    UNKNOWN = 0
    BM25 = 1
    TEXTEMBEDDING = 2
    RERANK = 3
    MINHASH = 4


INTEGER_TYPES = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64})
FLOAT_TYPES = frozenset({DataType.FLOAT, DataType.DOUBLE})
DENSE_VECTOR_TYPES = frozenset(
    {
        DataType.FLOAT_VECTOR,
        DataType.FLOAT16_VECTOR,
        DataType.BFLOAT16_VECTOR,
        DataType.INT8_VECTOR,
        DataType.BINARY_VECTOR,
    }
)
VECTOR_TYPES = DENSE_VECTOR_TYPES | {DataType.SPARSE_FLOAT_VECTOR}
PRIMARY_KEY_TYPES = frozenset({DataType.INT64, DataType.VARCHAR})
PARTITION_KEY_TYPES = PRIMARY_KEY_TYPES
# Milvus's typeutil.ValidateArrayElementType: scalars except JSON (array_data_type.md).
ARRAY_ELEMENT_TYPES = frozenset(
    {DataType.BOOL, DataType.VARCHAR, DataType.FLOAT, DataType.DOUBLE} | INTEGER_TYPES
)
# Milvus's typeutil.IsClusteringKeyType minus vectors (EnableVectorClusteringKey defaults to off).
CLUSTERING_KEY_TYPES = frozenset({DataType.VARCHAR} | INTEGER_TYPES | FLOAT_TYPES)
# Types that may carry a default_value (Milvus docs "Default Values": scalars but JSON and ARRAY).
DEFAULT_VALUE_TYPES = frozenset({DataType.BOOL, DataType.VARCHAR} | INTEGER_TYPES | FLOAT_TYPES)
# Types whose type params pymilvus copies from add_field's kwargs (orm/schema.py).
TYPE_PARAM_TYPES = frozenset(
    VECTOR_TYPES | {DataType.VARCHAR, DataType.TEXT, DataType.ARRAY, DataType._ARRAY_OF_VECTOR}
)
# Types vecstore refuses in a schema (Milvus refuses the first four itself; STRUCT and TEXT are
# not implemented by vecstore yet).
UNSUPPORTED_TYPES = frozenset(
    {
        DataType.NONE,
        DataType.STRING,
        DataType.UNKNOWN,
        DataType._ARRAY_OF_VECTOR,
        DataType._ARRAY_OF_STRUCT,
        DataType.STRUCT,
        DataType.TEXT,
    }
)

# Storage kind (storage/segment/manifest.py VECTOR_KINDS) of each dense vector type.
VECTOR_KIND = {
    DataType.FLOAT_VECTOR: "float32",
    DataType.FLOAT16_VECTOR: "float16",
    DataType.BFLOAT16_VECTOR: "bfloat16",
    DataType.INT8_VECTOR: "int8",
    DataType.BINARY_VECTOR: "binary",
}

# Go's schemapb.DataType.String(), used verbatim in Milvus's messages ("type:JSON", "Int32").
MILVUS_TYPE_NAME = {
    DataType.NONE: "None",
    DataType.BOOL: "Bool",
    DataType.INT8: "Int8",
    DataType.INT16: "Int16",
    DataType.INT32: "Int32",
    DataType.INT64: "Int64",
    DataType.FLOAT: "Float",
    DataType.DOUBLE: "Double",
    DataType.STRING: "String",
    DataType.VARCHAR: "VarChar",
    DataType.ARRAY: "Array",
    DataType.JSON: "JSON",
    DataType.GEOMETRY: "Geometry",
    DataType.TEXT: "Text",
    DataType.TIMESTAMPTZ: "Timestamptz",
    DataType.BINARY_VECTOR: "BinaryVector",
    DataType.FLOAT_VECTOR: "FloatVector",
    DataType.FLOAT16_VECTOR: "Float16Vector",
    DataType.BFLOAT16_VECTOR: "BFloat16Vector",
    DataType.SPARSE_FLOAT_VECTOR: "SparseFloatVector",
    DataType.INT8_VECTOR: "Int8Vector",
    DataType._ARRAY_OF_VECTOR: "ArrayOfVector",
    DataType._ARRAY_OF_STRUCT: "ArrayOfStruct",
    DataType.STRUCT: "Struct",
    DataType.UNKNOWN: "Unknown",
}


def is_vector(dtype: DataType) -> bool:
    return dtype in VECTOR_TYPES


def milvus_name(dtype: DataType) -> str:
    return MILVUS_TYPE_NAME.get(dtype, str(int(dtype)))


__all__ = [
    "ARRAY_ELEMENT_TYPES",
    "CLUSTERING_KEY_TYPES",
    "DEFAULT_VALUE_TYPES",
    "DENSE_VECTOR_TYPES",
    "DataType",
    "FLOAT_TYPES",
    "FunctionType",
    "INTEGER_TYPES",
    "MILVUS_TYPE_NAME",
    "PARTITION_KEY_TYPES",
    "PRIMARY_KEY_TYPES",
    "UNSUPPORTED_TYPES",
    "VECTOR_KIND",
    "VECTOR_TYPES",
    "is_vector",
    "milvus_name",
]
