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

Memory: vector rows are never held here. Each batch's rows are written straight into the vector
files of the segment being filled (:class:`~vecstore.storage.segment.vector_file.VectorFileBuilder`:
one object-store writer per field, the NPY header patched in when the segment is cut), so a
segment costs the batch being added, plus its keys (a copy, 8 bytes a row for int64) and scalar
columns (the batches' slices) until it is written. The vector files are published when the
segment is cut, before its scalars, stats and manifest; until the import commits, no segment
refers to them.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from vecstore.coordinator.coordinator import SegmentRef
from vecstore.data_node.compaction import segment_bytes
from vecstore.data_node.gc import remove_prefix
from vecstore.storage.segment import SegmentWriter
from vecstore.storage.segment.vector_file import VectorFileBuilder
from vecstore.streaming_node.flush import stored_name
from vecstore.streaming_node.growing import VectorSpec

log = logging.getLogger(__name__)

_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "binary": np.uint8,
           "bfloat16": np.uint16}  # bfloat16 rows are stored as their raw bits


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
        self._builders: dict[str, VectorFileBuilder] = {}
        self._seg: SegmentRef | None = None  # the segment being filled
        self._rows = 0
        self._scalar_bytes = 0
        self._pks: list[np.ndarray] = []
        self._scalars: list[pa.RecordBatch] = []
        self.written: list[SegmentRef] = []

    def held_bytes(self) -> int:
        """Bytes of rows held in memory for the segment being filled (keys and scalars; vector
        rows are in the object store already)."""
        return sum(p.nbytes for p in self._pks) + sum(b.nbytes for b in self._scalars)

    def add(self, pks: np.ndarray, vectors: dict[str, np.ndarray], scalars: pa.RecordBatch
            ) -> None:
        n, at = len(pks), 0
        per_row = scalars.nbytes / n if n else 0.0
        while at < n:
            if self._seg is None:
                self._start()
            room = self._cap - self._rows
            left_bytes = self._seal_bytes - self._rows * self._row_bytes - self._scalar_bytes
            by_bytes = int(left_bytes // (self._row_bytes + per_row + pks.itemsize))
            take = max(1, min(n - at, room, by_bytes))  # at least one row per segment
            for name, arr in vectors.items():
                self._builders[name].append(arr[at:at + take])
            # A copy: a view would keep the whole batch's key buffer (Arrow's) alive.
            self._pks.append(np.array(pks[at:at + take]))
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
        return list(self.written)

    def abort(self) -> None:
        """Removes every segment written (best effort: what is left is garbage at next open)."""
        for b in self._builders.values():
            b.abort()
        self._builders, self._seg = {}, None
        for ref in self.written:
            try:
                remove_prefix(self._store, ref.prefix)
            except OSError:
                log.warning("could not remove uncommitted import segment %s", ref.prefix,
                            exc_info=True)
        self.written = []

    def _start(self) -> None:
        seg_id = self._next_id()
        prefix = f"{self._collection}/{seg_id}"
        # Registered before anything is written: abort() removes a half-written prefix too.
        self._seg = SegmentRef(seg_id, prefix, 0)
        self.written.append(self._seg)
        for name, spec in self._specs.items():
            self._builders[name] = VectorFileBuilder(self._store, prefix, name, spec.kind,
                                                     spec.columns)

    def _write(self) -> None:
        seg = self._seg
        assert seg is not None
        n = self._rows
        pks = np.concatenate(self._pks) if len(self._pks) > 1 else self._pks[0]
        table = pa.Table.from_batches(self._scalars)
        table = table.rename_columns([stored_name(c) for c in table.column_names])
        vectors = {name: b.finish() for name, b in self._builders.items()}
        self._builders = {}
        manifest = SegmentWriter(self._store, seg.prefix).write(
            pks, np.full(n, self._ts, np.uint64), vectors, table, schema_version=1)
        self.written[-1] = SegmentRef(seg.id, seg.prefix, manifest.rows,
                                      segment_bytes(manifest))
        self._seg = None
        self._rows, self._scalar_bytes = 0, 0
        self._pks, self._scalars = [], []
