"""The proxy's search path: validate a search, fan it out to every read part (sealed segments and
growing data) under one allow-mask per part, merge the per-part top-k lists by primary key and
shape the hits as pymilvus returns them (one list per query of ``{"id", "distance", "entity"}``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecstore.errors import InvalidArgument
from vecstore.proxy.convert import query_vectors
from vecstore.proxy.entities import entities, int_param, output_fields
from vecstore.proxy.reduce import merge_topk_sources

METRICS = {"L2", "IP", "COSINE", "HAMMING", "JACCARD"}


def search(proxy: Any, db: str, name: str, data: Any, limit: int, fields_req: Any, flt: str,
           params: dict | None, search_params: dict | None, anns_field: str | None,
           partitions: Any, offset: int, round_decimal: int, consistency_level: str | None = None
           ) -> list[list[dict[str, Any]]]:
    meta, schema, layout = proxy.collection(db, name)
    field = anns_field or (next(iter(layout.vectors)) if len(layout.vectors) == 1 else None)
    if field is None:
        raise InvalidArgument("multiple anns_fields exist, please specify a anns_field")
    if field not in layout.vectors:
        raise InvalidArgument(f"anns_field {field} is not a vector field of {name}")
    spec = layout.vectors[field]
    sp = dict(search_params or {})
    index_metric = meta.properties.get(f"metric_type.{field}")
    metric = str(sp.pop("metric_type", "") or index_metric or
                 ("HAMMING" if spec.kind == "binary" else "COSINE")).upper()
    if metric not in METRICS:
        raise InvalidArgument(f"metric type {metric} is not supported")
    if index_metric and metric != index_metric:
        raise InvalidArgument(f"metric type not match: invalid parameter[expected="
                              f"{index_metric}][actual={metric}]")
    for k in ("radius", "range_filter", "group_by_field"):
        if k in sp or k in (sp.get("params") or {}):
            raise InvalidArgument(f"search parameter {k} is not supported by vecstore yet")
    limit_i = int_param(limit, "limit", 1, 16384)
    offset_i = int_param(sp.pop("offset", offset), "offset", 0, 16384)
    if limit_i + offset_i > 16384:
        raise InvalidArgument("topk [limit + offset] should be in range [1, 16384]")
    queries = query_vectors(data, spec)
    partition_list = proxy._partitions(meta, partitions)
    fields, dynamic = output_fields(schema, layout, fields_req, False)
    compiled = proxy._compiled_filter(meta, schema, flt, params)
    parts, snapshot, del_pk, del_ts = proxy._parts(meta, layout, consistency_level)
    masks = proxy._masks(parts, layout, snapshot, del_pk, del_ts, compiled, partition_list)
    k = limit_i + offset_i
    results = []
    for p, m in zip(parts, masks):
        if p.rows == 0 or not m.any():
            continue
        rows, dist = p.search_rows(field, queries, k, metric, m)
        results.append((p, rows, dist))
    out: list[list[dict[str, Any]]] = [[] for _ in range(queries.shape[0])]
    if not results:
        return out
    # Reduce on primary keys (slots without a hit carry an infinite distance, which the merge
    # drops); each kept hit's column in the concatenated parts gives its part and row.
    merged = merge_topk_sources([(p.pks[np.maximum(r, 0)], d) for p, r, d in results], k,
                                metric)
    part_of_col = np.repeat(np.arange(len(results)), [r.shape[1] for _, r, _ in results])
    rows_cat = np.concatenate([r for _, r, _ in results], axis=1)
    for q, (ids, dists, cols) in enumerate(merged):
        ids, dists, cols = ids[offset_i:], dists[offset_i:], cols[offset_i:]
        hits: list[dict[str, Any]] = [{} for _ in range(ids.size)]
        if fields or dynamic:
            for pi in np.unique(part_of_col[cols]):
                at = np.flatnonzero(part_of_col[cols] == pi)
                got = entities(results[pi][0], rows_cat[q, cols[at]], fields, schema,
                           layout, dynamic)
                for n, entity in zip(at.tolist(), got):
                    hits[n] = entity
        for pk, d, entity in zip(ids.tolist(), dists.tolist(), hits):
            dv = round(d, round_decimal) if round_decimal >= 0 else d
            out[q].append({"id": pk, "distance": dv, "entity": entity})
    return out
