"""The proxy's search path: validate a search completely, fan it out to every read part (sealed
segments and growing data) under one allow-mask per part, merge the per-part results by primary key
and shape the hits as pymilvus returns them (one list per query of ``{"id", "distance",
"entity"}``; ``entity`` holds the requested output fields only).

Kinds of search, all exact and all under one MVCC snapshot per call:

- plain top-k (``limit`` + ``offset``): each part's top ``limit + offset``, merged;
- range search (``radius``/``range_filter``) and grouping search (``group_by_field``): read the
  global ranking in growing prefixes (:mod:`vecstore.proxy.search_ranked`);
- search by primary key (``ids=``, Milvus 2.6.9+): the stored vectors of those entities on
  ``anns_field`` are the queries, read at the same snapshot as the search; the ids are not a
  filter, and one that has no visible entity is an error.

Options are parsed by :mod:`vecstore.proxy.search_params`; nothing runs before every option,
the query vectors, the filter and the partitions have been checked.

Per-call cost: a one-query search over a small collection costs far more in this bookkeeping than
in the kernels, so the common shapes are cheap. The parsed plan and output fields are cached per
request shape (and per CollectionMeta object, so any catalog change recomputes them); a read with
no ids, filter or partition rule uses the parts' shared visibility masks as they are; and a plain
top-k with one part holding rows takes that part's (query, k) arrays as the answer wherever a
merge would not change them (see :class:`OnePart`), shaping the hits straight from them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecstore.common.pools import pool
from vecstore.errors import InvalidArgument
from vecstore.proxy.convert import query_vectors
from vecstore.proxy.entities import entities, output_fields
from vecstore.proxy.parts import sealed_part
from vecstore.proxy.reduce import merge_topk_sources
from vecstore.proxy.search_params import HIGHER_IS_CLOSER, SearchPlan, parse
from vecstore.proxy.search_ranked import (
    Ranked,
    group_codes,
    grouped,
    range_topk,
    vectors_by_pk,
)
from vecstore.schema import DataType


def search(proxy: Any, db: str, name: str, data: Any, limit: int, fields_req: Any, flt: str,
           params: dict | None, search_params: dict | None, anns_field: str | None,
           partitions: Any, offset: int, round_decimal: int, consistency_level: str | None = None,
           *, ids: Any = None, group_by_field: str | None = None, group_size: int | None = None,
           strict_group_size: bool | None = None, snapshot_ts: int | None = None
           ) -> list[list[dict[str, Any]]]:
    plain = (ids is None and data is not None and isinstance(flt, str) and
             partitions is None and fields_req is None and offset == 0 and round_decimal == -1
             and group_by_field is None and group_size is None and strict_group_size is None
             and snapshot_ts is None and type(limit) is int)
    if plain:
        got = _fast(proxy, db, name, data, limit, search_params, anns_field, consistency_level,
                    flt, params)
        if got is not None:
            return got
    meta, schema, layout = proxy.collection(db, name)
    field = anns_field or (next(iter(layout.vectors)) if len(layout.vectors) == 1 else None)
    if field is None:
        raise InvalidArgument("multiple anns_fields exist, please specify a anns_field")
    if field not in layout.vectors:
        raise InvalidArgument(f"anns_field {field} is not a vector field of {name}")
    spec = layout.vectors[field]
    plan = _plan(proxy, meta, schema, field, spec.kind, search_params, limit, offset,
                 group_by_field, group_size, strict_group_size)
    if isinstance(round_decimal, bool) or not isinstance(round_decimal, (int, np.integer)) or \
            not -1 <= round_decimal <= 6:
        raise InvalidArgument(f"round_decimal {round_decimal!r} is invalid, should be -1 or an "
                              "integer in range [0, 6]")
    if ids is not None and data is not None:
        raise InvalidArgument("search takes query vectors (data) or primary keys (ids), not both")
    if ids is None and data is None:
        raise InvalidArgument("search needs data (query vectors) or ids (primary keys of stored "
                              "entities whose vectors are the queries)")
    if ids is not None:
        pks = proxy._pk_values(ids, layout)
        if pks.size == 0:
            raise InvalidArgument("search(ids=...) needs at least one primary key")
        queries = None
    else:
        queries = query_vectors(data, spec)
        if queries.shape[0] == 0:
            raise InvalidArgument("search needs at least one query vector")
    partition_list = proxy._partitions(meta, partitions)
    fields, dynamic = _output_fields(proxy, meta, schema, layout, fields_req)
    compiled = proxy._compiled_filter(meta, schema, flt, params)
    parts, snapshot, del_pk, del_ts = proxy._parts(meta, layout, consistency_level, snapshot_ts)
    if queries is None:
        # The ids pick query vectors, they do not filter: look them up in every loaded
        # partition, whatever partition_names and the filter say.
        loaded = proxy._partitions(meta, None)
        everything = proxy._masks(parts, layout, snapshot, del_pk, del_ts, None, loaded, pks)
        queries = np.ascontiguousarray(vectors_by_pk(parts, everything, field, pks, name))
    if plain and plan.group_by is None and not plan.ranged and not fields and not dynamic \
            and partition_list is None:
        frozen = _frozen(search_params)
        if frozen is not None:  # every check above passed: later calls may take _fast
            proxy.search_cache[("fast", meta.id, anns_field, limit, frozen)] = (
                meta, (field, spec, plan))
    if plan.group_by is None and not plan.ranged and compiled is None and partition_list is None:
        # Plain top-k under visibility alone: the shared masks, only read by _topk.
        found = _topk(parts, proxy._visibility(parts, snapshot, del_pk, del_ts), field, queries,
                      plan.metric, plan.limit, plan.offset, plan.index_params)
        return _shape(parts, found, fields, dynamic, schema, layout, round_decimal)
    masks = proxy._masks(parts, layout, snapshot, del_pk, del_ts, compiled, partition_list)
    if plan.group_by is not None:
        text = any(f.name == plan.group_by and f.dtype == DataType.VARCHAR
                   for f in schema.fields)
        codes = group_codes(parts, layout.pk, plan.group_by, text)
        ranked = grouped(parts, masks, field, queries, plan, codes)
    elif plan.ranged:
        ranked = range_topk(parts, masks, field, queries, plan)
    else:
        ranked = _topk(parts, masks, field, queries, plan.metric, plan.limit, plan.offset,
                       plan.index_params)
    return _shape(parts, ranked, fields, dynamic, schema, layout, round_decimal)


def _fast(proxy: Any, db: str, name: str, data: Any, limit: int, search_params: Any,
          anns_field: str | None, consistency_level: str | None, flt: str = "",
          params: dict | None = None) -> list[list[dict[str, Any]]] | None:
    """The plain search of a collection whose rows are all in one sealed segment: the same
    answer as the general path, with none of its generality. Taken only for a request shape
    (collection, field, limit, search_params) the general path has already checked under the
    current catalog entry, with no partitions, output fields, offset, rounding or ids (a filter
    is fine: the segment keeps the filter's rows AND its visibility as one allow-set, packed, per
    visibility mask and plan); returns None (nothing done) whenever anything else holds: growing
    rows, several segments, partitions with a load or drop rule."""
    meta, schema, layout = proxy.collection(db, name)
    frozen = _frozen(search_params)
    hit = proxy.search_cache.get(("fast", meta.id, anns_field, limit, frozen))
    if hit is None or hit[0] is not meta:
        return None
    field, spec, plan = hit[1]
    snap, snapshot, del_pk, del_ts, sealed = proxy._read_state(meta, layout, consistency_level)
    if len(sealed) != 1 or any(v.rows for _, v in snap.views()):
        return None
    seg = sealed[0][1]
    if seg.segment.rows == 0:
        return None
    queries = query_vectors(data, spec)
    if queries.shape[0] == 0:
        return None
    vis = seg.visibility(snapshot, del_pk, del_ts)
    allow = None if proxy._all_visible(vis) else vis
    packed = None
    if flt.strip():
        compiled = proxy._compiled_filter(meta, schema, flt, params)
        allow, packed, allowed = seg.filtered_allow(
            vis, allow is None, compiled.filter.plan,
            lambda: proxy._filter_mask(sealed_part(seg), layout, compiled))
        if not allowed:
            return None
    elif allow is not None and not allow.any():
        return None
    rows, dist = seg.knn_rows(field, queries, limit, plan.metric, allow,
                              params=plan.index_params, packed=packed)
    if rows.shape[0] == 1 and rows.shape[1] and rows[0, -1] >= 0:
        # One query, a full row: its hits as they are when strictly ordered (no tie for the
        # merge to order by key; keys within a segment are unique and padding is excluded).
        d = dist[0].tolist()
        if all(a < b for a, b in zip(d, d[1:])) if plan.metric not in HIGHER_IS_CLOSER else \
                all(a > b for a, b in zip(d, d[1:])):
            ids = seg.pks[rows[0]].tolist()
            if len(set(ids)) == len(ids):
                return [[{"id": pk, "distance": x, "entity": {}} for pk, x in zip(ids, d)]]
    found = one_part(0, seg.pks[np.maximum(rows, 0)], rows, dist, limit, plan.metric, 0)
    return _shape([], found, [], None, None, layout, -1)


_SCALARS = (str, int, float, bool, type(None))
_CACHE_LIMIT = 1024


def _frozen(search_params: Any) -> tuple | None:
    """A hashable key for ``search_params`` of plain scalar values (``params`` a dict of such),
    with every value's type in it (``1``, ``1.0`` and ``True`` parse differently); None when it
    has anything else, which is then parsed every time."""
    if search_params is None:
        return ()
    if type(search_params) is not dict:
        return None
    out = []
    for key, value in search_params.items():
        if key == "params" and type(value) is dict:
            if not all(type(v) in _SCALARS for v in value.values()):
                return None
            value = tuple((k, type(v), v) for k, v in value.items())
        elif type(value) not in _SCALARS:
            return None
        out.append((key, type(value), value))
    return tuple(out)


def _cached(proxy: Any, key: tuple | None, meta: Any, compute: Any) -> Any:
    """``compute()``, remembered under ``key`` while the catalog resolves to ``meta`` (every
    catalog write makes a new CollectionMeta). Errors are never cached, so a request checks in
    the same order and fails with the same error as an uncached one."""
    if key is None:
        return compute()
    cache = proxy.search_cache
    hit = cache.get(key)
    if hit is not None and hit[0] is meta:
        return hit[1]
    value = compute()
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = (meta, value)
    return value


def _plan(proxy: Any, meta: Any, schema: Any, field: str, kind: str, search_params: Any,
          limit: Any, offset: Any, group_by_field: Any, group_size: Any,
          strict_group_size: Any) -> SearchPlan:
    frozen = _frozen(search_params)
    simple = (frozen is not None and type(limit) is int and type(offset) is int
              and group_by_field is None and group_size is None and strict_group_size is None)
    key = ("plan", meta.id, field, limit, offset, frozen) if simple else None
    return _cached(proxy, key, meta, lambda: parse(
        schema, search_params, index_metric=meta.properties.get(f"metric_type.{field}"),
        default_metric="HAMMING" if kind == "binary" else "COSINE", limit=limit,
        offset=offset, group_by_field=group_by_field, group_size=group_size,
        strict_group_size=strict_group_size))


def _output_fields(proxy: Any, meta: Any, schema: Any, layout: Any, requested: Any
                   ) -> tuple[list[str], list[str] | None]:
    """:func:`output_fields` (search's default: none), cached for a list of names. Callers only
    read the lists."""
    key = None
    if requested is None:
        key = ("fields", meta.id, None)
    elif type(requested) in (list, tuple) and all(type(f) is str for f in requested):
        key = ("fields", meta.id, tuple(requested))
    return _cached(proxy, key, meta, lambda: output_fields(schema, layout, requested, False))


@dataclass
class OnePart:
    """Plain top-k hits when a single part holds rows: its (queries, w) arrays of primary keys,
    distances and rows, used as they are for every query whose row is already what the merge
    would return: every distance finite (no padding), strictly in ranking order (so no tie to
    order by primary key) and no primary key twice (nothing to deduplicate). ``merged`` holds the
    merge's (pks, dists, columns) for the other queries. ``offset`` hits are skipped."""

    part: int
    pks: np.ndarray
    dist: np.ndarray
    rows: np.ndarray
    merged: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    offset: int
    metric: str
    # (pks, dists) of a single query's row as Python lists, when one_part made them anyway
    row_lists: tuple[list[Any], list[float]] | None = None

    def ranked(self) -> list[Ranked]:
        """The general form: one Ranked per query."""
        out = []
        higher = self.metric in HIGHER_IS_CLOSER
        off = self.offset
        for q in range(self.pks.shape[0]):
            if q in self.merged:
                ids, dists, cols = self.merged[q]
                ids, dists, rows = ids[off:], dists[off:], self.rows[q, cols[off:]]
            else:
                ids, dists, rows = self.pks[q, off:], self.dist[q, off:], self.rows[q, off:]
            key = -dists if higher else dists
            out.append(Ranked(ids, dists, key, np.full(ids.size, self.part, dtype=np.intp), rows,
                              True))
        return out

    def lists(self) -> tuple[list[list[Any]], list[list[float]]]:
        """(primary keys, distances) of every query's hits as Python lists."""
        off = self.offset
        if self.row_lists is not None and not self.merged:
            return [self.row_lists[0][off:]], [self.row_lists[1][off:]]
        pks, dists = self.pks[:, off:].tolist(), self.dist[:, off:].tolist()
        for q, (ids, d, _) in self.merged.items():
            pks[q], dists[q] = ids[off:].tolist(), d[off:].tolist()
        return pks, dists


_SMALL_ROW = 64  # one_part checks a single query's row of up to this many hits in Python
_INF = float("inf")


def one_part(part: int, pks: np.ndarray, rows: np.ndarray, dist: np.ndarray, k: int,
             metric: str, offset: int) -> OnePart:
    """The single-part top-k (``pks``: the part's keys of ``rows``), equal to what
    :func:`merge_topk_sources` makes of that part alone: rows it would change go through it."""
    dist = dist.astype(np.float32, copy=False)
    if dist.shape[0] == 1 and dist.shape[1] <= _SMALL_ROW:
        # One query (the common call): the same checks on Python lists, cheaper than a dozen
        # numpy calls on ten values.
        ids, d = pks[0].tolist(), dist[0].tolist()
        # Strictly ordered = sorted with no value twice; finite = its extremes are (NaN never
        # comes out of the kernels, which reject non-finite inputs).
        ordered = d == sorted(d, reverse=metric in HIGHER_IS_CLOSER) and len(set(d)) == len(d)
        if ordered and -_INF < min(d) and max(d) < _INF and len(set(ids)) == len(ids):
            return OnePart(part, pks, dist, rows, {}, offset, metric, (ids, d))
        merged = {0: merge_topk_sources([(pks, dist)], k, metric)[0]}
        return OnePart(part, pks, dist, rows, merged, offset, metric)
    if dist.shape[1] > 1:
        ahead = dist[:, :-1] > dist[:, 1:] if metric in HIGHER_IS_CLOSER else \
            dist[:, :-1] < dist[:, 1:]
        ok = ahead.all(axis=1)
        spk = np.sort(pks, axis=1)
        ok &= (spk[:, 1:] != spk[:, :-1]).all(axis=1)
    else:
        ok = np.ones(dist.shape[0], dtype=bool)
    ok &= np.isfinite(dist).all(axis=1)
    merged = {}
    for q in np.flatnonzero(~ok).tolist():
        merged[q] = merge_topk_sources([(pks[q:q + 1], dist[q:q + 1])], k, metric)[0]
    return OnePart(part, pks, dist, rows, merged, offset, metric)


def _topk(parts: list[Any], masks: list[np.ndarray | None], field: str, queries: np.ndarray,
          metric: str, limit: int, offset: int, index_params: dict[str, int] | None = None
          ) -> list[Ranked] | OnePart:
    """Plain search: each part's top (limit + offset), merged on primary keys (slots without a
    hit carry an infinite distance, which the merge drops). ``index_params`` (ef, nprobe) go to
    the parts searched through an index. A mask of None allows every row of its part."""
    k = limit + offset
    todo = [(pi, p, m) for pi, (p, m) in enumerate(zip(parts, masks))
            if p.rows and (m is None or m.any())]
    found = _search_parts(todo, field, queries, k, metric, index_params)
    results = [(p, *found[pi]) for pi, p, _ in todo]
    part_ids = [pi for pi, _, _ in todo]
    if not results:
        none = np.empty(0, dtype=np.int64)
        return [Ranked(none, none.astype(np.float32), none.astype(np.float32), none, none, True)
                for _ in range(queries.shape[0])]
    if len(results) == 1:
        p, rows, dist = results[0]
        return one_part(part_ids[0], p.pks[np.maximum(rows, 0)], rows, dist, k, metric, offset)
    merged = merge_topk_sources([(p.pks[np.maximum(r, 0)], d) for p, r, d in results], k,
                                metric)
    # Each kept hit's column in the concatenated parts gives its part and row.
    part_of_col = np.repeat(np.asarray(part_ids), [r.shape[1] for _, r, _ in results])
    rows_cat = np.concatenate([r for _, r, _ in results], axis=1)
    out = []
    for q, (ids, dists, cols) in enumerate(merged):
        ids, dists, cols = ids[offset:], dists[offset:], cols[offset:]
        key = -dists if metric in HIGHER_IS_CLOSER else dists
        out.append(Ranked(ids, dists, key, part_of_col[cols], rows_cat[q, cols], True))
    return out


def _search_parts(todo: list[tuple[int, Any, np.ndarray | None]], field: str,
                  queries: np.ndarray, k: int, metric: str, index_params: dict | None
                  ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(rows, distances) of each (index, part, mask) in ``todo``. Parts searched in query-node
    processes run at the same time (their calls wait on sockets, not on this process's cores);
    the others run here, one after the other (their kernels use every core already)."""
    remote = [t for t in todo if t[1].remote]
    futures = {}
    if len(remote) > 1:
        ex = pool("query-fanout", 16)
        futures = {pi: ex.submit(p.search_rows, field, queries, k, metric, m,
                                 params=index_params) for pi, p, m in remote}
    out = {pi: p.search_rows(field, queries, k, metric, m, params=index_params)
           for pi, p, m in todo if pi not in futures}
    out.update({pi: f.result() for pi, f in futures.items()})
    return out


def _shape(parts: list[Any], ranked: list[Ranked] | OnePart, fields: list[str],
           dynamic: list[str] | None, schema: Any, layout: Any, round_decimal: int
           ) -> list[list[dict[str, Any]]]:
    """pymilvus's hits, gathering output fields part by part (column-wise, never per hit)."""
    pk_only = fields == [layout.pk] and not dynamic  # the key alone: no column to gather
    if isinstance(ranked, OnePart):
        if (fields or dynamic) and not pk_only:
            ranked = ranked.ranked()
        elif ranked.pks.size <= _GC_PAUSE_HITS:
            return _shape_keys(ranked, layout.pk if pk_only else None, round_decimal)
        else:
            with _gc_paused():
                return _shape_keys(ranked, layout.pk if pk_only else None, round_decimal)
    if len(ranked) < 2 or sum(r.pks.size for r in ranked) <= _GC_PAUSE_HITS:
        return _shape_hits(parts, ranked, fields, dynamic, schema, layout, round_decimal,
                           pk_only)
    with _gc_paused():
        return _shape_hits(parts, ranked, fields, dynamic, schema, layout, round_decimal,
                           pk_only)


def _shape_hits(parts: list[Any], ranked: list[Ranked], fields: list[str],
                dynamic: list[str] | None, schema: Any, layout: Any, round_decimal: int,
                pk_only: bool) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for r in ranked:
        pks = r.pks.tolist()
        hits: list[dict[str, Any]] = [{layout.pk: pk} if pk_only else {} for pk in pks]
        if (fields or dynamic) and not pk_only:
            for pi in np.unique(r.part):
                at = np.flatnonzero(r.part == pi)
                got = entities(parts[pi], r.row[at], fields, schema, layout, dynamic)
                for n, entity in zip(at.tolist(), got):
                    hits[n] = entity
        dists = r.dist.tolist()
        if round_decimal >= 0:
            dists = [round(d, round_decimal) for d in dists]
        out.append([{"id": pk, "distance": d, "entity": e}
                    for pk, d, e in zip(pks, dists, hits)])
    return out


def _shape_keys(found: OnePart, pk_name: str | None, round_decimal: int
                ) -> list[list[dict[str, Any]]]:
    """:func:`_shape` of hits whose entity is empty (``pk_name`` None) or the key alone, from
    whole-batch ``tolist()`` conversions."""
    pks, dists = found.lists()
    if round_decimal >= 0:
        dists = [[round(d, round_decimal) for d in row] for row in dists]
    if pk_name is None:
        return [[{"id": pk, "distance": d, "entity": {}} for pk, d in zip(pr, dr)]
                for pr, dr in zip(pks, dists)]
    return [[{"id": pk, "distance": d, "entity": {pk_name: pk}} for pk, d in zip(pr, dr)]
            for pr, dr in zip(pks, dists)]


_GC_PAUSE_HITS = 2048  # results with more hits than this are shaped under _gc_paused


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pauses the cyclic garbage collector (if it is on) while many hits are shaped. Two dicts
    per hit, all kept: past a few thousand, the collector's passes over the young containers (and
    the older generations those passes trigger) cost about as much as building them (1,000 x 10
    hits: ~2x), and no hit can be part of a cycle. Whatever is allocated meanwhile is still
    collected afterwards. (Another thread's gc.disable() during the pause would be undone.)"""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
