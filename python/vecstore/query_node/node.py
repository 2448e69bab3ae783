"""QueryNode: the sealed segments of the collections it serves, and their deletes.

A collection's deletes that reached delete logs (one per flush, attached to the flushed segment)
apply to every segment of the collection, so the node keeps them as one (pk, ts) set per
collection and passes it with the shard's newer deletes to each segment search. Segments are
mapped, never copied (Segment.open), and their checksums verified before use.
"""

from __future__ import annotations

import threading

import numpy as np

from vecstore.common.pks import pks_to_numpy
from vecstore.query_node.sealed import SealedSegment
from vecstore.storage.object import ObjectStore
from vecstore.storage.segment import DeltaInfo, Segment


class QueryNode:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._mu = threading.Lock()
        self._segments: dict[int, dict[int, SealedSegment]] = {}
        self._deletes: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}

    def load(self, collection_id: int, segment_id: int, prefix: str,
             deltas: list[DeltaInfo] = ()) -> None:
        seg = Segment.open(self._store, prefix, deltas=list(deltas))
        sealed = SealedSegment(seg)
        pk, ts = seg.deletes()
        with self._mu:
            self._segments.setdefault(collection_id, {})[segment_id] = sealed
            dp, dt = self._deletes.setdefault(collection_id, ([], []))
            if len(pk):
                dp.append(pks_to_numpy(pk))
                dt.append(np.asarray(ts, dtype=np.uint64))

    def segments(self, collection_id: int) -> list[tuple[int, SealedSegment]]:
        with self._mu:
            return sorted(self._segments.get(collection_id, {}).items())

    def deletes(self, collection_id: int, pk_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        with self._mu:
            dp, dt = self._deletes.get(collection_id, ([], []))
            if not dp:
                return np.empty(0, pk_dtype), np.empty(0, np.uint64)
            return np.concatenate(dp), np.concatenate(dt)

    def release(self, collection_id: int) -> None:
        with self._mu:
            segs = self._segments.pop(collection_id, {})
            self._deletes.pop(collection_id, None)
        for s in segs.values():
            s.segment.close()
