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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecstore.errors import InvalidArgument
from vecstore.proxy.convert import query_vectors
from vecstore.proxy.entities import entities, output_fields
from vecstore.proxy.reduce import merge_topk_sources
from vecstore.proxy.search_params import HIGHER_IS_CLOSER, parse
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
    meta, schema, layout = proxy.collection(db, name)
    field = anns_field or (next(iter(layout.vectors)) if len(layout.vectors) == 1 else None)
    if field is None:
        raise InvalidArgument("multiple anns_fields exist, please specify a anns_field")
    if field not in layout.vectors:
        raise InvalidArgument(f"anns_field {field} is not a vector field of {name}")
    spec = layout.vectors[field]
    plan = parse(schema, search_params, index_metric=meta.properties.get(f"metric_type.{field}"),
                 default_metric="HAMMING" if spec.kind == "binary" else "COSINE", limit=limit,
                 offset=offset, group_by_field=group_by_field, group_size=group_size,
                 strict_group_size=strict_group_size)
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
    fields, dynamic = output_fields(schema, layout, fields_req, False)
    compiled = proxy._compiled_filter(meta, schema, flt, params)
    parts, snapshot, del_pk, del_ts = proxy._parts(meta, layout, consistency_level, snapshot_ts)
    if queries is None:
        # The ids pick query vectors, they do not filter: look them up in every loaded
        # partition, whatever partition_names and the filter say.
        loaded = proxy._partitions(meta, None)
        everything = proxy._masks(parts, layout, snapshot, del_pk, del_ts, None, loaded, pks)
        queries = np.ascontiguousarray(vectors_by_pk(parts, everything, field, pks, name))
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


def _topk(parts: list[Any], masks: list[np.ndarray], field: str, queries: np.ndarray,
          metric: str, limit: int, offset: int, index_params: dict[str, int] | None = None
          ) -> list[Ranked]:
    """Plain search: each part's top (limit + offset), merged on primary keys (slots without a
    hit carry an infinite distance, which the merge drops). ``index_params`` (ef, nprobe) go to
    the parts searched through an index."""
    k = limit + offset
    results, part_ids = [], []
    for pi, (p, m) in enumerate(zip(parts, masks)):
        if p.rows == 0 or not m.any():
            continue
        rows, dist = p.search_rows(field, queries, k, metric, m, params=index_params)
        results.append((p, rows, dist))
        part_ids.append(pi)
    if not results:
        none = np.empty(0, dtype=np.int64)
        return [Ranked(none, none.astype(np.float32), none.astype(np.float32), none, none, True)
                for _ in range(queries.shape[0])]
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


def _shape(parts: list[Any], ranked: list[Ranked], fields: list[str],
           dynamic: list[str] | None, schema: Any, layout: Any, round_decimal: int
           ) -> list[list[dict[str, Any]]]:
    """pymilvus's hits, gathering output fields part by part (column-wise, never per hit)."""
    out: list[list[dict[str, Any]]] = []
    for r in ranked:
        pks = r.pks.tolist()
        pk_only = fields == [layout.pk] and not dynamic  # the key alone: no column to gather
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
