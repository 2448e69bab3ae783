"""Index descriptions of a collection, kept in its properties, and their checks.

This version searches exactly, so an "index" is a declaration: its type (FLAT, BIN_FLAT or
AUTOINDEX), its metric (which every search on the field must use) and its parameters, recorded
per vector field under the properties ``index.<field>``, ``metric_type.<field>``,
``index_name.<field>`` and ``index_params.<field>``. A collection loads only once an index is
declared, as in Milvus. Index types this version cannot build are refused by name when declared.
"""

from __future__ import annotations

import json
from typing import Any

from vecstore.client.common import NotSupported
from vecstore.errors import InvalidArgument
from vecstore.schema import CollectionSchema, DataType

FLOAT_KINDS = {DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR,
               DataType.INT8_VECTOR}
FLOAT_METRICS = ("L2", "IP", "COSINE")
BINARY_METRICS = ("HAMMING", "JACCARD")
SUPPORTED = {DataType.BINARY_VECTOR: ("BIN_FLAT", "AUTOINDEX"), **{
    k: ("FLAT", "AUTOINDEX") for k in FLOAT_KINDS}}
PREFIXES = ("index.", "metric_type.", "index_name.", "index_params.")


def declare(schema: CollectionSchema, index_params: list | None) -> dict[str, str]:
    """The properties that record ``index_params`` (IndexParams entries), checked first."""
    props: dict[str, str] = {}
    fields = {f.name: f for f in schema.fields}
    for ip in index_params or []:
        name = ip.get("field_name")
        if name not in fields:
            raise InvalidArgument(f"index on unknown field {name!r}; fields: {sorted(fields)}")
        dtype = DataType(fields[name].dtype)
        kind = (ip.get("index_type") or "AUTOINDEX").upper()
        allowed = SUPPORTED.get(dtype)
        if allowed is None:
            raise NotSupported(f"scalar indexes ({kind} on {name}, a {dtype.name} field) are not "
                               "supported by vecstore yet: filters scan the column")
        if kind not in allowed:
            raise NotSupported(f"index type {kind} is not supported by vecstore yet on "
                               f"{dtype.name} field {name}; supported: {', '.join(allowed)} "
                               "(exact search)")
        metric = (ip.get("metric_type") or "").upper()
        metrics = BINARY_METRICS if dtype == DataType.BINARY_VECTOR else FLOAT_METRICS
        if metric and metric not in metrics:
            raise InvalidArgument(f"metric type {metric} is invalid for {dtype.name} field "
                                  f"{name}; use one of {', '.join(metrics)}")
        params = ip.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidArgument(f"index params must be a dict, got {type(params).__name__}")
        if metric:
            props[f"metric_type.{name}"] = metric
        props[f"index.{name}"] = kind
        props[f"index_name.{name}"] = str(ip.get("index_name") or name)
        props[f"index_params.{name}"] = json.dumps(params, sort_keys=True)
    return props


def check_unchanged(existing: dict[str, str], declared: dict[str, str]) -> None:
    """Milvus allows one index per field: declaring the same one again is a no-op, a different
    one (type, name, parameters, or an explicitly different metric) is refused."""
    for key in declared:
        if not key.startswith("index."):
            continue
        field = key[len("index."):]
        if key not in existing:
            continue
        differs = [p for p in PREFIXES if (p + field) in declared and
                   existing.get(p + field) != declared[p + field]]
        if differs:
            raise InvalidArgument(
                f"at most one distinct index is allowed per field: {field} already has index "
                f"{existing.get('index_name.' + field, field)!r} ({existing[key]}); release the "
                "collection and drop_index it first")


def indexed_fields(properties: dict[str, str]) -> dict[str, str]:
    """{index name: field} of the declared indexes."""
    return {properties.get(f"index_name.{k[len('index.'):]}", k[len("index."):]):
            k[len("index."):] for k in properties if k.startswith("index.")}


def describe(properties: dict[str, str], field: str, index_name: str, rows: int
             ) -> dict[str, Any]:
    """pymilvus's describe_index dict. Exact search needs no build, so every row is indexed."""
    params = json.loads(properties.get(f"index_params.{field}", "{}"))
    return {**{str(k): v for k, v in params.items()},
            "index_type": properties[f"index.{field}"],
            "metric_type": properties.get(f"metric_type.{field}", ""),
            "field_name": field, "index_name": index_name, "total_rows": rows,
            "indexed_rows": rows, "pending_index_rows": 0, "state": "Finished"}
