"""Conversions between the schema layer's canonical Arrow batches and the arrays roles use.

Vector columns (fixed-size lists) become (rows, columns) numpy arrays without copying when the
batch is contiguous; bfloat16 (stored as uint16 bits) is viewed as ``ml_dtypes.bfloat16``.
Primary keys become int64 arrays or numpy ``str`` arrays (what MVCC's searchsorted needs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vecstore.errors import InvalidArgument
from vecstore.schema import CollectionSchema, DataType
from vecstore.streaming_node.growing import VectorSpec

VECTOR_KINDS = {
    DataType.FLOAT_VECTOR: "float32",
    DataType.FLOAT16_VECTOR: "float16",
    DataType.BFLOAT16_VECTOR: "bfloat16",
    DataType.INT8_VECTOR: "int8",
    DataType.BINARY_VECTOR: "binary",
}
PARTITION_COLUMN = "$partition"


@dataclass(frozen=True)
class Layout:
    """Where a collection's fields go: the pk, the vector fields (with their specs), the rest."""

    pk: str
    pk_kind: str  # "int64" | "string"
    auto_id: bool
    vectors: dict[str, VectorSpec]
    dynamic: bool

    @classmethod
    def of(cls, schema: CollectionSchema) -> Layout:
        pk = schema.primary_field
        vectors = {}
        for f in schema.fields:
            kind = VECTOR_KINDS.get(f.dtype)
            if kind is not None:
                vectors[f.name] = VectorSpec(kind, int(f.param_int("dim")))
        return cls(pk.name, "int64" if pk.dtype == DataType.INT64 else "string", bool(pk.auto_id),
                   vectors, schema.enable_dynamic_field)


def _one_chunk(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The column as one array; a single chunk as it is (combine_chunks would copy it)."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def vector_array(column: pa.ChunkedArray | pa.Array, spec: VectorSpec) -> np.ndarray:
    arr = _one_chunk(column)
    values = arr.values.to_numpy(zero_copy_only=False)
    values = values[arr.offset * spec.columns:(arr.offset + len(arr)) * spec.columns]
    out = values.reshape(len(arr), spec.columns)
    if spec.kind == "bfloat16":
        import ml_dtypes

        out = out.view(ml_dtypes.bfloat16)
    return out


def split_batch(table: pa.Table, layout: Layout, pks: np.ndarray, partition: pa.Array
                ) -> tuple[dict[str, np.ndarray], pa.RecordBatch]:
    """(vectors, scalars) of a validated table; scalars get the hidden partition column (the
    partition of every row, as ``proxy.partitions.route`` returns it)."""
    vectors = {name: vector_array(table.column(name), spec)
               for name, spec in layout.vectors.items()}
    cols = {name: _one_chunk(table.column(name)) for name in table.column_names
            if name not in layout.vectors and name != layout.pk}
    cols[PARTITION_COLUMN] = partition
    return vectors, pa.RecordBatch.from_pydict(cols)


_QUERY_DTYPES = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16),
                 "int8": np.dtype(np.int8), "binary": np.dtype(np.uint8)}


def query_vectors(data: object, spec: VectorSpec) -> np.ndarray:
    """Search vectors as the kernels want them: one row per query, the field's element type."""
    dtype = _QUERY_DTYPES.get(spec.kind)
    if spec.kind == "bfloat16":
        import ml_dtypes

        dtype = ml_dtypes.bfloat16
    if isinstance(data, (bytes, bytearray)) and spec.kind == "binary":
        data = [data]
    # The common shapes, one query vector in a list or a matrix of them, already of the field's
    # type: what the general path below returns (a contiguous copy), without one array per row.
    if type(data) is list and len(data) == 1 and type(data[0]) is np.ndarray:
        one = data[0]
        if one.dtype == dtype and one.shape == (spec.columns,):
            return one.reshape(1, -1).copy()
    elif type(data) is np.ndarray and data.ndim == 2 and data.dtype == dtype and \
            data.shape[1] == spec.columns and data.shape[0]:
        return np.array(data, order="C", copy=True)
    if isinstance(data, np.ndarray) and data.ndim == 2:
        data = list(data)  # a matrix of queries, one per row
    rows = []
    for q in data if isinstance(data, (list, tuple)) else [data]:
        if spec.kind == "binary" and isinstance(q, (bytes, bytearray)):
            q = np.frombuffer(bytes(q), dtype=np.uint8)
        rows.append(np.asarray(q))
    try:
        arr = np.stack(rows).astype(dtype, copy=False) if rows else np.empty((0, spec.columns))
    except ValueError as e:
        raise InvalidArgument(f"search vectors have different lengths: {e}") from None
    if arr.ndim != 2 or arr.shape[1] != spec.columns:
        want = f"{spec.dim} bits ({spec.columns} bytes)" if spec.kind == "binary" else spec.dim
        raise InvalidArgument(
            f"the dim ({arr.shape[-1] if arr.ndim else 0}) of search data does not match the "
            f"vector field's dim ({want})")
    return np.ascontiguousarray(arr)
