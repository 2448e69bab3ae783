"""Cutting validated import rows into sealed segments, written straight to the object store.

:class:`SegmentCutter` takes batches in the layout a flush writes (primary keys, vector arrays,
scalar columns with the hidden ``$partition``) and writes a segment through
:class:`~vecstore.storage.segment.SegmentWriter` whenever the rows buffered reach the data node's
seal size (``DataNodeConfig.seal_rows`` rows or ``seal_bytes`` bytes, counted as a growing
segment counts them: vectors, keys and scalar buffers). A batch that would overflow a segment is
split, so every segment but the last is exactly at the limit. Every row gets the one import
timestamp.

Nothing written here is visible: the caller commits the returned refs (``commit_import``) or
calls :meth:`abort`, which removes the segments' files. Files left by a crash in between name no
committed segment, so the garbage collection of the next open removes them (data_node.gc).

Memory: vector rows are copied into one buffer per field sized for a segment (pages are touched
only as rows arrive) and reused for the next segment; keys and scalars are kept as the batches'
own arrays until the segment is written. So a segment's rows are held once, plus one vector
field's file image while SegmentWriter writes it.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from vecstore.coordinator.coordinator import SegmentRef
from vecstore.data_node.compaction import segment_bytes
from vecstore.data_node.gc import remove_prefix
from vecstore.storage.segment import SegmentWriter
from vecstore.streaming_node.flush import stored_name
from vecstore.streaming_node.growing import VectorSpec

log = logging.getLogger(__name__)

_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "binary": np.uint8,
           "bfloat16": np.uint16}  # bfloat16 rows are kept as their raw bits


class SegmentCutter:
    def __init__(self, store: object, collection_id: int, vectors: dict[str, VectorSpec],
                 seal_rows: int, seal_bytes: int, next_segment_id: object, ts: int) -> None:
        self._store = store
        self._collection = collection_id
        self._specs = vectors
        self._next_id = next_segment_id
        self._ts = ts
        row_bytes = sum(s.columns * np.dtype(_DTYPES[s.kind]).itemsize for s in vectors.values())
        # Rows a segment can hold by the vectors alone; scalars may cut it shorter.
        self._cap = max(1, min(seal_rows, seal_bytes // max(1, row_bytes)))
        self._seal_bytes = seal_bytes
        self._row_bytes = row_bytes
        self._buf = {name: np.empty((self._cap, s.columns), _DTYPES[s.kind])
                     for name, s in vectors.items()}
        self._rows = 0
        self._scalar_bytes = 0
        self._pks: list[np.ndarray] = []
        self._scalars: list[pa.RecordBatch] = []
        self.written: list[SegmentRef] = []

    def add(self, pks: np.ndarray, vectors: dict[str, np.ndarray], scalars: pa.RecordBatch
            ) -> None:
        n, at = len(pks), 0
        per_row = scalars.nbytes / n if n else 0.0
        while at < n:
            room = self._cap - self._rows
            left_bytes = self._seal_bytes - self._rows * self._row_bytes - self._scalar_bytes
            by_bytes = int(left_bytes // (self._row_bytes + per_row + pks.itemsize))
            take = max(1, min(n - at, room, by_bytes))  # at least one row per segment
            for name, arr in vectors.items():
                raw = arr.view(np.uint16) if self._specs[name].kind == "bfloat16" else arr
                self._buf[name][self._rows:self._rows + take] = raw[at:at + take]
            self._pks.append(pks[at:at + take])
            part = scalars.slice(at, take)
            self._scalars.append(part)
            self._scalar_bytes += int(per_row * take)
            self._rows += take
            at += take
            if self._rows >= self._cap or \
                    self._rows * self._row_bytes + self._scalar_bytes >= self._seal_bytes:
                self._write()

    def finish(self) -> list[SegmentRef]:
        """Writes the rows still buffered; returns every segment written (uncommitted)."""
        if self._rows:
            self._write()
        self._buf = {}
        return list(self.written)

    def abort(self) -> None:
        """Removes every segment written (best effort: what is left is garbage at next open)."""
        self._buf = {}
        for ref in self.written:
            try:
                remove_prefix(self._store, ref.prefix)
            except OSError:
                log.warning("could not remove uncommitted import segment %s", ref.prefix,
                            exc_info=True)
        self.written = []

    def _write(self) -> None:
        seg_id = self._next_id()
        prefix = f"{self._collection}/{seg_id}"
        n = self._rows
        pks = np.concatenate(self._pks) if len(self._pks) > 1 else self._pks[0]
        table = pa.Table.from_batches(self._scalars)
        table = table.rename_columns([stored_name(c) for c in table.column_names])
        vectors = {name: (self._buf[name][:n], spec.kind) for name, spec in self._specs.items()}
        # Registered before writing: abort() removes a half-written prefix too.
        ref = SegmentRef(seg_id, prefix, n)
        self.written.append(ref)
        manifest = SegmentWriter(self._store, prefix).write(
            pks, np.full(n, self._ts, np.uint64), vectors, table, schema_version=1)
        self.written[-1] = SegmentRef(seg_id, prefix, manifest.rows, segment_bytes(manifest))
        self._rows, self._scalar_bytes = 0, 0
        self._pks, self._scalars = [], []
