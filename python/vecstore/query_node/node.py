"""QueryNode: the sealed segments of the collections it serves, and their deletes.

A collection's deletes that reached delete logs (written at flush and attached to the flushed
segment, or rewritten by compaction onto its output) apply to every segment of the collection, so
the node keeps them as one (pk, ts) set per collection — the concatenation of every loaded
segment's logs — and passes it with the shard's newer deletes to each segment search. Segments
are mapped, never copied (Segment.open), and their checksums verified before use.

Invariants readers rely on:

- A change is one step under the node's lock: :meth:`load` adds a segment, :meth:`swap` adds a
  compaction's output and removes its inputs together (the output is opened before the lock is
  taken), :meth:`clear` empties a collection. A reader's :meth:`segments` sees the old set or the
  new one, never a mix.
- A swap may drop delete entries (those compaction applied and no other segment needs) only
  together with the rows they hid, so a reader that lists deletes before segments (the proxy
  does) never gets an older segment set with a newer, smaller delete set.
- An index swap (:meth:`attach_index`) replaces one segment's field -> index dict under the
  lock; a search holding the segment uses the old dict or the new one.
- Removed segments are not closed: a reader may still hold them, and their mapped files stay
  valid after the files are unlinked (POSIX); they are unmapped when the last reference goes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from vecstore.errors import InvalidArgument
from vecstore.index.segment_index import SegmentIndex
from vecstore.query_node.sealed import SealedSegment
from vecstore.storage.object import ObjectStore
from vecstore.storage.segment import DeltaInfo, Segment


class QueryNode:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._mu = threading.Lock()
        self._segments: dict[int, dict[int, SealedSegment]] = {}
        self._deletes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # cache, rebuilt on change

    def _open(self, segment_id: int, prefix: str, deltas: Iterable[DeltaInfo],
              covers: frozenset[int] = frozenset()) -> SealedSegment:
        sealed = SealedSegment(Segment.open(self._store, prefix, deltas=list(deltas)), segment_id,
                               covers)
        sealed._own_deletes()  # read and checked now, not under the lock or in a search
        return sealed

    def load(self, collection_id: int, segment_id: int, prefix: str,
             deltas: Iterable[DeltaInfo] = ()) -> None:
        sealed = self._open(segment_id, prefix, deltas)
        with self._mu:
            self._segments.setdefault(collection_id, {})[segment_id] = sealed
            self._deletes.pop(collection_id, None)

    def load_many(self, collection_id: int, segments: Iterable[tuple[int, str]]) -> None:
        """Loads several new segments (id, prefix; no delete logs) in one step: a read sees
        all of them or none (a bulk import's segments)."""
        opened = [self._open(sid, prefix, ()) for sid, prefix in segments]
        with self._mu:
            segs = self._segments.setdefault(collection_id, {})
            for sealed in opened:
                segs[sealed.segment_id] = sealed
            self._deletes.pop(collection_id, None)

    def swap(self, collection_id: int, remove: Iterable[int], segment_id: int, prefix: str,
             deltas: Iterable[DeltaInfo] = ()) -> None:
        """Replaces the segments ``remove`` by the one at ``prefix`` (a compaction's output), in
        one step. The output covers the inputs' rows, so it inherits their covers."""
        remove = list(remove)
        sealed = self._open(segment_id, prefix, deltas)
        with self._mu:
            segs = self._segments.setdefault(collection_id, {})
            missing = [r for r in remove if r not in segs]
            if missing:
                raise InvalidArgument(
                    f"cannot swap segments {missing} of collection {collection_id}: not loaded "
                    "(was the collection dropped or truncated meanwhile?)")
            covers = frozenset().union(*(segs[r].covers for r in remove))
            sealed.covers = sealed.covers | covers
            segs[segment_id] = sealed
            for r in remove:
                del segs[r]
            self._deletes.pop(collection_id, None)

    def attach_index(self, collection_id: int, segment_id: int, field: str,
                     index: SegmentIndex | None) -> bool:
        """Swaps the field's index of one loaded segment (None: back to exact search) in one
        step for readers; False if the segment is no longer loaded (compacted away, dropped)."""
        with self._mu:
            sealed = self._segments.get(collection_id, {}).get(segment_id)
            if sealed is None:
                return False
            sealed.attach_index(field, index)
            return True

    def detach_indexes(self, collection_id: int, field: str) -> None:
        """Every segment of the collection searches ``field`` exactly again (drop_index)."""
        with self._mu:
            for sealed in self._segments.get(collection_id, {}).values():
                sealed.attach_index(field, None)

    def segments(self, collection_id: int) -> list[tuple[int, SealedSegment]]:
        with self._mu:
            return sorted(self._segments.get(collection_id, {}).items())

    def deletes(self, collection_id: int, pk_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """(pk, ts) of every committed delete log of the collection's loaded segments."""
        with self._mu:
            cached = self._deletes.get(collection_id)
            if cached is None:
                own = [s._own_deletes() for s in self._segments.get(collection_id, {}).values()]
                own = [d for d in own if len(d[0])]
                if own:
                    cached = (np.concatenate([p for p, _ in own]),
                              np.concatenate([t for _, t in own]))
                else:
                    cached = (np.empty(0, pk_dtype), np.empty(0, np.uint64))
                self._deletes[collection_id] = cached
            return cached

    def clear(self, collection_id: int) -> None:
        """Forgets every segment of the collection (truncate), without closing them: a search
        in flight may still read them."""
        with self._mu:
            self._segments.pop(collection_id, None)
            self._deletes.pop(collection_id, None)

    def release(self, collection_id: int) -> None:
        with self._mu:
            segs = self._segments.pop(collection_id, {})
            self._deletes.pop(collection_id, None)
        for s in segs.values():
            s.segment.close()
