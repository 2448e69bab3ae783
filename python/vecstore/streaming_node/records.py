"""The WAL payloads of a shard: how inserts and deletes are encoded as Arrow IPC streams.

insert  one record batch: ``$pk`` (int64 or utf8), one ``$vec:<field>`` column per vector field as
        fixed-size binary holding each row's raw little-endian bytes (any vector kind, zero-copy
        from the numpy rows), then the scalar columns under their own names. Every row of the batch
        carries the record's timestamp (ts_begin == ts_end).
        An upsert is an insert record whose schema metadata holds ``vecstore.upsert = 1``: applying
        it deletes the batch's primary keys and inserts its rows at the same timestamp, in one
        record, so a crash can never keep the delete without the insert. An upsert into an auto_id
        collection replaces entities under their old keys with rows under new ones: the metadata
        ``vecstore.replaces`` holds the old keys (an IPC stream of one ``$pk`` column), deleted at
        the record's timestamp.
delete  one record batch: ``$pk``. The record's timestamp is the delete timestamp.

Decoding checks the layout against the shard's vector specs and raises CorruptionError on any
mismatch: a WAL record that decodes to something else is damage, not input.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from vecstore.common.pks import pks_to_numpy
from vecstore.errors import CorruptionError
from vecstore.streaming_node.growing import VectorSpec

PK = "$pk"
VEC_PREFIX = "$vec:"

_ROW_DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "bfloat16": np.uint16,  # bit patterns; viewed as ml_dtypes.bfloat16 by callers that have it
    "int8": np.int8,
    "binary": np.uint8,
}
_ITEM = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "binary": 1}


def _stream(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _pk_array(pks: np.ndarray) -> pa.Array:
    return pa.array(pks, type=pa.int64() if pks.dtype == np.int64 else pa.string())


UPSERT_KEY = b"vecstore.upsert"
REPLACES_KEY = b"vecstore.replaces"


def encode_insert(pks: np.ndarray, vectors: dict[str, np.ndarray],
                  scalars: pa.RecordBatch | None, *, upsert: bool = False,
                  replaces: np.ndarray | None = None) -> bytes:
    cols = {PK: _pk_array(pks)}
    for name, arr in vectors.items():
        row_bytes = arr.shape[1] * arr.dtype.itemsize
        buf = pa.py_buffer(np.ascontiguousarray(arr).view(np.uint8))
        cols[VEC_PREFIX + name] = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(row_bytes), arr.shape[0], [None, buf])
    if scalars is not None:
        for field, column in zip(scalars.schema, scalars.columns):
            cols[field.name] = column
    batch = pa.record_batch(cols)
    meta = {}
    if upsert:
        meta[UPSERT_KEY] = b"1"
    if replaces is not None:
        meta[REPLACES_KEY] = encode_delete(replaces)
    return _stream(batch.replace_schema_metadata(meta) if meta else batch)


def encode_delete(pks: np.ndarray) -> bytes:
    return _stream(pa.record_batch({PK: _pk_array(pks)}))


def _read(payload: bytes) -> pa.RecordBatch:
    try:
        table = pa.ipc.open_stream(payload).read_all()
    except pa.ArrowInvalid as e:
        raise CorruptionError(f"WAL payload is not an Arrow IPC stream: {e}") from e
    return table.combine_chunks().to_batches()[0] if table.num_rows else pa.record_batch(
        [pa.array([], type=f.type) for f in table.schema], schema=table.schema)


def _pks(batch: pa.RecordBatch) -> np.ndarray:
    if batch.schema.names[:1] != [PK]:
        raise CorruptionError("WAL record has no leading $pk column")
    col = batch.column(0)
    if col.type in (pa.int64(), pa.string()):
        return pks_to_numpy(col)
    raise CorruptionError(f"WAL record has a $pk column of type {col.type}")


def decode_insert(payload: bytes, specs: dict[str, VectorSpec]
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], pa.RecordBatch | None, bool,
                             np.ndarray | None]:
    """(pks, vectors, scalars, upsert, replaced keys or None) of an insert record."""
    batch = _read(payload)
    meta = batch.schema.metadata or {}
    upsert = meta.get(UPSERT_KEY) == b"1"
    replaces = decode_delete(meta[REPLACES_KEY]) if REPLACES_KEY in meta else None
    pks = _pks(batch)
    vectors = {}
    for name, spec in specs.items():
        i = batch.schema.get_field_index(VEC_PREFIX + name)
        col = batch.column(i) if i >= 0 else None
        row_bytes = spec.columns * _ITEM[spec.kind]
        if col is None or col.type != pa.binary(row_bytes):
            raise CorruptionError(f"WAL insert record lacks vector field {name!r} as expected")
        data = np.frombuffer(col.buffers()[1], dtype=np.uint8,
                             count=col.offset * row_bytes + len(col) * row_bytes)
        data = data[col.offset * row_bytes:]
        rows = data.view(_ROW_DTYPES[spec.kind]).reshape(len(col), spec.columns)
        if spec.kind == "bfloat16":
            import ml_dtypes  # bfloat16 vectors reach vecstore only as ml_dtypes arrays

            rows = rows.view(ml_dtypes.bfloat16)
        vectors[name] = rows
    names = [n for n in batch.schema.names if n != PK and not n.startswith(VEC_PREFIX)]
    scalars = batch.select(names).replace_schema_metadata(None) if names else None
    return pks, vectors, scalars, upsert, replaces


def decode_delete(payload: bytes) -> np.ndarray:
    return _pks(_read(payload))
