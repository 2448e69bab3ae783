"""The WAL payloads of a shard: how inserts and deletes are encoded as Arrow IPC streams.

insert  ``VSI1`` (4 bytes), the head's length (u32 little-endian), the head: an Arrow IPC stream
        of one record batch, ``$pk`` (int64 or utf8) then the scalar columns under their own
        names, padded with zeros to a multiple of 64 bytes; then each vector field's rows, raw
        little-endian and C-contiguous, in the order the head's schema metadata
        ``vecstore.vectors`` lists them (``name:row_bytes`` joined by ``,``). The vector bytes go
        to the WAL straight from the caller's arrays (the WAL writes the parts of a record without
        joining them), so a batch is copied once, by the kernel. Every row carries the record's
        timestamp (ts_begin == ts_end).
        The older layout, one Arrow IPC stream whose batch also holds a ``$vec:<field>``
        fixed-size binary column per vector field, is still decoded.
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

import struct

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


MAGIC = b"VSI1"
VECTORS_KEY = b"vecstore.vectors"
_ALIGN = 64


def encode_insert(pks: np.ndarray, vectors: dict[str, np.ndarray],
                  scalars: pa.RecordBatch | None, *, upsert: bool = False,
                  replaces: np.ndarray | None = None) -> list:
    """The insert record's payload as parts (see the module docstring) for ``Wal.append``: a
    small head, then each vector field's rows as the caller's own buffer (not copied)."""
    cols = {PK: _pk_array(pks)}
    if scalars is not None:
        for field, column in zip(scalars.schema, scalars.columns):
            cols[field.name] = column
    rows = {name: np.ascontiguousarray(arr) for name, arr in vectors.items()}
    meta = {VECTORS_KEY: ",".join(f"{name}:{arr.shape[1] * arr.dtype.itemsize}"
                                  for name, arr in rows.items()).encode()}
    if upsert:
        meta[UPSERT_KEY] = b"1"
    if replaces is not None:
        meta[REPLACES_KEY] = encode_delete(replaces)
    head = _stream(pa.record_batch(cols).replace_schema_metadata(meta))
    pad = -(len(MAGIC) + 4 + len(head)) % _ALIGN
    prefix = MAGIC + struct.pack("<I", len(head) + pad) + head + b"\0" * pad
    return [prefix, *(arr.reshape(-1).view(np.uint8) for arr in rows.values())]


def join_parts(parts: list) -> bytes:
    """One payload from :func:`encode_insert`'s parts (what the WAL stores and reads back)."""
    return b"".join(memoryview(p).cast("B") for p in parts)


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


def _as_rows(data: np.ndarray, spec: VectorSpec, n: int) -> np.ndarray:
    rows = data.view(_ROW_DTYPES[spec.kind]).reshape(n, spec.columns)
    if spec.kind == "bfloat16":
        import ml_dtypes  # bfloat16 vectors reach vecstore only as ml_dtypes arrays

        rows = rows.view(ml_dtypes.bfloat16)
    return rows


def _decode_parts(payload: bytes, specs: dict[str, VectorSpec]
                  ) -> tuple[pa.RecordBatch, dict[str, np.ndarray]]:
    """(head batch, vectors) of a ``VSI1`` insert payload; CorruptionError on any mismatch."""
    if len(payload) < 8:
        raise CorruptionError("WAL insert record is shorter than its header")
    (head_len,) = struct.unpack_from("<I", payload, 4)
    body = 8 + head_len
    if body > len(payload):
        raise CorruptionError("WAL insert record's head runs past its end")
    batch = _read(memoryview(payload)[8:body])
    listed = (batch.schema.metadata or {}).get(VECTORS_KEY, b"").decode()
    layout = dict(item.rsplit(":", 1) for item in listed.split(",") if item)
    n = batch.num_rows
    data = np.frombuffer(payload, dtype=np.uint8)
    vectors, at = {}, body
    for name, row_bytes in layout.items():
        spec = specs.get(name)
        size = n * int(row_bytes)
        if spec is None or int(row_bytes) != spec.columns * _ITEM[spec.kind] or \
                at + size > len(payload):
            raise CorruptionError(f"WAL insert record's vector field {name!r} does not match "
                                  "the collection")
        vectors[name] = _as_rows(data[at:at + size], spec, n)
        at += size
    if at != len(payload) or set(vectors) != set(specs):
        raise CorruptionError("WAL insert record's vector fields do not match the collection")
    return batch, vectors


def decode_insert(payload: bytes, specs: dict[str, VectorSpec]
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], pa.RecordBatch | None, bool,
                             np.ndarray | None]:
    """(pks, vectors, scalars, upsert, replaced keys or None) of an insert record."""
    if payload[:4] == MAGIC:
        batch, vectors = _decode_parts(payload, specs)
    else:
        batch, vectors = _read(payload), None
    meta = batch.schema.metadata or {}
    upsert = meta.get(UPSERT_KEY) == b"1"
    replaces = decode_delete(meta[REPLACES_KEY]) if REPLACES_KEY in meta else None
    pks = _pks(batch)
    if vectors is None:
        vectors = _legacy_vectors(batch, specs)
    names = [n for n in batch.schema.names if n != PK and not n.startswith(VEC_PREFIX)]
    scalars = batch.select(names).replace_schema_metadata(None) if names else None
    return pks, vectors, scalars, upsert, replaces


def _legacy_vectors(batch: pa.RecordBatch, specs: dict[str, VectorSpec]
                    ) -> dict[str, np.ndarray]:
    vectors = {}
    for name, spec in specs.items():
        i = batch.schema.get_field_index(VEC_PREFIX + name)
        col = batch.column(i) if i >= 0 else None
        row_bytes = spec.columns * _ITEM[spec.kind]
        if col is None or col.type != pa.binary(row_bytes):
            raise CorruptionError(f"WAL insert record lacks vector field {name!r} as expected")
        data = np.frombuffer(col.buffers()[1], dtype=np.uint8,
                             count=col.offset * row_bytes + len(col) * row_bytes)
        vectors[name] = _as_rows(data[col.offset * row_bytes:], spec, len(col))
    return vectors


def decode_delete(payload: bytes) -> np.ndarray:
    return _pks(_read(payload))
