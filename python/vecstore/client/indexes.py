"""Index declarations of a collection, kept in its properties, and their checks.

A declaration is the index type, its metric (which every search on the field must use) and its
parameters, recorded per vector field under the properties ``index.<field>``,
``metric_type.<field>``, ``index_name.<field>`` and ``index_params.<field>``. A collection loads
only once an index is declared, as in Milvus. :func:`specs` turns the declarations into the
:class:`~vecstore.index.spec.IndexSpec` the data node builds per sealed segment; every type and
parameter is checked by :func:`vecstore.index.spec.resolve` when declared, so a declaration
that is recorded can always be built.
"""

from __future__ import annotations

import json
from typing import Any

from vecstore.client.common import NotSupported
from vecstore.errors import InvalidArgument
from vecstore.index.spec import (
    SCALAR_TYPES,
    IndexSpec,
    declared_specs,
    default_metric,
    resolve,
)
from vecstore.proxy.convert import Layout
from vecstore.schema import CollectionSchema, DataType

FLOAT_KINDS = {DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR,
               DataType.INT8_VECTOR}
FLOAT_METRICS = ("L2", "IP", "COSINE")
BINARY_METRICS = ("HAMMING", "JACCARD")
PREFIXES = ("index.", "metric_type.", "index_name.", "index_params.")


def declare(schema: CollectionSchema, index_params: list | None) -> dict[str, str]:
    """The properties that record ``index_params`` (IndexParams entries), checked first."""
    props: dict[str, str] = {}
    fields = {f.name: f for f in schema.fields}
    vectors = Layout.of(schema).vectors
    for ip in index_params or []:
        name = ip.get("field_name")
        if name not in fields:
            raise InvalidArgument(f"index on unknown field {name!r}; fields: {sorted(fields)}")
        dtype = DataType(fields[name].dtype)
        kind = (ip.get("index_type") or "AUTOINDEX").upper()
        if name not in vectors:
            _check_scalar(fields[name], dtype, kind, ip)
            props[f"index.{name}"] = kind
            props[f"index_name.{name}"] = str(ip.get("index_name") or name)
            props[f"index_params.{name}"] = json.dumps(ip.get("params") or {}, sort_keys=True)
            continue
        metric = (ip.get("metric_type") or "").upper()
        metrics = BINARY_METRICS if dtype == DataType.BINARY_VECTOR else FLOAT_METRICS
        if metric and metric not in metrics:
            raise InvalidArgument(f"metric type {metric} is invalid for {dtype.name} field "
                                  f"{name}; use one of {', '.join(metrics)}")
        params = ip.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidArgument(f"index params must be a dict, got {type(params).__name__}")
        vec = vectors[name]
        resolve(vec.kind, vec.dim, name, kind, metric or default_metric(vec.kind), params)
        if metric:
            props[f"metric_type.{name}"] = metric
        props[f"index.{name}"] = kind
        props[f"index_name.{name}"] = str(ip.get("index_name") or name)
        props[f"index_params.{name}"] = json.dumps(params, sort_keys=True)
    return props


SCALAR_INDEXABLE = {DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
                    DataType.VARCHAR}


def _check_scalar(field: Any, dtype: DataType, kind: str, ip: dict) -> None:
    """A scalar index is served by a sorted permutation of the column (expr.SortedColumn), built
    per sealed segment at its first filter; refused where it could not answer anything."""
    types = SCALAR_TYPES + ("AUTOINDEX",)
    if kind not in types or (kind == "TRIE" and dtype != DataType.VARCHAR):
        raise NotSupported(f"index type {kind} is not supported by vecstore on {dtype.name} "
                           f"field {field.name}; scalar fields take {', '.join(types)} "
                           "(TRIE on VARCHAR only)")
    if dtype not in SCALAR_INDEXABLE or getattr(field, "nullable", False):
        raise NotSupported(f"a scalar index on {dtype.name}{' nullable' if field.nullable else ''}"
                           f" field {field.name} is not supported by vecstore: scalar indexes "
                           "serve non-nullable INT8/16/32/64 and VARCHAR fields; filters on "
                           "this field scan the column")
    if ip.get("metric_type"):
        raise InvalidArgument(f"a scalar index ({kind} on {field.name}) takes no metric_type")
    if ip.get("params"):
        raise NotSupported(f"scalar index {kind} on {field.name} takes no parameters in "
                           f"vecstore, got {sorted(ip['params'])}")


def scalar_indexed(schema: CollectionSchema, properties: dict[str, str]) -> frozenset[str]:
    """The scalar fields with a declared index."""
    vectors = Layout.of(schema).vectors
    return frozenset(k[len("index."):] for k in properties
                     if k.startswith("index.") and k[len("index."):] not in vectors)


def specs(schema: CollectionSchema, properties: dict[str, str]) -> dict[str, IndexSpec]:
    """{vector field: its declared index as a build spec}, for the fields with a declaration."""
    return declared_specs(Layout.of(schema).vectors, properties)


def is_exact(schema: CollectionSchema, properties: dict[str, str], field: str) -> bool:
    """Whether the field's declared index is searched exactly, with nothing to build (FLAT,
    BIN_FLAT, AUTOINDEX on a vector kind vecstore searches exactly)."""
    spec = specs(schema, properties).get(field)
    return spec is None or spec.exact


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


def describe(properties: dict[str, str], field: str, index_name: str,
             progress: tuple[int, int, int]) -> dict[str, Any]:
    """pymilvus's describe_index dict; ``progress`` is (total, indexed, pending) rows as
    :meth:`EmbeddedDeployment.index_progress` counts them."""
    params = json.loads(properties.get(f"index_params.{field}", "{}"))
    total, indexed, pending = progress
    return {**{str(k): v for k, v in params.items()},
            "index_type": properties[f"index.{field}"],
            "metric_type": properties.get(f"metric_type.{field}", ""),
            "field_name": field, "index_name": index_name, "total_rows": total,
            "indexed_rows": indexed, "pending_index_rows": pending,
            "state": "Finished" if pending == 0 else "InProgress"}
