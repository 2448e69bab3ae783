"""Proxy: the embedded access layer. Validates every request completely before any side effect,
routes writes to the collection's shard (streaming node), fans reads out to the query node's
sealed segments and the shard's growing data, applies MVCC, filters and partitions through one
allow-mask per part, merges top-k lists and shapes results the way pymilvus returns them.

The proxy holds no data; it gets the roles it talks to at construction (the in-process wiring in
:mod:`vecstore.transport.embedded`), and never imports their modules.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecstore.common.mvcc import visible
from vecstore.common.pks import pks_to_numpy
from vecstore.errors import InvalidArgument
from vecstore.proxy.consistency import ConsistencyLevel, guarantee_ts, parse_level
from vecstore.proxy.convert import PARTITION_COLUMN, Layout, split_batch
from vecstore.proxy.partitions import read_rule, route, rule_mask
from vecstore.proxy.parts import Part, growing_part, sealed_part
from vecstore.schema import CollectionSchema, DataType


def _filter_schema(schema: CollectionSchema) -> Any:
    from vecstore.expr import Schema

    fields = []
    for f in schema.fields:
        entry = {"name": f.name, "type": DataType(f.dtype).name,
                 "nullable": bool(getattr(f, "nullable", False))}
        et = f.params.get("element_type") if hasattr(f, "params") else None
        if f.dtype == DataType.ARRAY:
            entry["element_type"] = DataType(f.element_type).name
        elif et is not None:
            entry["element_type"] = et
        fields.append(entry)
    return Schema.from_dict({"fields": fields, "primary_key": schema.primary_field.name,
                             "enable_dynamic_field": schema.enable_dynamic_field})


_NO_ROWS = np.zeros(0, dtype=bool)  # the mask of a part without rows, shared (only read)
_NO_ROWS.flags.writeable = False
_PK_DTYPES = {"int64": np.dtype(np.int64), "string": np.dtype(str)}


def _frozen_params(params: dict | None) -> tuple | None:
    """A hashable key for filter_params of plain scalars (with their types: 1 and True differ);
    None for anything else (lists...), which is compiled every time."""
    if not params:
        return ()
    if type(params) is not dict:
        return None
    out = []
    for k, v in params.items():
        if type(v) not in (str, int, float, bool, type(None)):
            return None
        out.append((k, type(v), v))
    return tuple(out)


@dataclass(frozen=True)
class ScopedFilter:
    """A compiled filter with the collection's scalar-indexed fields (what _masks may ask the
    parts' sorted columns about)."""

    filter: Any  # vecstore.expr.Filter
    indexed: frozenset[str]


class Proxy:
    def __init__(self, coordinator: Any, streaming: Any, query: Any) -> None:
        self._coord = coordinator
        self._streaming = streaming
        self._query = query
        self._schemas: dict[int, tuple[CollectionSchema, Layout, Any]] = {}
        # Newest write acknowledged per collection: the guarantee of Session reads.
        self._session_ts: dict[int, int] = {}
        # id(mask) -> (weak reference, mask.all()) for shared visibility masks: _all_visible.
        self._all_true: dict[int, tuple[weakref.ref, bool]] = {}
        # Parsed search options by request shape (see proxy.search._plan_and_fields): each
        # entry keeps the CollectionMeta it was computed from and is used only while the
        # catalog still resolves to that same object.
        self.search_cache: dict[tuple, tuple[Any, Any]] = {}

    # ---- helpers -----------------------------------------------------------------------------

    def collection(self, db: str, name: str) -> tuple[Any, CollectionSchema, Layout]:
        meta = self._coord.catalog.resolve(db, name)
        cached = self._schemas.get(meta.id)
        if cached is None:
            schema = meta.collection_schema()
            cached = (schema, Layout.of(schema), None)
            self._schemas[meta.id] = cached
        return meta, cached[0], cached[1]

    def _compiled_filter(self, meta: Any, schema: CollectionSchema, text: str,
                         params: dict | None) -> Any:
        if not isinstance(text, str):
            raise InvalidArgument(f"filter must be a string, got {type(text).__name__}")
        if not text.strip():
            return None
        frozen = _frozen_params(params)
        key = ("filter", meta.id, text, frozen) if frozen is not None else None
        if key is not None:
            hit = self.search_cache.get(key)
            if hit is not None and hit[0] is meta:
                return hit[1]
        got = self._compile(meta, schema, text, params)
        if key is not None:  # a filter that compiled under this catalog entry compiles again
            if len(self.search_cache) >= 1024:
                self.search_cache.clear()
            self.search_cache[key] = (meta, got)
        return got

    def _compile(self, meta: Any, schema: CollectionSchema, text: str, params: dict | None
                 ) -> ScopedFilter:
        from vecstore.expr import compile_filter

        entry = self._schemas[meta.id]
        if entry[2] is None:
            entry = (entry[0], entry[1], _filter_schema(schema))
            self._schemas[meta.id] = entry
        vectors = entry[1].vectors  # the cached Layout
        indexed = frozenset(k[6:] for k in meta.properties
                            if k.startswith("index.") and k[6:] not in vectors)
        return ScopedFilter(compile_filter(text, entry[2], params or {}), indexed)

    def read_timestamp(self, db: str, name: str, consistency_level: str | None = None) -> int:
        """The snapshot a read of ``name`` at ``consistency_level`` would use now. Requests that
        span several reads (hybrid search, iterators) pin it with ``snapshot_ts=``, so every part
        sees the same data (rows compacted away after the pin excepted, as in Milvus)."""
        meta, _, layout = self.collection(db, name)
        return self._parts(meta, layout, consistency_level)[1]

    def _parts(self, meta: Any, layout: Layout, consistency_level: str | None = None,
               snapshot_ts: int | None = None
               ) -> tuple[list[Part], int, np.ndarray, np.ndarray]:
        """Every read part of the collection, the snapshot timestamp to read at, and the deletes
        (pk, ts) that apply. ``consistency_level``: the request's level, None for the
        collection's; ``snapshot_ts``: a snapshot pinned by :meth:`read_timestamp` instead."""
        snap, snapshot, del_pk, del_ts, sealed = self._read_state(
            meta, layout, consistency_level, snapshot_ts)
        parts = [sealed_part(s) for _, s in sealed]
        covered = {c for _, s in sealed for c in s.covers}
        # An empty view holds nothing any read could return (masks and searches skip it).
        parts += [growing_part(v, sid, snap.search_growing) for sid, v in snap.views()
                  if v.rows and sid not in covered]
        return parts, snapshot, del_pk, del_ts

    def _read_state(self, meta: Any, layout: Layout, consistency_level: str | None = None,
                    snapshot_ts: int | None = None) -> tuple[Any, int, np.ndarray, np.ndarray,
                                                             list[tuple[int, Any]]]:
        """What a read sees, before it is cut into parts: the shard's snapshot, the timestamp to
        read at, the deletes (pk, ts) that apply (read-only), and the sealed segments (listed
        after the shard snapshot: see ShardSnapshot.views)."""
        level = parse_level(meta.consistency_level if consistency_level is None
                            else consistency_level)
        shard = self._streaming.shard(meta.id)
        tso = self._coord.tso
        # Only Strong reads need a fresh timestamp; Bounded lags "now" by seconds, Session and
        # Eventually ignore it, so they read the clock without taking the TSO's lock.
        now = tso.now() if level is ConsistencyLevel.Strong else tso.peek()
        guarantee = guarantee_ts(level, now, self._session_ts.get(meta.id, 0))
        # Taken under the shard's lock, after the guarantee: every write stamped before the
        # guarantee is applied by then (see proxy.consistency), so reading at the newer of the two
        # timestamps sees a complete prefix of the log.
        snap = shard.snapshot()
        snapshot = snap.snapshot
        if snapshot_ts is not None:
            snapshot = min(snapshot_ts, max(guarantee, snapshot))
        elif guarantee > snapshot:
            snapshot = guarantee
        qpk, qts = self._query.deletes(meta.id, _PK_DTYPES[layout.pk_kind])
        # Both sides are read-only and cached by their owners, so one empty side is skipped
        # rather than copied. No astype(qpk.dtype): string keys would be cut to the narrower
        # width ('<U3'); an empty qpk has the collection's pk dtype, so skipping it changes no
        # dtype that matters.
        if snap.delete_pks.size == 0:
            del_pk, del_ts = qpk, qts
        elif qpk.size == 0:
            del_pk, del_ts = snap.delete_pks, snap.delete_ts
        else:
            del_pk = np.concatenate([qpk, snap.delete_pks])
            del_ts = np.concatenate([qts, snap.delete_ts])
        return snap, snapshot, del_pk, del_ts, self._query.segments(meta.id)

    def _masks(self, parts: list[Part], layout: Layout, snapshot: int, del_pk: np.ndarray,
               del_ts: np.ndarray, flt: Any, partitions: dict[str, int] | None,
               ids: np.ndarray | None = None) -> list[np.ndarray]:
        """One allow-mask per part: visible at ``snapshot``, among ``ids`` (if given), inside
        the partition rule ``partitions`` (from :meth:`_partitions`), passing the filter."""
        masks = []
        for p in parts:
            if p.rows == 0:
                masks.append(np.zeros(0, dtype=bool))  # what every step below would give
                continue
            m = (visible(p.pks, p.timestamps, del_pk, del_ts, snapshot) if p.visibility is None
                 else p.visibility(snapshot, del_pk, del_ts).copy())
            if ids is not None:
                m &= np.isin(p.pks, ids)
            if partitions is not None and p.rows:
                m &= rule_mask(p.table(layout.pk).column(PARTITION_COLUMN), p.timestamps,
                               partitions)
            if flt is not None and m.any():
                m &= self._filter_mask(p, layout, flt)
            masks.append(m)
        return masks

    @staticmethod
    def _filter_mask(p: Part, layout: Layout, flt: ScopedFilter) -> np.ndarray:
        """The filter's rows of part ``p``. An immutable part remembers the answer per plan
        (parameters substituted), so a repeated filter costs a lookup; its declared scalar
        indexes answer comparisons on their columns."""
        cache = p.filter_cache
        key = flt.filter.plan
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                return hit
        index = None
        if flt.indexed and p.sorted_column is not None:
            sorted_column, indexed = p.sorted_column, flt.indexed

            def index(name: str) -> Any:
                return sorted_column(name) if name in indexed else None

        mask = np.asarray(flt.filter.evaluate(p.table(layout.pk), cache=p.json_cache,
                                              index=index), dtype=bool)
        if cache is not None:
            mask.flags.writeable = False
            cache.put(key, mask)
        return mask

    def _visibility(self, parts: list[Part], snapshot: int, del_pk: np.ndarray,
                    del_ts: np.ndarray) -> list[np.ndarray | None]:
        """The allow-masks of a read with no ids, partition rule or filter (:meth:`_masks` with
        those left out), for callers that only read them: a part's cached visibility mask is
        shared, not copied, and is None when every row of the part is visible (the kernels then
        skip the bitset; ``all()`` is remembered per shared mask, not rescanned per read)."""
        out: list[np.ndarray | None] = []
        for p in parts:
            if p.visibility is None:
                out.append(visible(p.pks, p.timestamps, del_pk, del_ts, snapshot) if p.rows
                           else _NO_ROWS)
                continue
            m = p.visibility(snapshot, del_pk, del_ts)
            out.append(None if self._all_visible(m) else m)
        return out

    def _all_visible(self, mask: np.ndarray) -> bool:
        """``mask.all()`` of a shared read-only visibility mask, computed once per mask object
        (a segment keeps returning the same one while its deletes are unchanged)."""
        hit = self._all_true.get(id(mask))
        if hit is not None and hit[0]() is mask:
            return hit[1]
        value = bool(mask.all())
        if len(self._all_true) >= 256:  # entries of masks since replaced
            self._all_true = {k: v for k, v in self._all_true.items() if v[0]() is not None}
        self._all_true[id(mask)] = (weakref.ref(mask), value)
        return value

    def _partitions(self, meta: Any, names: object, ignore_load: bool = False
                    ) -> dict[str, int] | None:
        """The partition rule of a read naming ``names`` (see :mod:`vecstore.proxy.partitions`):
        None when the read may see every stored row's partition."""
        return read_rule(meta, names, ignore_load)

    # ---- writes ------------------------------------------------------------------------------

    def insert(self, db: str, name: str, data: Any, partition: str | None,
               upsert: bool = False, partial: bool = False) -> dict[str, Any]:
        """Validates a whole batch, routes it to partitions and writes it to the collection's
        shard in one WAL record. ``upsert`` replaces rows stored under the same keys; ``partial``
        (with ``upsert``) first overlays the request on the stored rows (proxy.upsert)."""
        meta, schema, layout = self.collection(db, name)
        if partial:
            from vecstore.proxy.upsert import check_rows, merge_rows, request_rows

            rows = request_rows(data)
            check_rows(rows, layout.pk)
            keys = [r.get(layout.pk) for r in rows]
            stored = self.query(db, name, "", ["*"], None, 0, None, None,
                                self._pk_values(keys, layout).tolist(),
                                consistency_level="Strong", ignore_load=True)
            data = merge_rows(rows, stored, layout.pk)
        if isinstance(data, dict) and not any(
                isinstance(v, (list, tuple, np.ndarray)) for v in data.values()):
            data = [data]  # one row as a dict
        # An upsert into an auto_id collection names the entities it replaces by their keys;
        # the replacements get new keys (Milvus 2.6's override mode).
        replacing = upsert and layout.auto_id
        if isinstance(data, list):
            table = schema.validate_rows(data, allow_insert_auto_id=replacing)
        else:
            table = schema.validate_columns(data, allow_insert_auto_id=replacing)
        n = table.num_rows
        if n == 0:
            raise InvalidArgument("insert needs at least one row")
        replaces = None
        if replacing:
            if layout.pk not in table.column_names:
                raise InvalidArgument(
                    f"upsert into an auto_id collection needs the primary key {layout.pk!r} of "
                    "every entity it replaces; use insert for new entities")
            replaces = pks_to_numpy(table.column(layout.pk))
            table = table.drop_columns([layout.pk])
        partitions = route(meta, table, partition)
        pks = self.primary_keys(table, layout)
        vectors, scalars = split_batch(table, layout, pks, partitions)
        ts = self._streaming.shard(meta.id).insert(pks, vectors, scalars,
                                                   upsert=upsert and not replacing,
                                                   replaces=replaces)
        self._session_ts[meta.id] = max(ts, self._session_ts.get(meta.id, 0))
        return {"upsert_count" if upsert else "insert_count": n, "ids": pks.tolist()}

    def primary_keys(self, table: Any, layout: Any) -> np.ndarray:
        """The keys of a validated batch (an Arrow table): its own, or new ones for an auto_id
        collection (allocated from the TSO in blocks of at most 2**18)."""
        if not layout.auto_id:
            return pks_to_numpy(table.column(layout.pk))
        ids = np.concatenate([np.arange(s, s + c, dtype=np.int64)
                              for s, c in self._id_blocks(table.num_rows)])
        return ids if layout.pk_kind == "int64" else ids.astype(str)

    def _id_blocks(self, n: int) -> list[tuple[int, int]]:
        out, left = [], n
        while left:
            c = min(left, 1 << 18)
            out.append((self._coord.tso.allocate(c), c))
            left -= c
        return out

    def delete(self, db: str, name: str, ids: Any, flt: str | None, params: dict | None,
               partition: str | None) -> dict[str, int]:
        meta, schema, layout = self.collection(db, name)
        if ids is not None and flt:
            raise InvalidArgument("Ambiguous filter parameter, only one deletion condition can "
                                  "be specified: pass ids or filter, not both")
        if ids is None and not flt:
            raise InvalidArgument("delete needs ids or a filter")
        if ids is not None:
            pks = self._pk_values(ids, layout)
            count = int(pks.size)  # Milvus reports the keys asked for
            if partition and pks.size:
                # Deletes are keyed by pk alone, so a delete scoped to a partition writes only the
                # keys stored there (a key stored in two partitions still goes from both).
                rows = self.query(db, name, "", [layout.pk], None, 0, None, [partition],
                                  pks.tolist(), consistency_level="Strong", ignore_load=True)
                pks = np.asarray([r[layout.pk] for r in rows], dtype=pks.dtype)
        else:
            rows = self.query(db, name, flt or "", [layout.pk], None, 0, params,
                              [partition] if partition else None, None)
            pks = np.asarray([r[layout.pk] for r in rows],
                             dtype=np.int64 if layout.pk_kind == "int64" else str)
            count = int(pks.size)
        if pks.size:
            ts = self._streaming.shard(meta.id).delete(pks)
            self._session_ts[meta.id] = max(ts, self._session_ts.get(meta.id, 0))
        return {"delete_count": count}

    def _pk_values(self, ids: Any, layout: Layout) -> np.ndarray:
        values = list(ids) if isinstance(ids, (list, tuple, np.ndarray)) else [ids]
        if layout.pk_kind == "int64":
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in values):
                raise InvalidArgument("primary keys of this collection are integers")
            return np.asarray(values, dtype=np.int64)
        if not all(isinstance(v, str) for v in values):
            raise InvalidArgument("primary keys of this collection are strings")
        return np.asarray(values, dtype=str)

    # ---- reads -------------------------------------------------------------------------------
    def search(self, db: str, name: str, *args: Any, **kwargs: Any) -> list[list[dict[str, Any]]]:
        """See :func:`vecstore.proxy.search.search`."""
        return _search()(self, db, name, *args, **kwargs)

    def query(self, db: str, name: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """See :func:`vecstore.proxy.query.query`."""
        from vecstore.proxy.query import query

        return query(self, db, name, *args, **kwargs)


def _search() -> Any:
    """proxy.search.search, imported at the first search (it pulls in the expression and
    ranking modules) and kept: one search per call makes even an import lookup visible."""
    global _SEARCH
    if _SEARCH is None:
        from vecstore.proxy.search import search

        _SEARCH = search
    return _SEARCH


_SEARCH: Any = None
