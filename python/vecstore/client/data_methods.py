"""MilvusClient's data methods: insert, upsert, delete, get, query, search, hybrid search and
the iterators.

A mixin of :class:`vecstore.client.MilvusClient`, which provides ``self._proxy`` and ``self._db``
and ``self._loaded`` (reads need a loaded collection or partition). Every method checks its
keyword arguments: one this version does not implement raises :class:`NotSupported`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecstore.client.common import NotSupported, reject
from vecstore.errors import InvalidArgument


def _plain_params(search_params: Any) -> bool:
    """None, or a dict that does not mention ignore_growing (which is refused below)."""
    if search_params is None:
        return True
    if type(search_params) is not dict or "ignore_growing" in search_params:
        return False
    inner = search_params.get("params")
    return inner is None or (type(inner) is dict and "ignore_growing" not in inner)


class DataMethods:
    _proxy: Any
    _db: str

    _loaded: Callable[[str], None]  # CatalogMethods._loaded


    def insert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
        reject(kwargs, "insert")
        return self._proxy.insert(self._db, collection_name, data, partition_name or None)

    def upsert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
        """Inserts rows, replacing any stored under the same primary keys, atomically."""
        partial = kwargs.pop("partial_update", False)
        if not isinstance(partial, bool):
            raise InvalidArgument(f"partial_update must be a bool, got {partial!r}")
        reject(kwargs, "upsert")
        return self._proxy.insert(self._db, collection_name, data, partition_name or None,
                                  upsert=True, partial=partial)

    def delete(self, collection_name: str, ids: Any = None, timeout: float | None = None,
               filter: str | None = None, partition_name: str | None = None,  # noqa: A002
               filter_params: dict | None = None, **kwargs: Any) -> dict[str, int]:
        reject(kwargs, "delete")
        if filter:
            self._loaded(collection_name)  # a delete by filter queries first, as in Milvus
        return self._proxy.delete(self._db, collection_name, ids, filter, filter_params,
                                  partition_name or None)

    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
            timeout: float | None = None, partition_names: list[str] | None = None,
            **kwargs: Any) -> list[dict[str, Any]]:
        consistency = kwargs.pop("consistency_level", None)
        reject(kwargs, "get")
        self._loaded(collection_name)
        fields = ["*"] if output_fields is None else output_fields
        return self._proxy.query(self._db, collection_name, "", fields, None, 0, None,
                                 partition_names, ids, consistency_level=consistency)

    def query(self, collection_name: str, filter: str = "",  # noqa: A002
              output_fields: list[str] | None = None, timeout: float | None = None,
              ids: Any = None, partition_names: list[str] | None = None,
              **kwargs: Any) -> list[dict[str, Any]]:
        limit = kwargs.pop("limit", None)
        offset = kwargs.pop("offset", 0)
        params = kwargs.pop("filter_params", None)
        consistency = kwargs.pop("consistency_level", None)
        reject(kwargs, "query")
        self._loaded(collection_name)
        return self._proxy.query(self._db, collection_name, filter, output_fields, limit,
                                 offset, params, partition_names, ids,
                                 consistency_level=consistency)

    def search(self, collection_name: str, data: Any = None, filter: str = "",  # noqa: A002
               limit: int = 10, output_fields: list[str] | None = None,
               search_params: dict | None = None, timeout: float | None = None,
               partition_names: list[str] | None = None, anns_field: str | None = None,
               **kwargs: Any) -> list[list[dict[str, Any]]]:
        """Exact top-k, range (``radius``/``range_filter`` in ``search_params``) and grouping
        (``group_by_field``, ``group_size``, ``strict_group_size``) search, by query vectors
        (``data``) or by stored entities' primary keys (``ids=``); see
        :mod:`vecstore.proxy.search`."""
        if not kwargs and _plain_params(search_params):
            # The common call: no keyword to sort out, nothing that asks for ignore_growing.
            self._loaded(collection_name)
            return self._proxy.search(self._db, collection_name, data, limit, output_fields,
                                      filter, None, search_params, anns_field, partition_names,
                                      0, -1)
        offset = kwargs.pop("offset", 0)
        round_decimal = kwargs.pop("round_decimal", -1)
        params = kwargs.pop("filter_params", None)
        consistency = kwargs.pop("consistency_level", None)
        ids = kwargs.pop("ids", None)
        grouping = {k: kwargs.pop(k, None)
                    for k in ("group_by_field", "group_size", "strict_group_size")}
        sp = search_params if isinstance(search_params, dict) else {}
        inner = sp.get("params") if isinstance(sp.get("params"), dict) else {}
        if kwargs.pop("ignore_growing", None) or sp.get("ignore_growing") or \
                inner.get("ignore_growing"):
            raise NotSupported("search(ignore_growing=True) is not supported by vecstore yet")
        reject(kwargs, "search")
        self._loaded(collection_name)
        return self._proxy.search(self._db, collection_name, data, limit, output_fields,
                                  filter, params, search_params, anns_field, partition_names,
                                  offset, round_decimal, consistency_level=consistency, ids=ids,
                                  **grouping)

    def search_iterator(self, collection_name: str, data: Any, batch_size: int = 1000,
                        filter: str | None = None, limit: int = -1,  # noqa: A002
                        output_fields: list[str] | None = None,
                        search_params: dict | None = None, timeout: float | None = None,
                        partition_names: list[str] | None = None,
                        anns_field: str | None = None, round_decimal: int = -1,
                        **kwargs: Any) -> Any:
        """A :class:`~vecstore.client.search_iterator.SearchIterator` over one query vector's
        hits, closest first, ``batch_size`` per ``next()``, past 16,384 hits."""
        from vecstore.client.search_iterator import SearchIterator

        if kwargs.pop("external_filter_func", None) is not None:
            raise NotSupported("search_iterator(external_filter_func=...) is not supported by "
                               "vecstore yet: filter the pages in Python")
        for key in ("offset", "ids", "group_by_field", "group_size", "strict_group_size"):
            if kwargs.pop(key, None):
                raise InvalidArgument(f"search_iterator does not support {key}; use search")
        params = kwargs.pop("filter_params", None)
        consistency = kwargs.pop("consistency_level", None)
        reject(kwargs, "search_iterator")
        self._loaded(collection_name)
        return SearchIterator(self._proxy, self._db, collection_name, data, batch_size, filter,
                              limit, output_fields, search_params, partition_names, anns_field,
                              round_decimal, params, consistency)

    def hybrid_search(self, collection_name: str, reqs: list, ranker: Any, limit: int = 10,
                      output_fields: list[str] | None = None, timeout: float | None = None,
                      partition_names: list[str] | None = None, **kwargs: Any
                      ) -> list[list[dict[str, Any]]]:
        """Several ``AnnSearchRequest`` searches fused by ``RRFRanker`` or ``WeightedRanker``
        (see :mod:`vecstore.proxy.hybrid`); ``search``'s result shape."""
        from vecstore.client.rankers import RRFRanker, as_ranker, as_request
        from vecstore.proxy.hybrid import Fusion, SubSearch, hybrid_search

        offset = kwargs.pop("offset", 0)
        round_decimal = kwargs.pop("round_decimal", -1)
        consistency = kwargs.pop("consistency_level", None)
        reject(kwargs, "hybrid_search")
        if not isinstance(reqs, (list, tuple)):
            raise InvalidArgument("hybrid_search: reqs must be a list of AnnSearchRequest")
        subs = [SubSearch(r.data, r.anns_field, r.param, r.limit, r.expr, r.expr_params)
                for r in map(as_request, reqs)]
        rk = as_ranker(ranker)
        fusion = (Fusion("rrf", k=float(rk._k)) if isinstance(rk, RRFRanker) else
                  Fusion("weighted", weights=tuple(float(w) for w in rk._weights),
                         norm_score=rk._norm_score))
        self._loaded(collection_name)
        return hybrid_search(self._proxy, self._db, collection_name, subs, fusion, limit,
                             output_fields, partition_names, offset, round_decimal,
                             consistency_level=consistency)

    def query_iterator(self, collection_name: str, batch_size: int = 1000, limit: int = -1,
                       filter: str = "",  # noqa: A002
                       output_fields: list[str] | None = None,
                       partition_names: list[str] | None = None, timeout: float | None = None,
                       **kwargs: Any) -> Any:
        """A :class:`~vecstore.client.query_iterator.QueryIterator` over the rows ``query``
        would return, ``batch_size`` per ``next()`` in primary-key order."""
        from vecstore.client.query_iterator import QueryIterator

        offset = kwargs.pop("offset", 0)
        params = kwargs.pop("filter_params", None)
        consistency = kwargs.pop("consistency_level", None)
        reject(kwargs, "query_iterator")
        self._loaded(collection_name)
        return QueryIterator(self._proxy, self._db, collection_name, batch_size, limit, filter,
                             output_fields, partition_names, params, offset, consistency)
