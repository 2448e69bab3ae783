"""MilvusService RPCs that write and read rows: Insert, Upsert, Delete and Query (also ``get``,
``count(*)`` and ``query_iterator``'s pages, which pymilvus sends as queries).

A mixin of :class:`vecstore.server.servicer.Servicer`. Inserted columns are decoded into one
columnar batch for the embedded client (see :mod:`.encode`); query rows are re-packed into
columns. Every reply carries a TSO timestamp (``MutationResult.timestamp``,
``QueryResults.session_ts``): pymilvus's iterators pin their snapshot on it.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from vecstore.errors import NotSupported
from vecstore.schema import DataType
from vecstore.server.encode import (
    columns_from_fields,
    encode_column,
    encode_rows,
    ids_message,
    kv_dict,
    row_fields,
    template_params,
)
from vecstore.server.errors import OK, guard

# pymilvus's delete(ids=...) arrives as "<pk> in [1,2,3]" or "<pk> in ['a','b']".
_PK_LIST = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+\[(.*)\]\s*$", re.S)
_QUERY_KEYS_IGNORED = {"iterator", "reduce_stop_for_best", "collection_id", "cluster_id",
                       "batch_size", "ignore_growing"}
_LEVELS = {0: "Strong", 1: "Session", 2: "Bounded", 3: "Eventually"}


class _CountField:
    """The column ``count(*)`` answers in: one INT64 row."""

    dtype = DataType.INT64
    field_id = 0
    nullable = False


_COUNT = _CountField()


def consistency(request: Any) -> str | None:
    """The request's consistency level, or None for the collection's own."""
    if request.use_default_consistency:
        return None
    return _LEVELS.get(int(request.consistency_level))


def _bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1")


def pk_list(expr: str, schema: Any) -> list | None:
    """The keys of a plain ``<pk> in [...]`` filter, or None when ``expr`` is anything else."""
    m = _PK_LIST.match(expr)
    pk = schema.primary_field
    if m is None or pk is None or m.group(1) != pk.name:
        return None
    body = m.group(2).strip()
    if not body:
        return []
    try:
        if pk.dtype == DataType.INT64:
            return [int(x) for x in body.split(",")]
        values = ast.literal_eval(f"[{body}]")
    except (ValueError, SyntaxError):
        return None
    if not all(isinstance(v, str) for v in values):
        return None
    return values


class DataRpcs:
    _view: Any
    _tso: Any

    def _schema(self, view: Any, name: str) -> Any:
        _, schema, _ = view._proxy.collection(view._db, name)
        return schema

    def _mutation(self, view: Any, name: str, res: dict[str, Any], count_field: str
                  ) -> Any:
        schema = self._schema(view, name)
        int_keys = schema.primary_field.dtype == DataType.INT64
        n = int(res.get(count_field.replace("_cnt", "_count"), 0))
        out = milvus_pb2.MutationResult(status=OK, timestamp=self._tso.now())
        setattr(out, count_field, n)
        if "ids" in res:
            out.IDs.CopyFrom(ids_message(list(res["ids"]), int_keys))
            out.succ_index.extend(range(len(res["ids"])))
        return out

    @guard
    def Insert(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        cols = columns_from_fields(request.fields_data, request.num_rows)
        res = view.insert(request.collection_name, cols,
                          partition_name=request.partition_name or None)
        return self._mutation(view, request.collection_name, res, "insert_cnt")

    @guard
    def Upsert(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        if request.field_ops:
            raise NotSupported("upsert field operations are not supported by vecstore yet")
        cols = columns_from_fields(request.fields_data, request.num_rows)
        res = view.upsert(request.collection_name, cols,
                          partition_name=request.partition_name or None,
                          partial_update=bool(request.partial_update))
        return self._mutation(view, request.collection_name, res, "upsert_cnt")

    @guard
    def Delete(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        name = request.collection_name
        params = template_params(request.expr_template_values)
        ids = None if params else pk_list(request.expr, self._schema(view, name))
        if ids is not None:
            # Deleting by keys needs no loaded collection, as with the embedded ids= form.
            res = view.delete(name, ids=ids, partition_name=request.partition_name or None)
        else:
            res = view.delete(name, filter=request.expr, filter_params=params,
                              partition_name=request.partition_name or None)
        return self._mutation(view, name, res, "delete_cnt")

    @guard
    def Query(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        name = request.collection_name
        qp = kv_dict(request.query_params)
        kw: dict[str, Any] = {}
        if "limit" in qp:
            kw["limit"] = int(qp.pop("limit"))
        if "offset" in qp:
            kw["offset"] = int(qp.pop("offset"))
        if _bool(qp.get("ignore_growing", "false")):
            raise NotSupported("query(ignore_growing=True) is not supported by vecstore yet")
        extra = sorted(k for k in qp if k not in _QUERY_KEYS_IGNORED)
        if extra:
            raise NotSupported(f"query parameter(s) {extra} are not supported by vecstore yet")
        if request.namespace:
            raise NotSupported("namespaces are not supported by vecstore yet")
        requested = list(request.output_fields)
        rows = view.query(name, filter=request.expr, output_fields=requested or None,
                          partition_names=list(request.partition_names) or None,
                          filter_params=template_params(request.expr_template_values),
                          consistency_level=consistency(request), **kw)
        schema = self._schema(view, name)
        out = milvus_pb2.QueryResults(status=OK, collection_name=name,
                                      session_ts=self._tso.now(),
                                      primary_field_name=schema.primary_field.name)
        if requested == ["count(*)"] or (rows and "count(*)" in rows[0]):
            out.fields_data.append(encode_column("count(*)", _COUNT,
                                                 [int(r["count(*)"]) for r in rows]))
        else:
            out.fields_data.extend(encode_rows(rows, schema, row_fields(rows, schema,
                                                                        requested)))
        out.output_fields.extend(fd.field_name for fd in out.fields_data)
        return out
