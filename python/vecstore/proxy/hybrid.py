"""The proxy's hybrid search: several vector searches of one collection fused into one ranking,
as Milvus 2.6's proxy does for ``HybridSearch`` (``internal/util/function/rerank``).

Each :class:`SubSearch` runs through the ordinary search path (same validation, filters,
partitions, MVCC and consistency level), with its own field, search params, limit and filter,
asking for the caller's output fields. Then, per query, every primary key any sub-search returned
gets one fused score:

- ``rrf``: sum over the sub-searches that returned it of ``1 / (k + rank)``, ``rank`` 1-based;
- ``weighted``: sum of ``weight_i * f_i(distance_i)``. With ``norm_score``, ``f_i`` maps the
  metric into [0, 1] with larger better: COSINE ``(1 + d) / 2``, IP ``1/2 + atan(d) / pi``,
  L2/HAMMING/JACCARD ``1 - 2 atan(d) / pi``. Without it ``f_i`` is the raw distance, except
  that when larger-is-better and smaller-is-better metrics are mixed the smaller-is-better
  ones still go through ``1 - 2 atan(d) / pi`` so that all point the same way.

Scores are float32 and accumulate in request order, as Milvus's do. Hits sort by score,
descending (ascending only for an un-normalised weighted fusion of smaller-is-better metrics
alone, as Milvus does), equal scores by primary key ascending; then ``offset`` hits are skipped
and ``limit`` kept, and ``round_decimal`` rounds the scores. The result has ``search``'s shape:
one list per query of ``{"id", "distance": score, "entity"}``; ``entity`` comes from the first
sub-search that returned the hit.

Sub-searches each read their own snapshot (``proxy.search`` takes one per call), so a write that
lands between two of them can be seen by one and not the other; Milvus pins one guarantee
timestamp for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vecstore.errors import InvalidArgument
from vecstore.proxy.convert import query_vectors
from vecstore.proxy.entities import int_param

MAX_REQUESTS = 1024  # Milvus's defaultMaxSearchRequest (internal/proxy)
_MAX_TOPK = 16384
_LARGER_IS_BETTER = {"IP", "COSINE", "BM25"}
_PI32 = np.float32(np.pi)
_GROUPING = ("group_by_field", "group_size", "strict_group_size")


@dataclass(frozen=True)
class SubSearch:
    """One AnnSearchRequest, already type-checked by the client."""

    data: Any
    anns_field: str | None
    param: dict | None
    limit: int
    expr: str | None = None
    expr_params: dict | None = None


@dataclass(frozen=True)
class Fusion:
    """The ranker: ``kind`` "rrf" (with ``k``) or "weighted" (``weights``, ``norm_score``)."""

    kind: str
    k: float = 60.0
    weights: tuple[float, ...] = ()
    norm_score: bool = True


def _field_and_metric(proxy: Any, meta: Any, layout: Any, name: str, req: SubSearch
                      ) -> tuple[str, str, int]:
    """(vector field, metric, number of queries) of one sub-search, resolved by search's rules."""
    field = req.anns_field or (next(iter(layout.vectors)) if len(layout.vectors) == 1 else None)
    if field is None:
        raise InvalidArgument("multiple anns_fields exist, please specify a anns_field in each "
                              "AnnSearchRequest")
    if field not in layout.vectors:
        raise InvalidArgument(f"anns_field {field} is not a vector field of {name}")
    spec = layout.vectors[field]
    param = req.param if isinstance(req.param, dict) else {}
    nested = param.get("params") if isinstance(param.get("params"), dict) else {}
    if any(k in param or k in nested for k in _GROUPING):
        raise InvalidArgument("grouping is not supported in an AnnSearchRequest's param: "
                              "hybrid_search ranks entities, not groups")
    # The search path reads metric_type at the top of the params or inside params["params"].
    metric = str(param.get("metric_type") or nested.get("metric_type") or
                 meta.properties.get(f"metric_type.{field}") or
                 ("HAMMING" if spec.kind == "binary" else "COSINE")).upper()
    return field, metric, int(query_vectors(req.data, spec).shape[0])


def _normaliser(metric: str, norm: bool, mixed: bool) -> Any:
    """Milvus's getNormalizeFunc: float32 distances to float32 per-request scores."""
    if not norm and (not mixed or metric in _LARGER_IS_BETTER):
        return lambda d: d
    if norm and metric == "COSINE":
        return lambda d: (np.float32(1) + d) * np.float32(0.5)
    if norm and metric == "IP":
        return lambda d: np.float32(0.5) + np.arctan(d.astype(np.float64)).astype(
            np.float32) / _PI32
    if norm and metric == "BM25":
        return lambda d: np.float32(2) * np.arctan(d.astype(np.float64)).astype(
            np.float32) / _PI32
    # Smaller is better (L2, HAMMING, JACCARD): turned around so that larger is better.
    return lambda d: np.float32(1) - np.float32(2) * np.arctan(d.astype(np.float64)).astype(
        np.float32) / _PI32


def hybrid_search(proxy: Any, db: str, name: str, reqs: list[SubSearch], fusion: Fusion,
                  limit: Any, fields_req: Any, partitions: Any, offset: Any,
                  round_decimal: Any, consistency_level: str | None = None
                  ) -> list[list[dict[str, Any]]]:
    """Fused results of ``reqs`` (see the module docstring), one list per query."""
    meta, _schema, layout = proxy.collection(db, name)
    if not isinstance(reqs, list) or not 1 <= len(reqs) <= MAX_REQUESTS:
        raise InvalidArgument(f"hybrid_search needs 1 to {MAX_REQUESTS} AnnSearchRequests, got "
                              f"{len(reqs) if isinstance(reqs, list) else reqs!r}")
    limit_i = int_param(limit, "limit", 1, _MAX_TOPK)
    offset_i = int_param(offset, "offset", 0, _MAX_TOPK)
    if limit_i + offset_i > _MAX_TOPK:
        raise InvalidArgument(f"invalid max query result window: limit + offset must be at most "
                              f"{_MAX_TOPK}, got {limit_i} + {offset_i}")
    rd = int_param(round_decimal, "round_decimal", -1, 6)
    if fusion.kind == "weighted" and len(fusion.weights) != len(reqs):
        raise InvalidArgument(
            f"the length of weights param mismatch with ann search requests: WeightedRanker has "
            f"{len(fusion.weights)} weights for {len(reqs)} AnnSearchRequests; pass one weight "
            "per request")
    resolved = [_field_and_metric(proxy, meta, layout, name, r) for r in reqs]
    nq = resolved[0][2]
    for field, _, n in resolved:
        if n != nq:
            raise InvalidArgument(f"sub search request nq should be the same: the first "
                                  f"AnnSearchRequest has {nq} queries, the one on {field} {n}")
    metrics = [m for _, m, _ in resolved]
    larger = [m in _LARGER_IS_BETTER for m in metrics]
    mixed = any(larger) and not all(larger)
    descending = fusion.kind == "rrf" or fusion.norm_score or mixed or all(larger)
    norms = [_normaliser(m, fusion.norm_score, mixed) for m in metrics]

    # Every sub-search is validated by the search path before it runs; none writes anything,
    # so an error in a later one leaves nothing behind. All read the same pinned snapshot.
    pinned = proxy.read_timestamp(db, name, consistency_level)
    results = [proxy.search(db, name, r.data, r.limit, fields_req, r.expr or "", r.expr_params,
                            r.param, field, partitions, 0, -1,
                            consistency_level=consistency_level, snapshot_ts=pinned)
               for r, (field, _, _) in zip(reqs, resolved)]

    pk_dtype = np.int64 if layout.pk_kind == "int64" else str
    out: list[list[dict[str, Any]]] = []
    for q in range(nq):
        per_req = [res[q] for res in results]
        if not any(per_req):
            out.append([])
            continue
        ids = np.concatenate([np.asarray([h["id"] for h in hits], dtype=pk_dtype)
                              for hits in per_req])
        parts = []
        for r, hits in enumerate(per_req):
            if fusion.kind == "rrf":
                ranks = np.arange(1, len(hits) + 1, dtype=np.float32)
                parts.append(np.float32(1) / (np.float32(fusion.k) + ranks))
            else:
                dist = np.asarray([h["distance"] for h in hits], dtype=np.float32)
                parts.append(np.float32(fusion.weights[r]) * norms[r](dist))
        contrib = np.concatenate(parts).astype(np.float32, copy=False)
        uniq, inverse = np.unique(ids, return_inverse=True)
        total = np.zeros(uniq.size, dtype=np.float32)
        # ufunc.at adds in index order, i.e. in request order, each sum rounded to float32.
        np.add.at(total, inverse.ravel(), contrib)
        # uniq is sorted by pk, so a stable sort breaks score ties by pk ascending.
        order = np.argsort(-total if descending else total, kind="stable")
        keep = order[offset_i:offset_i + limit_i]
        entity_of: dict[Any, dict[str, Any]] = {}
        for hits in per_req:
            for h in hits:
                entity_of.setdefault(h["id"], h["entity"])
        win_ids = uniq[keep].tolist()
        win_scores = total[keep].tolist()
        out.append([{"id": pk, "distance": round(s, rd) if rd >= 0 else s,
                     "entity": entity_of[pk]} for pk, s in zip(win_ids, win_scores)])
    return out
