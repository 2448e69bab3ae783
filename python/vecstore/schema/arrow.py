"""The canonical Arrow layout of each Milvus type: what batch validation returns.

Every validated batch (:func:`vecstore.schema.batch.validate_columns` / ``validate_rows``) is a
``pyarrow.Table`` with one column per input field, in schema order, typed as below. The proxy,
WAL, growing segments and segment writer all read this one layout, and a validated table passes
validation again unchanged.

=====================  ============================================================  =========
Milvus type            Arrow type                                                    notes
=====================  ============================================================  =========
BOOL                   ``bool``
INT8/16/32/64          ``int8`` / ``int16`` / ``int32`` / ``int64``
FLOAT, DOUBLE          ``float32``, ``float64``                                      finite
VARCHAR                ``string`` (UTF-8)                                            (1)
JSON                   ``string``: compact JSON text, one value per row              (2)
GEOMETRY               ``string``: WKT
TIMESTAMPTZ            ``timestamp[us, tz=UTC]``
ARRAY(e)               ``list<e's type>`` (no null elements)
FLOAT_VECTOR           ``fixed_size_list<float32>[dim]``                             finite
FLOAT16_VECTOR         ``fixed_size_list<halffloat>[dim]``                           finite
BFLOAT16_VECTOR        ``fixed_size_list<uint16>[dim]``: raw bfloat16 bits           (3)
INT8_VECTOR            ``fixed_size_list<int8>[dim]``
BINARY_VECTOR          ``fixed_size_list<uint8>[dim / 8]``: packed bits, as given    (4)
SPARSE_FLOAT_VECTOR    ``map<uint32, float32>``: indices ascending, unique           (5)
``$meta`` (dynamic)    ``string``: one JSON object per row (``{}`` when none)
=====================  ============================================================  =========

(1) ``string`` rather than ``large_string``: Milvus caps an insert at 64 MB, far below 2 GiB of
offsets. (2) JSON is stored as text, exactly the bytes Milvus keeps (pymilvus sends
``orjson.dumps`` output; a ``str`` value is taken as JSON text, as pymilvus does). (3) numpy has
no bfloat16; ``storage.segment`` stores bfloat16 as ``<u2`` too. (4) Every dense vector is a
FixedSizeList so one code path (``arr.flatten().to_numpy().reshape(-1, width)``) reads them all;
binary vectors keep pymilvus's byte layout (``np.packbits(bits, axis=-1)``). (5) pymilvus's
``{index: value}`` rows; Milvus requires indices < 2**32 - 1.

A column is nullable in the Arrow schema exactly when its field is ``nullable``; null rows of a
nullable vector field have zeroed child values (Arrow's dense layout, where Milvus's wire format
sends nullable vectors compact). The auto-id primary key is absent unless the caller supplied it
(``allow_insert_auto_id``): the coordinator allocates ids later. Function outputs (BM25) are
absent: the function computes them.

Each Arrow field carries metadata ``vecstore.dtype`` (the DataType name), plus ``vecstore.dim``
for vectors and ``vecstore.element_type`` for arrays.
"""

from __future__ import annotations

import pyarrow as pa

from vecstore.schema.field import FieldSchema
from vecstore.schema.limits import DYNAMIC_FIELD_NAME
from vecstore.schema.types import DataType

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

_SCALAR = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(),
    DataType.JSON: pa.string(),
    DataType.GEOMETRY: pa.string(),
    DataType.TIMESTAMPTZ: UTC_TIMESTAMP,
}
# Element type of the FixedSizeList of each dense vector type, and how many dims share one element.
VECTOR_VALUE_TYPE = {
    DataType.FLOAT_VECTOR: (pa.float32(), 1),
    DataType.FLOAT16_VECTOR: (pa.float16(), 1),
    DataType.BFLOAT16_VECTOR: (pa.uint16(), 1),
    DataType.INT8_VECTOR: (pa.int8(), 1),
    DataType.BINARY_VECTOR: (pa.uint8(), 8),
}
SPARSE_TYPE = pa.map_(pa.uint32(), pa.float32())


def scalar_type(dtype: DataType) -> pa.DataType:
    return _SCALAR[dtype]


def vector_width(field: FieldSchema) -> int:
    """Number of FixedSizeList elements per row (dim, or dim / 8 for binary vectors)."""
    _, per = VECTOR_VALUE_TYPE[field.dtype]
    return (field.param_int("dim") or 0) // per


def arrow_type(field: FieldSchema) -> pa.DataType:
    """The canonical Arrow type of ``field`` (the table in the module docstring)."""
    dtype = field.dtype
    if dtype in _SCALAR:
        return _SCALAR[dtype]
    if dtype == DataType.ARRAY:
        return pa.list_(_SCALAR[field.element_type])
    if dtype in VECTOR_VALUE_TYPE:
        return pa.list_(VECTOR_VALUE_TYPE[dtype][0], vector_width(field))
    if dtype == DataType.SPARSE_FLOAT_VECTOR:
        return SPARSE_TYPE
    raise KeyError(f"no Arrow layout for {dtype.name}")


def arrow_field(field: FieldSchema) -> pa.Field:
    meta = {b"vecstore.dtype": field.dtype.name.encode()}
    if field.dtype in VECTOR_VALUE_TYPE:
        meta[b"vecstore.dim"] = str(field.param_int("dim")).encode()
    if field.dtype == DataType.ARRAY and field.element_type is not None:
        meta[b"vecstore.element_type"] = field.element_type.name.encode()
    return pa.field(field.name, arrow_type(field), nullable=field.nullable, metadata=meta)


def dynamic_arrow_field() -> pa.Field:
    return pa.field(
        DYNAMIC_FIELD_NAME, pa.string(), nullable=False, metadata={b"vecstore.dtype": b"JSON"}
    )


__all__ = [
    "SPARSE_TYPE",
    "UTC_TIMESTAMP",
    "VECTOR_VALUE_TYPE",
    "arrow_field",
    "arrow_type",
    "dynamic_arrow_field",
    "scalar_type",
    "vector_width",
]
