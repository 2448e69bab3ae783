"""SealedSegment: search one immutable segment at a snapshot timestamp.

Wraps an opened :class:`~vecstore.storage.segment.Segment` (mapped, checksummed) and applies the
same MVCC rule as growing data (:mod:`vecstore.common.mvcc`): the segment's own delete logs and the
shard's newer deletes (passed by the caller, who owns them) both count. The mapped vectors go to
the exact-search kernels without a copy; the primary keys and timestamps are decoded once per
segment and cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

import vecstore
from vecstore.common.mvcc import visible
from vecstore.common.pks import pks_to_numpy
from vecstore.compute import QuantizedFlat
from vecstore.errors import InvalidArgument
from vecstore.expr import JsonCache, SortedColumn
from vecstore.index.segment_index import SegmentIndex
from vecstore.storage.segment import Segment

# Below this many rows a plain scan takes well under a millisecond: no quantised copy.
QUANTIZED_MIN_ROWS = 20_000


FILTER_CACHE_ENTRIES = 16


class MaskCache:
    """A small thread-safe LRU of filter plan -> row mask."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._mu = threading.Lock()
        self._d: OrderedDict[object, np.ndarray] = OrderedDict()

    def get(self, key: object) -> np.ndarray | None:
        with self._mu:
            got = self._d.get(key)
            if got is not None:
                self._d.move_to_end(key)
            return got

    def put(self, key: object, mask: np.ndarray) -> None:
        with self._mu:
            self._d[key] = mask
            self._d.move_to_end(key)
            while len(self._d) > self._entries:
                self._d.popitem(last=False)


class SealedSegment:
    """A loaded sealed segment that answers searches at a snapshot."""

    def __init__(self, segment: Segment, segment_id: int = -1,
                 covers: frozenset[int] = frozenset()) -> None:
        self.segment = segment
        self.segment_id = segment_id
        # Ids of every segment whose rows this one holds: itself, and after a compaction its
        # inputs' covers. A reader skips growing views with these ids (see ShardSnapshot.views).
        self.covers = covers | ({segment_id} if segment_id >= 0 else frozenset())
        self._pks: np.ndarray | None = None
        self._ts: np.ndarray | None = None
        self._del: tuple[np.ndarray, np.ndarray] | None = None
        self._quantized_by: dict[tuple[str, str], QuantizedFlat] = {}
        # field -> its built index (see attach_index); replaced whole, never mutated, so a
        # reader sees the old dict or the new one.
        self.indexes: dict[str, SegmentIndex] = {}
        self._build_mu = threading.Lock()
        # The last visibility mask and the deletes it was computed from (see visibility()).
        self._vis_key: tuple | None = None
        self._vis: np.ndarray | None = None
        # The read-only delete arrays the cached mask was last checked against, and their newest
        # timestamp: the proxy passes the same objects while no delete arrives.
        self._vis_arrays: tuple[object, object] = (None, None)
        self._vis_newest = 0
        # Decoded JSON columns for filters: the segment never changes, so one decode serves
        # every later query (the first JSON filter over 1M rows costs ~0.4 s, later ones ~2 ms).
        self.json_cache = JsonCache(max_columns=4)
        self._sorted: dict[str, SortedColumn] = {}  # scalar indexes, built at first use
        # Filter plan -> its read-only row mask: the segment never changes, so a repeated filter
        # (parameters substituted) is answered by a lookup.
        self.filter_cache = MaskCache(FILTER_CACHE_ENTRIES)
        self.allow_cache = MaskCache(FILTER_CACHE_ENTRIES)  # see filtered_allow

    def filtered_allow(self, vis: np.ndarray, all_visible: bool, plan: object,
                       filter_mask: Callable[[], np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray, int]:
        """(allow mask, its packed bits, allowed count) of a filter's rows among the visible
        ones, remembered per (visibility mask object, filter plan): a repeated filtered search
        under unchanged deletes costs a lookup. ``filter_mask()`` computes the filter's rows."""
        key = (plan, id(vis))
        hit = self.allow_cache.get(key)
        if hit is not None and hit[0] is vis:
            return hit[1], hit[2], hit[3]
        rows = filter_mask()
        mask = rows if all_visible else rows & vis
        mask.flags.writeable = False
        packed = np.packbits(mask, bitorder="little")
        entry = (vis, mask, packed, int(np.count_nonzero(mask)))
        self.allow_cache.put(key, entry)  # type: ignore[arg-type]
        return entry[1], entry[2], entry[3]

    def sorted_column(self, name: str) -> SortedColumn:
        """The scalar index of column ``name`` (an INT or VARCHAR field without nulls; the
        caller checks the declaration), built at its first use: ~0.1 s per million int rows."""
        got = self._sorted.get(name)
        if got is None:
            with self._build_mu:
                got = self._sorted.get(name)
                if got is None:
                    col = self.segment.scalars().column(name)
                    values = col.to_numpy() if col.null_count == 0 else None
                    if values is None:
                        raise InvalidArgument(f"column {name} has nulls: no scalar index")
                    got = self._sorted[name] = SortedColumn(values)
        return got

    @property
    def pks(self) -> np.ndarray:
        if self._pks is None:
            self._pks = pks_to_numpy(self.segment.pks())
        return self._pks

    @property
    def timestamps(self) -> np.ndarray:
        """Insert timestamps (uint64), decoded once."""
        if self._ts is None:
            # _max_ts first: a concurrent reader that sees _ts set goes on to read _max_ts.
            ts = np.asarray(self.segment.timestamps(), dtype=np.uint64)
            self._max_ts = int(ts.max()) if ts.size else 0
            self._ts = ts
        return self._ts

    def visibility(self, snapshot: int, del_pk: np.ndarray, del_ts: np.ndarray) -> np.ndarray:
        """Rows visible at ``snapshot`` given the segment's delete logs and (del_pk, del_ts),
        as :meth:`allow_mask`, cached: a read at or after every row's and every delete's
        timestamp does not depend on the snapshot, and consecutive reads usually see the same
        deletes, so the mask is recomputed only when the deletes change (compared by content:
        O(deletes), against O(rows) for the mask). The returned array is shared: callers must
        not modify it."""
        ts = self.timestamps
        # The same (read-only, cached upstream) delete arrays as last time: nothing to compare.
        if self._vis is not None and del_pk is self._vis_arrays[0] and \
                del_ts is self._vis_arrays[1] and snapshot >= self._vis_newest:
            return self._vis
        newest = max(self._max_ts, int(del_ts.max()) if del_ts.size else 0)
        if snapshot < newest:
            return self.allow_mask(snapshot, del_pk, del_ts)
        key = (del_pk.dtype.str, del_pk.size, hash(del_pk.tobytes()), hash(del_ts.tobytes()))
        if key != self._vis_key or self._vis is None:
            mask = self.allow_mask(snapshot, del_pk, del_ts) if del_pk.size or \
                self._own_deletes()[0].size else np.ones(ts.size, dtype=bool)
            mask.flags.writeable = False
            self._vis, self._vis_key = mask, key
        if not del_pk.flags.writeable and not del_ts.flags.writeable:
            self._vis_arrays, self._vis_newest = (del_pk, del_ts), newest
        return self._vis

    def knn_rows(self, field: str, queries: np.ndarray, k: int, metric: str,
                 allow: np.ndarray | None, threads: int = 0, *, params: dict | None = None,
                 packed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows among ``allow`` (a complete mask: visibility included, or None for every
        row); the read path's entry, which has already applied MVCC. Searched through the
        field's index when one is attached for ``metric`` and the index judges itself the better
        plan for this allow-set (``params``: its ef / nprobe), exactly otherwise. ``packed``:
        ``allow`` already packed (np.packbits, little bit order), which an index reads as is."""
        rows = self.segment.rows
        if allow is not None and allow.shape != (rows,):
            raise InvalidArgument(f"allow must have one flag per row ({rows})")
        if packed is None and allow is not None and allow.all():
            allow = None  # the kernels skip the bitset
        built = self.indexes.get(field)
        if built is not None and built.spec.metric == metric.upper():
            got = built.search(queries, k, allow, params, threads, packed=packed)
            if got is not None:
                return got
        index = self._quantized(field, metric, queries.shape[0])
        if index is not None:
            return index.search(queries, min(k, rows), allow=allow, threads=threads)
        return vecstore.knn(queries, self.segment.vectors(field), min(k, rows), metric,
                            allow=allow, threads=threads)

    def _quantized(self, field: str, metric: str, queries: int) -> QuantizedFlat | None:
        """The segment's QuantizedFlat for (field, metric), built at the first search that can
        use it: float32 vectors, L2/IP/COSINE, at least QUANTIZED_MIN_ROWS rows, fewer than 32
        queries (larger batches go to knn's batched path anyway). Its answers are identical to
        knn's; it costs ~(dim + 12) bytes per row and a build of ~1 ms per 1,000 rows x 128."""
        key = (field, metric.upper())
        if queries >= 32 or key[1] not in ("L2", "IP", "COSINE") or \
                self.segment.rows < QUANTIZED_MIN_ROWS:
            return None
        index = self._quantized_by.get(key)
        if index is None:
            base = self.segment.vectors(field)
            if base.dtype != np.float32:
                return None
            with self._build_mu:  # one build per key, even when searches race
                index = self._quantized_by.get(key)
                if index is None:
                    index = self._quantized_by[key] = QuantizedFlat(base, key[1])
        return index

    def attach_index(self, field: str, index: SegmentIndex | None) -> None:
        """Makes ``index`` the field's index (None: search the field exactly); atomic for
        readers."""
        indexes = dict(self.indexes)
        if index is None:
            indexes.pop(field, None)
        else:
            indexes[field] = index
        self.indexes = indexes

    def _own_deletes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._del is None:
            pk, ts = self.segment.deletes()
            self._del = (pks_to_numpy(pk), np.asarray(ts, dtype=np.uint64))
        return self._del

    def allow_mask(self, snapshot: int, del_pk: np.ndarray | None = None,
                   del_ts: np.ndarray | None = None) -> np.ndarray:
        """Rows visible at ``snapshot`` given the segment's delete logs plus (del_pk, del_ts)."""
        own_pk, own_ts = self._own_deletes()
        if del_pk is not None and del_ts is not None and len(del_pk):
            # No cast to own_pk's dtype: a narrower string dtype would cut longer keys.
            own_pk = np.concatenate([own_pk, np.asarray(del_pk)])
            own_ts = np.concatenate([own_ts, np.asarray(del_ts, dtype=np.uint64)])
        return visible(self.pks, self.timestamps, own_pk, own_ts, snapshot)

    def search_rows(self, field: str, queries: np.ndarray, k: int, metric: str, snapshot: int,
                    del_pk: np.ndarray | None = None, del_ts: np.ndarray | None = None,
                    allow: np.ndarray | None = None, threads: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k (row numbers, distances), each (queries, min(k, rows)), among rows visible
        at ``snapshot`` and allowed by ``allow`` (a filter mask, one flag per row, or None).
        Slots without a hit hold row -1 and a +/-inf distance (see vecstore.knn)."""
        rows = self.segment.rows
        mask = self.allow_mask(snapshot, del_pk, del_ts)
        if allow is not None:
            if allow.shape != (rows,):
                raise InvalidArgument(f"allow must have one flag per row ({rows})")
            mask &= allow
        return vecstore.knn(queries, self.segment.vectors(field), min(k, rows), metric,
                            allow=mask, threads=threads)

    def search(self, field: str, queries: np.ndarray, k: int, metric: str, snapshot: int,
               del_pk: np.ndarray | None = None, del_ts: np.ndarray | None = None,
               allow: np.ndarray | None = None, threads: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`search_rows`, with primary keys instead of row numbers."""
        got, dist = self.search_rows(field, queries, k, metric, snapshot, del_pk, del_ts, allow,
                                     threads)
        return self.pks[np.maximum(got, 0)], dist
