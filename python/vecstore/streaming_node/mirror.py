"""GrowingMirrors: a streaming node's copy of the vectors of the growing segments it logs, so that
it serves their vector searches (``vecstore serve --streaming-nodes N``).

The server's shard tells the node, with each insert record, which growing segment the rows go to
and the row number they start at (``[segment, row, specs]``). The node copies the record's
vectors into that segment's mirror only while the rows arrive contiguously from row 0 in this
session of the channel: then mirror row ``i`` is the shard's row ``i``, because the node applies
appends in the shard's log order, and every row the shard published came from an append the node
wrote. Anything else marks the segment unmirrored:

- a segment whose first record in this session did not start at row 0 (the shard replayed its
  earlier rows from the log after a recovery);
- a gap or an overlap in the row numbers (an append that failed after the shard staged it).

A search names the segment and how many rows the caller's snapshot holds; it is served only from
a mirror holding at least that many rows, and the caller searches its own copy otherwise. The
server keeps the filter, visibility and deletes (they arrive as the allow mask, one bit per row),
as it does for the query nodes' sealed segments. A reopened channel (a new session) starts with no
mirrors; a sealed or truncated segment's mirror is released by the server.
"""

from __future__ import annotations

import threading

import numpy as np

import vecstore
from vecstore.streaming_node.growing import Growable, VectorSpec
from vecstore.streaming_node.records import decode_insert


class _Mirror:
    def __init__(self) -> None:
        self.rows = 0
        self.ok = True
        self.fields: dict[str, Growable] = {}


class GrowingMirrors:
    """The mirrors of one channel's growing segments, by segment id."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._segments: dict[int, _Mirror] = {}

    def apply(self, growing: list, payload: object) -> None:
        """Copies an insert record's vectors (``payload``, as logged) into its segment's mirror,
        or marks the segment unmirrored (module docstring). Called in log order."""
        segment, row = int(growing[0]), int(growing[1])
        with self._mu:
            m = self._segments.get(segment)
            if m is None:
                m = self._segments[segment] = _Mirror()
                m.ok = row == 0
            if not m.ok:
                return
            if row != m.rows:
                m.ok, m.fields = False, {}
                return
            try:
                specs = {name: VectorSpec(str(kind), int(dim))
                         for name, (kind, dim) in growing[2].items()}
                _, vectors, _, _, _ = decode_insert(memoryview(payload), specs)  # type: ignore[arg-type]
                n = next(iter(vectors.values())).shape[0]
                for name, arr in vectors.items():
                    col = m.fields.get(name)
                    if col is None:
                        col = m.fields[name] = Growable(arr.dtype, arr.shape[1])
                    col.append(arr)
            except Exception:
                m.ok, m.fields = False, {}  # a copy that failed halfway: columns may differ
                raise
            m.rows += n

    def search(self, segment: int, rows: int, field: str, queries: np.ndarray, k: int,
               metric: str, packed: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact top-k over the first ``rows`` rows of the segment's ``field`` among the allowed
        ones (``packed``: one bit per row, little-endian; None allows all), as the shard's own
        ``GrowingView.search_rows`` computes it; None when the segment is not mirrored that far."""
        with self._mu:
            m = self._segments.get(segment)
            if m is None or not m.ok or m.rows < rows or field not in m.fields:
                return None
            base = m.fields[field].view(rows)  # rows below m.rows never change
        allow = None
        if packed is not None:
            allow = np.unpackbits(packed, count=rows, bitorder="little").view(bool)
        kk = min(k, rows)
        if kk == 0:
            shape = (queries.shape[0], 0)
            return np.empty(shape, dtype=np.int64), np.empty(shape, dtype=np.float32)
        return vecstore.knn(queries, base, kk, metric, allow=allow)

    def release(self, segments: list[int]) -> None:
        with self._mu:
            for s in segments:
                self._segments.pop(int(s), None)

    def count(self) -> int:
        with self._mu:
            return sum(1 for m in self._segments.values() if m.ok)
