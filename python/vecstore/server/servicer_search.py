"""MilvusService's Search and HybridSearch, and the state behind pymilvus's search_iterator v2.

A ``SearchRequest`` is decoded into the embedded ``MilvusClient.search`` call it stands for: the
query vectors from ``placeholder_group``, ``dsl`` as the filter (``expr_template_values`` as its
parameters), and ``search_params`` (JSON-encoded values: ``topk``, ``offset``, ``round_decimal``,
``metric_type``, ``anns_field``, ``params`` with ``radius``/``range_filter``/``ef``...,
``group_by_field``...). Hits are flattened across queries into one ``SearchResultData`` (see
MILVUS_API.md, "Encodings on the wire").

search_iterator v2: pymilvus sends ``search_iter_v2`` with a batch size, and after its first page
the ``search_iter_id`` token this server returned plus the ``last_bound`` distance. The server
keeps one embedded :class:`~vecstore.client.search_iterator.SearchIterator` per token (exact ties
at page boundaries handled there), in a bounded least-recently-used table: pymilvus never closes
an iterator on the server, and its compatibility probe opens one that it never uses again.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from typing import Any

from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from vecstore.errors import InvalidArgument, NotSupported
from vecstore.schema import DataType
from vecstore.server.encode import (
    encode_rows,
    ids_message,
    kv_dict,
    loads,
    placeholder_queries,
    row_fields,
    template_params,
)
from vecstore.server.errors import OK, guard
from vecstore.server.servicer_data import consistency

_IGNORED = {"ignore_growing", "iterator", "collection_id", "cluster_id", "hints",
            "search_iter_v2", "search_iter_batch_size", "search_iter_last_bound",
            "search_iter_id", "page_retain_order"}
MAX_ITERATORS = 256


class IteratorTable:
    """Open search iterators by token, least recently used first out."""

    def __init__(self, capacity: int = MAX_ITERATORS) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._mu = threading.Lock()
        self._capacity = capacity

    def add(self, it: Any) -> str:
        token = uuid.uuid4().hex
        with self._mu:
            self._items[token] = it
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> Any:
        with self._mu:
            it = self._items.get(token)
            if it is not None:
                self._items.move_to_end(token)
            return it

    def clear(self) -> None:
        with self._mu:
            self._items.clear()


class _Search:
    """One decoded SearchRequest."""

    def __init__(self, request: Any, schema: Any) -> None:
        sp = {k: loads(v) for k, v in kv_dict(request.search_params).items()}
        self.limit = int(sp.pop("topk", 10))
        self.anns_field = sp.pop("anns_field", None) or None
        self.metric = sp.pop("metric_type", None)
        self.params = sp.pop("params", None) or {}
        if isinstance(self.params, str):
            self.params = json.loads(self.params)
        self.offset = int(sp.pop("offset", 0) or 0)
        self.round_decimal = int(sp.pop("round_decimal", -1))
        self.grouping = {k: sp.pop(k) for k in ("group_by_field", "group_size",
                                                 "strict_group_size") if k in sp}
        self.iter_v2 = str(sp.get("search_iter_v2", "")).lower() == "true"
        self.batch_size = int(sp.get("search_iter_batch_size", self.limit) or self.limit)
        self.token = str(sp.get("search_iter_id", "") or "")
        if str(sp.get("ignore_growing", "")).lower() == "true" or \
                self.params.get("ignore_growing"):
            raise NotSupported("search(ignore_growing=True) is not supported by vecstore yet")
        extra = sorted(k for k in sp if k not in _IGNORED)
        if extra:
            raise NotSupported(f"search parameter(s) {extra} are not supported by vecstore yet")
        if request.HasField("function_score") or len(request.function_chains):
            raise NotSupported("function rankers on search are not supported by vecstore yet")
        self.filter = request.dsl
        self.filter_params = template_params(request.expr_template_values)
        self.ids = None
        if request.HasField("ids"):
            kind = request.ids.WhichOneof("id_field")
            self.ids = list(getattr(request.ids, kind).data) if kind else []
        field = self.anns_field or _only_vector(schema)
        self.data = None
        if self.ids is None:
            spec = schema.field(field) if field else None
            if request.placeholder_group:
                self.data = placeholder_queries(request.placeholder_group, spec)
        self.search_params: dict[str, Any] = {"params": self.params}
        if self.metric:
            self.search_params["metric_type"] = self.metric
        self.output_fields = list(request.output_fields) or None
        self.partitions = list(request.partition_names) or None
        self.consistency = consistency(request)

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = dict(self.grouping)
        if self.offset:
            kw["offset"] = self.offset
        if self.round_decimal != -1:
            kw["round_decimal"] = self.round_decimal
        if self.filter_params:
            kw["filter_params"] = self.filter_params
        if self.consistency is not None:
            kw["consistency_level"] = self.consistency
        if self.ids is not None:
            kw["ids"] = self.ids
        return kw


def _only_vector(schema: Any) -> str | None:
    from vecstore.schema.types import VECTOR_TYPES

    names = [f.name for f in schema.fields if f.dtype in VECTOR_TYPES]
    return names[0] if len(names) == 1 else None


def results(hits: list[list[dict[str, Any]]], schema: Any, name: str, limit: int,
            requested: list[str] | None, session_ts: int) -> Any:
    """Per-query hit lists as ``SearchResults``: flattened columns across queries."""
    pk = schema.primary_field
    data = schema_pb2.SearchResultData(num_queries=len(hits), top_k=limit,
                                       primary_field_name=pk.name)
    flat = [h for q in hits for h in q]
    data.topks.extend(len(q) for q in hits)
    data.scores.extend(float(h["distance"]) for h in flat)
    data.ids.CopyFrom(ids_message([h["id"] for h in flat], pk.dtype == DataType.INT64))
    entities = [h.get("entity") or {} for h in flat]
    names = row_fields(entities, schema, requested or [])
    if any(entities) or (not flat and requested):
        data.fields_data.extend(encode_rows(entities, schema, names))
    data.output_fields.extend(fd.field_name for fd in data.fields_data)
    return milvus_pb2.SearchResults(status=OK, results=data, collection_name=name,
                                    session_ts=session_ts)


class SearchRpcs:
    _view: Any
    _tso: Any
    _iterators: IteratorTable

    def _forget_iterators(self) -> None:
        self._iterators.clear()

    @guard
    def Search(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        name = request.collection_name
        _, schema, _ = view._proxy.collection(view._db, name)
        if request.namespace:
            raise NotSupported("namespaces are not supported by vecstore yet")
        s = _Search(request, schema)
        if s.iter_v2:
            return self._iterator_page(view, name, schema, s)
        kw = s.kwargs()
        if s.data is None and s.ids is None:
            raise InvalidArgument("search needs query vectors (data) or ids")
        hits = view.search(name, data=s.data, filter=s.filter, limit=s.limit,
                           output_fields=s.output_fields, search_params=s.search_params,
                           partition_names=s.partitions, anns_field=s.anns_field, **kw)
        return results(hits, schema, name, s.limit, s.output_fields, self._tso.now())

    def _iterator_page(self, view: Any, name: str, schema: Any, s: _Search) -> Any:
        if s.token:
            it = self._iterators.get(s.token)
            if it is None:
                raise InvalidArgument(f"search iterator {s.token} is unknown to this server "
                                      "(expired or opened before a restart): open a new one")
            token = s.token
        else:
            kw = s.kwargs()
            for key in ("offset", "round_decimal", "ids"):
                kw.pop(key, None)
            it = view.search_iterator(name, s.data, batch_size=s.batch_size, filter=s.filter,
                                      output_fields=s.output_fields,
                                      search_params=s.search_params,
                                      partition_names=s.partitions, anns_field=s.anns_field,
                                      round_decimal=s.round_decimal, **kw)
            token = self._iterators.add(it)
        page = it.next()
        out = results([page], schema, name, s.batch_size, s.output_fields, self._tso.now())
        v2 = out.results.search_iterator_v2_results
        v2.token = token
        v2.last_bound = float(page[-1]["distance"]) if page else 0.0
        return out

    @guard
    def HybridSearch(self, request: Any, context: Any) -> Any:
        from vecstore.client.rankers import AnnSearchRequest, RRFRanker, WeightedRanker

        view = self._view(request, context)
        name = request.collection_name
        _, schema, _ = view._proxy.collection(view._db, name)
        if request.HasField("function_score") or len(request.function_chains):
            raise NotSupported("function rankers are not supported by vecstore yet: use "
                               "RRFRanker or WeightedRanker")
        rank = {k: loads(v) for k, v in kv_dict(request.rank_params).items()}
        reqs = []
        for sub in request.requests:
            s = _Search(sub, schema)
            if s.data is None:
                raise InvalidArgument("hybrid_search: every request needs query vectors")
            param = dict(s.search_params)
            if s.offset:
                param["offset"] = s.offset
            reqs.append(AnnSearchRequest(s.data, s.anns_field, param, s.limit,
                                         s.filter or None, s.filter_params))
        strategy = str(rank.get("strategy", "rrf")).lower()
        rp = rank.get("params") or {}
        if strategy == "rrf":
            ranker: Any = RRFRanker(rp.get("k", 60))
        elif strategy == "weighted":
            ranker = WeightedRanker(*rp.get("weights", []),
                                    norm_score=bool(rp.get("norm_score", True)))
        else:
            raise NotSupported(f"hybrid_search ranker {strategy!r} is not supported by vecstore "
                               "yet: use RRFRanker or WeightedRanker")
        for key in ("group_by_field", "group_size", "strict_group_size", "rank_group_scorer"):
            if key in rank:
                raise NotSupported(f"hybrid_search({key}=...) is not supported by vecstore yet")
        limit = int(rank.get("limit", 10))
        kw: dict[str, Any] = {}
        if int(rank.get("offset", 0) or 0):
            kw["offset"] = int(rank["offset"])
        if int(rank.get("round_decimal", -1)) != -1:
            kw["round_decimal"] = int(rank["round_decimal"])
        level = consistency(request)
        if level is not None:
            kw["consistency_level"] = level
        output = list(request.output_fields) or None
        hits = view.hybrid_search(name, reqs, ranker, limit=limit, output_fields=output,
                                  partition_names=list(request.partition_names) or None, **kw)
        return results(hits, schema, name, limit, output, self._tso.now())
