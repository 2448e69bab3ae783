"""Parsing a search request's options into one validated :class:`SearchPlan`, before any work.

Owns Milvus 2.6's rules for ``search_params`` (as pymilvus sends them) and the grouping keywords:

- pymilvus flattens ``search_params``: every top-level key except ``params`` also lands in
  ``params`` (``pymilvus/client/utils.py: get_params``), and a key given in both places with two
  values is "ambiguous". vecstore reads the same flattened view, so ``{"radius": r}`` and
  ``{"params": {"radius": r}}`` mean the same.
- Keys of ``params`` must be search parameters Milvus knows; anything else is refused by name, so
  a typo never silently changes nothing. ``ef`` (HNSW, >= the top-k) and ``nprobe`` (IVF) are
  checked here and travel in :attr:`SearchPlan.index_params` to the segments whose index uses
  them; as in Milvus, a parameter of another index type (``search_list``, ``level``, ...) has
  no effect on this collection's index.
- Range search (``radius``, optional ``range_filter``) follows Milvus's proxy check
  (``checkRangeSearchParams``): for IP/COSINE ``radius < range_filter``, for L2/HAMMING/JACCARD
  ``range_filter < radius``, with its messages. Bounds compare as float32, as knowhere does.
- Grouping (``group_by_field``, ``group_size``, ``strict_group_size``) may come as keywords or in
  ``search_params``; the field must be a BOOL, INT8/16/32/64 or VARCHAR field of the schema.

Every problem raises :class:`InvalidArgument` (or ``NotSupported`` from the caller for features
vecstore lacks) naming the parameter and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vecstore.errors import InvalidArgument
from vecstore.proxy.entities import int_param
from vecstore.schema import CollectionSchema, DataType

METRICS = {"L2", "IP", "COSINE", "HAMMING", "JACCARD"}
HIGHER_IS_CLOSER = {"IP", "COSINE"}

# Search-time parameters of Milvus's indexes (FLAT, IVF_*, HNSW*, DISKANN, SCANN, GPU_*, sparse,
# MINHASH_LSH) and of its search request. Exact search ignores the index ones.
INDEX_SEARCH_PARAMS = frozenset({
    "ef", "nprobe", "level", "search_list", "search_list_size", "itopk_size", "search_width",
    "min_iterations", "max_iterations", "team_size", "reorder_k", "refine_k", "rbq_query_bits",
    "drop_ratio_search", "dim_max_score_ratio", "mh_search_with_jaccard",
    "max_empty_result_buckets", "page_retain_order", "hints", "radius", "range_filter",
})
REQUEST_PARAMS = frozenset({
    "metric_type", "offset", "ignore_growing", "group_by_field", "group_size",
    "strict_group_size", "round_decimal", "topk", "anns_field",
})
GROUPABLE = {DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
             DataType.VARCHAR}
MAX_GROUP_SIZE = 10  # Milvus's quotaAndLimits.limits.maxGroupSize default


@dataclass(frozen=True)
class SearchPlan:
    metric: str
    limit: int
    offset: int
    # Range bounds in "key" space, where smaller is always closer (the distance for L2-like
    # metrics, minus the score for IP/COSINE): a hit is in range when lo <= key < hi.
    key_lo: float
    key_hi: float
    ranged: bool
    group_by: str | None
    group_size: int
    strict_group_size: bool
    # Checked index search parameters ({"ef": int, "nprobe": int}, those given).
    index_params: dict[str, int] = field(default_factory=dict)

    def key(self, dist: np.ndarray) -> np.ndarray:
        return -dist if self.metric in HIGHER_IS_CLOSER else dist


def _flatten(search_params: Any) -> dict[str, Any]:
    if search_params is None:
        return {}
    if not isinstance(search_params, dict):
        raise InvalidArgument(f"search_params must be a dict, got {type(search_params).__name__}")
    inner = search_params.get("params") or {}
    if not isinstance(inner, dict):
        raise InvalidArgument(f"search_params['params'] must be a dict, got "
                              f"{type(inner).__name__}")
    flat = dict(inner)
    for key, value in search_params.items():
        if key == "params":
            continue
        if key in flat and flat[key] != value:
            raise InvalidArgument(f"ambiguous parameter: {key}, in search_param: {value!r}, in "
                                  f"search_param.params: {flat[key]!r}; give it once")
        flat[key] = value
    unknown = sorted(k for k in flat if k not in INDEX_SEARCH_PARAMS | REQUEST_PARAMS)
    if unknown:
        raise InvalidArgument(
            f"unknown search parameter(s) {unknown}: search_params takes metric_type, offset, "
            f"params with index search parameters ({', '.join(sorted(INDEX_SEARCH_PARAMS))}) "
            "and the grouping keys group_by_field, group_size, strict_group_size")
    return flat


def _one(flat: dict[str, Any], name: str, kwarg: Any) -> Any:
    """A grouping option given as a keyword and/or in search_params (once, or twice equal)."""
    in_params = flat.get(name)
    if kwarg is not None and in_params is not None and kwarg != in_params:
        raise InvalidArgument(f"ambiguous parameter: {name} is {kwarg!r} as a keyword but "
                              f"{in_params!r} in search_params; give it once")
    return kwarg if kwarg is not None else in_params


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise InvalidArgument(f"{name} must be a finite number, got {value!r}")
    return float(np.float32(value))  # knowhere compares in float32


def parse(schema: CollectionSchema, search_params: Any, *, index_metric: str | None,
          default_metric: str, limit: Any, offset: Any, group_by_field: Any = None,
          group_size: Any = None, strict_group_size: Any = None) -> SearchPlan:
    flat = _flatten(search_params)
    metric = str(flat.get("metric_type") or index_metric or default_metric).upper()
    if metric not in METRICS:
        raise InvalidArgument(f"metric type {metric} is not supported; use one of "
                              f"{sorted(METRICS)}")
    if index_metric and metric != index_metric:
        raise InvalidArgument(f"metric type not match: invalid parameter[expected="
                              f"{index_metric}][actual={metric}]")
    if flat.get("ignore_growing"):  # the client raises NotSupported first; a backstop here
        raise InvalidArgument("ignore_growing=True is not supported by vecstore yet")
    limit_i = int_param(limit, "limit", 1, 16384)
    off_param = flat.get("offset")
    if off_param is not None and offset and off_param != offset:
        raise InvalidArgument("Provide offset both in kwargs and param, expect just one")
    offset_i = int_param(off_param if off_param is not None else (offset or 0), "offset", 0,
                         16384)
    if limit_i + offset_i > 16384:
        raise InvalidArgument("topk [limit + offset] should be in range [1, 16384], got "
                              f"{limit_i + offset_i}; lower limit or offset, or use "
                              "search_iterator for more results")
    higher = metric in HIGHER_IS_CLOSER
    lo, hi, ranged = -math.inf, math.inf, "radius" in flat
    if ranged:
        radius = _number(flat["radius"], "radius")
        hi = -radius if higher else radius
        if "range_filter" in flat:
            rf = _number(flat["range_filter"], "range_filter")
            if higher and radius >= rf:
                raise InvalidArgument(
                    f"range_filter must be greater than radius for IP/COSINE, range_filter:"
                    f"{rf:f}, radius:{radius:f}; results satisfy radius < score <= range_filter")
            if not higher and radius <= rf:
                raise InvalidArgument(
                    f"range_filter must be less than radius for L2/HAMMING/JACCARD, range_filter:"
                    f"{rf:f}, radius:{radius:f}; results satisfy range_filter <= distance < "
                    "radius")
            lo = -rf if higher else rf
    elif "range_filter" in flat:
        raise InvalidArgument("range_filter needs radius: a range search is "
                              "search_params={'params': {'radius': r, 'range_filter': f}}")
    group = _one(flat, "group_by_field", group_by_field)
    size = _one(flat, "group_size", group_size)
    strict = _one(flat, "strict_group_size", strict_group_size)
    if group is None:
        if size is not None or strict is not None:
            raise InvalidArgument("group_size and strict_group_size need group_by_field")
    else:
        _check_group_field(schema, group)
    size_i = 1 if size is None else int_param(size, "group_size", 1, MAX_GROUP_SIZE)
    if strict is not None and not isinstance(strict, (bool, np.bool_)):
        raise InvalidArgument(f"strict_group_size must be a bool, got {strict!r}")
    return SearchPlan(metric, limit_i, offset_i, lo, hi, ranged, group, size_i, bool(strict),
                      _index_params(flat, limit_i + offset_i))


MAX_EF = 1 << 15  # knowhere's HNSW ef limit
MAX_NPROBE = 65536


def _index_params(flat: dict[str, Any], k: int) -> dict[str, int]:
    out: dict[str, int] = {}
    if flat.get("ef") is not None:
        out["ef"] = int_param(flat["ef"], "ef", 1, MAX_EF)
        if out["ef"] < k:
            raise InvalidArgument(f"ef({out['ef']}) should be larger than k({k}): HNSW keeps ef "
                                  "candidates per query; raise ef to at least limit + offset")
    if flat.get("nprobe") is not None:
        out["nprobe"] = int_param(flat["nprobe"], "nprobe", 1, MAX_NPROBE)
    return out


def _check_group_field(schema: CollectionSchema, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"group_by_field must be a field name, got {name!r}")
    field = next((f for f in schema.fields if f.name == name), None)
    if field is None:
        raise InvalidArgument(f"groupBy field({name}) not found in schema; group_by_field names "
                              "a scalar field of the collection (dynamic keys cannot be grouped)")
    if field.dtype not in GROUPABLE:
        raise InvalidArgument(
            f"unsupported data type {DataType(field.dtype).name} for group by operator: "
            f"group_by_field {name} must be a BOOL, INT8, INT16, INT32, INT64 or VARCHAR field")
