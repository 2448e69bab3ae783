"""MilvusClient: pymilvus's ``MilvusClient`` API, embedded.

``MilvusClient("./my_data")`` (or ``"./milvus.db"``, as Milvus Lite users write it) opens that data
directory with every role in this process. Method names, parameters, defaults and return shapes
follow pymilvus 2.6 / Milvus 2.6 (see shared/MILVUS_API.md); parameters this version does not
implement raise :class:`NotSupported` naming them, never silently ignored.

Supported now: collections (quick setup and schema form, describe/has/list/drop/rename, stats,
load/release/load state, properties), FLAT/AUTOINDEX indexes (exact search), partitions, aliases,
databases, insert (rows or columns), upsert (not partial), delete by ids or filter, get, query
(filter, output fields, ``count(*)``, limit/offset), search (every vector type and metric,
filter, output fields, limit/offset, partitions, ``round_decimal``), flush, close. Not yet:
partial upsert, hybrid search, iterators, range and grouping search, compaction, other index
types, server URIs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from vecstore.errors import InvalidArgument, VecstoreError
from vecstore.proxy.consistency import parse_level
from vecstore.proxy.partitions import (
    LOADED,
    LOADED_PARTITIONS,
    loaded_partitions,
    partition_key_field,
)
from vecstore.schema import CollectionSchema, DataType

_SUPPORTED_INDEXES = {"FLAT", "AUTOINDEX", "BIN_FLAT", ""}


class NotSupported(VecstoreError):
    """A MilvusClient feature or parameter this version of vecstore does not implement."""

    code = 3000  # Milvus's "unsupported operation"


class CollectionNotLoaded(VecstoreError):
    code = 101


class IndexParams(list):
    """``MilvusClient.prepare_index_params()``: a list of index descriptions."""

    def add_index(self, field_name: str, index_type: str = "", index_name: str = "",
                  metric_type: str | None = None, params: dict | None = None, **kwargs: Any
                  ) -> None:
        self.append({"field_name": field_name, "index_type": (index_type or "").upper(),
                     "index_name": index_name or field_name, "metric_type": metric_type,
                     "params": dict(params or {}), **kwargs})


def _key_partitions(schema: CollectionSchema, num_partitions: object) -> list[str] | None:
    """The partitions of a new collection: Milvus gives a partition-key collection
    ``num_partitions`` (default 16) partitions named ``_default_<i>``; others start with
    ``_default`` alone."""
    if not any(f.is_partition_key for f in schema.fields):
        if num_partitions is not None:
            raise InvalidArgument("num_partitions should only be specified with partition key "
                                  "field enabled")
        return None
    n = 16 if num_partitions is None else num_partitions
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
        raise InvalidArgument(f"num_partitions must be an int in [1, 1024], got {n!r}")
    return [f"_default_{i}" for i in range(n)]


def _replicas(value: object) -> None:
    """``replica_number``: an embedded deployment serves one replica of everything."""
    if value is not None and value != 1:
        raise NotSupported(f"replica_number={value!r}: an embedded deployment has one query node, "
                           "so it loads exactly one replica; pass 1 or leave it out")


def _reject(kwargs: dict[str, Any], method: str, allowed: tuple[str, ...] = ()) -> None:
    extra = sorted(k for k, v in kwargs.items() if k not in allowed and v is not None)
    if extra:
        raise NotSupported(f"{method}: parameter(s) {extra} are not supported by vecstore yet")


class MilvusClient:
    def __init__(self, uri: str = "./milvus.db", user: str = "", password: str = "",
                 db_name: str = "", token: str = "", timeout: float | None = None,
                 **kwargs: Any) -> None:
        if not isinstance(uri, (str, os.PathLike)):
            raise InvalidArgument(f"uri must be a path or URL string, got {type(uri).__name__}")
        uri = os.fspath(uri)
        if "://" in uri or uri.startswith("unix:"):
            raise NotSupported(
                f"uri {uri!r} names a server; this version of vecstore runs embedded only: pass "
                "a local directory such as './my_data'")
        from vecstore.transport.embedded import EmbeddedDeployment

        self._dep = EmbeddedDeployment(uri)
        self._proxy = self._dep.proxy
        self._catalog = self._dep.coordinator.catalog
        self._db = db_name or "default"

    # ---- builders ----------------------------------------------------------------------------

    @staticmethod
    def create_schema(**kwargs: Any) -> CollectionSchema:
        return CollectionSchema(**kwargs)

    @staticmethod
    def prepare_index_params(field_name: str = "", **kwargs: Any) -> IndexParams:
        params = IndexParams()
        if field_name:
            params.add_index(field_name, **kwargs)
        return params

    # ---- collections -------------------------------------------------------------------------

    def _metric_properties(self, schema: CollectionSchema, index_params: list | None
                           ) -> dict[str, str]:
        props: dict[str, str] = {}
        for ip in index_params or []:
            field = ip.get("field_name")
            if field not in [f.name for f in schema.fields]:
                raise InvalidArgument(f"index on unknown field {field!r}")
            if ip.get("index_type", "") not in _SUPPORTED_INDEXES:
                raise NotSupported(
                    f"index type {ip['index_type']} is not supported by vecstore yet; "
                    "supported: FLAT, AUTOINDEX (exact search), BIN_FLAT")
            metric = (ip.get("metric_type") or "").upper()
            if metric:
                props[f"metric_type.{field}"] = metric
            props[f"index.{field}"] = ip.get("index_type") or "AUTOINDEX"
        return props

    def create_collection(self, collection_name: str, dimension: int | None = None,
                          primary_field_name: str = "id", id_type: str = "int",
                          vector_field_name: str = "vector", metric_type: str = "COSINE",
                          auto_id: bool = False, timeout: float | None = None,
                          schema: CollectionSchema | None = None,
                          index_params: list | None = None, **kwargs: Any) -> None:
        consistency = parse_level(kwargs.pop("consistency_level", "Bounded")).name
        num_shards = kwargs.pop("num_shards", 1)
        properties = kwargs.pop("properties", None) or {}
        max_length = kwargs.pop("max_length", 65535)
        num_partitions = kwargs.pop("num_partitions", None)
        kwargs.pop("enable_dynamic_field", None) if schema is not None else None
        dynamic = kwargs.pop("enable_dynamic_field", True)
        _reject(kwargs, "create_collection")
        if schema is None:
            if dimension is None:
                raise InvalidArgument("create_collection needs dimension= (quick setup) or "
                                      "schema=")
            schema = CollectionSchema(auto_id=auto_id, enable_dynamic_field=dynamic)
            if id_type in ("int", DataType.INT64):
                schema.add_field(primary_field_name, DataType.INT64, is_primary=True,
                                 auto_id=auto_id)
            elif id_type in ("string", "str", DataType.VARCHAR):
                schema.add_field(primary_field_name, DataType.VARCHAR, is_primary=True,
                                 auto_id=auto_id, max_length=max_length)
            else:
                raise InvalidArgument(f"id_type must be 'int' or 'string', got {id_type!r}")
            schema.add_field(vector_field_name, DataType.FLOAT_VECTOR, dim=dimension)
            index_params = [{"field_name": vector_field_name, "index_type": "AUTOINDEX",
                             "metric_type": metric_type}]
        partitions = _key_partitions(schema, num_partitions)
        props = {str(k): str(v) for k, v in properties.items()}
        props.update(self._metric_properties(schema, index_params))
        props[LOADED] = "true" if index_params else "false"
        ts = self._dep.coordinator.tso.now()
        meta = self._catalog.create_collection(self._db, collection_name, schema, ts,
                                               consistency_level=consistency,
                                               num_shards=num_shards, properties=props,
                                               partitions=partitions)
        self._dep.open_collection(meta)

    def has_collection(self, collection_name: str, timeout: float | None = None, **kw: Any
                       ) -> bool:
        _reject(kw, "has_collection")
        return self._catalog.has_collection(self._db, collection_name)

    def list_collections(self, **kwargs: Any) -> list[str]:
        _reject(kwargs, "list_collections", ("timeout",))
        return self._catalog.list_collections(self._db)

    def describe_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> dict[str, Any]:
        _reject(kwargs, "describe_collection", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        schema = meta.collection_schema().to_dict()
        props = {k: v for k, v in meta.properties.items()
                 if not k.startswith(("metric_type.", "index.", "vecstore."))}
        return {
            "collection_name": meta.name,
            "auto_id": schema.get("auto_id", False),
            "num_shards": meta.num_shards,
            "description": schema.get("description", ""),
            "fields": schema.get("fields", []),
            "functions": schema.get("functions", []),
            "aliases": self._catalog.aliases_of(self._db, meta.name),
            "collection_id": meta.id,
            "consistency_level": int(parse_level(meta.consistency_level)),  # pymilvus: an int
            "properties": props,
            "num_partitions": len(meta.partitions),
            "enable_dynamic_field": schema.get("enable_dynamic_field", False),
            "created_timestamp": meta.created_ts,
        }

    def drop_collection(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> None:
        meta = self._catalog.drop_collection(self._db, collection_name)
        if meta is not None:
            self._dep.drop_collection_data(meta)

    def rename_collection(self, old_name: str, new_name: str, target_db: str = "",
                          timeout: float | None = None, **kwargs: Any) -> None:
        _reject(kwargs, "rename_collection", ("timeout",))
        self._catalog.rename_collection(self._db, old_name, new_name, target_db or None)

    def get_collection_stats(self, collection_name: str, timeout: float | None = None,
                             **kwargs: Any) -> dict[str, int]:
        _reject(kwargs, "get_collection_stats", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        rows = self._proxy.query(self._db, meta.name, "", ["count(*)"], None, 0, None, None,
                                 None, ignore_load=True)
        return {"row_count": int(rows[0]["count(*)"])}

    def get_partition_stats(self, collection_name: str, partition_name: str,
                            timeout: float | None = None, **kwargs: Any) -> dict[str, int]:
        _reject(kwargs, "get_partition_stats", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        if partition_name not in meta.partitions:
            raise InvalidArgument(f"partition not found[partition={partition_name}]")
        rows = self._proxy.query(self._db, meta.name, "", ["count(*)"], None, 0, None,
                                 [partition_name], None, ignore_load=True)
        return {"row_count": int(rows[0]["count(*)"])}

    def alter_collection_properties(self, collection_name: str, properties: dict,
                                    timeout: float | None = None, **kwargs: Any) -> None:
        _reject(kwargs, "alter_collection_properties", ("timeout",))
        self._catalog.alter_properties(self._db, collection_name, properties)

    def load_collection(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> None:
        _replicas(kwargs.pop("replica_number", None))
        _reject(kwargs, "load_collection", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        if not any(k.startswith("index.") for k in meta.properties):
            raise InvalidArgument(f"index not found[collection={meta.name}]: create an index "
                                  "on the vector field before loading")
        self._catalog.alter_properties(self._db, collection_name,
                                       {LOADED: "true", LOADED_PARTITIONS: "[]"})

    def release_collection(self, collection_name: str, timeout: float | None = None,
                           **kwargs: Any) -> None:
        _reject(kwargs, "release_collection", ("timeout",))
        self._catalog.alter_properties(self._db, collection_name,
                                       {LOADED: "false", LOADED_PARTITIONS: "[]"})

    def load_partitions(self, collection_name: str, partition_names: list[str] | str,
                        timeout: float | None = None, **kwargs: Any) -> None:
        """Loads some partitions: reads that name no partition see only the loaded ones."""
        _replicas(kwargs.pop("replica_number", None))
        _reject(kwargs, "load_partitions", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        names = self._partition_list(meta, partition_names)
        if not any(k.startswith("index.") for k in meta.properties):
            raise InvalidArgument(f"index not found[collection={meta.name}]: create an index "
                                  "on the vector field before loading")
        loaded = loaded_partitions(meta)
        if loaded is None:
            return  # the whole collection is loaded already
        now = sorted(loaded | set(names))
        self._catalog.alter_properties(self._db, collection_name,
                                       {LOADED_PARTITIONS: json.dumps(now)})

    def release_partitions(self, collection_name: str, partition_names: list[str] | str,
                           timeout: float | None = None, **kwargs: Any) -> None:
        _reject(kwargs, "release_partitions", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        names = set(self._partition_list(meta, partition_names))
        loaded = loaded_partitions(meta)
        left = set(meta.partitions) if loaded is None else loaded
        self._catalog.alter_properties(self._db, collection_name, {
            LOADED: "false", LOADED_PARTITIONS: json.dumps(sorted(left - names))})

    @staticmethod
    def _partition_list(meta: Any, names: object) -> list[str]:
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, (list, tuple)) or not names or \
                not all(isinstance(n, str) for n in names):
            raise InvalidArgument("partition_names must be a non-empty list of partition names")
        for n in names:
            if n not in meta.partitions:
                raise InvalidArgument(f"partition not found[partition={n}]")
        return list(names)

    def get_load_state(self, collection_name: str, partition_name: str = "",
                       timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        _reject(kwargs, "get_load_state", ("timeout",))
        from vecstore.client.load_state import LoadState

        meta = self._catalog.resolve(self._db, collection_name)
        loaded = loaded_partitions(meta)
        if partition_name:
            if partition_name not in meta.partitions:
                raise InvalidArgument(f"partition not found[partition={partition_name}]")
            on = loaded is None or partition_name in loaded
        else:
            on = loaded is None or bool(loaded)  # Milvus: partially loaded counts as loaded
        return {"state": LoadState.Loaded if on else LoadState.NotLoad}

    def _loaded(self, collection_name: str) -> None:
        meta = self._catalog.resolve(self._db, collection_name)
        loaded = loaded_partitions(meta)
        if loaded is not None and not loaded:
            raise CollectionNotLoaded(f"collection not loaded[collection={meta.name}]: call "
                                      "load_collection first")

    # ---- indexes -----------------------------------------------------------------------------

    def create_index(self, collection_name: str, index_params: list,
                     timeout: float | None = None, **kwargs: Any) -> None:
        _reject(kwargs, "create_index", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        props = self._metric_properties(meta.collection_schema(), index_params)
        self._catalog.alter_properties(self._db, collection_name, props)

    def list_indexes(self, collection_name: str, field_name: str = "", **kwargs: Any
                     ) -> list[str]:
        _reject(kwargs, "list_indexes", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        return [k[len("index."):] for k in meta.properties if k.startswith("index.")
                and (not field_name or k == f"index.{field_name}")]

    # ---- partitions, aliases, databases ------------------------------------------------------

    def create_partition(self, collection_name: str, partition_name: str, **kw: Any) -> None:
        _reject(kw, "create_partition", ("timeout",))
        self._catalog.create_partition(self._db, collection_name, partition_name,
                                       ts=self._dep.coordinator.tso.now())

    def drop_partition(self, collection_name: str, partition_name: str, **kw: Any) -> None:
        """Drops a released partition; its rows stop being visible at once (Milvus refuses to
        drop a loaded partition)."""
        _reject(kw, "drop_partition", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        loaded = loaded_partitions(meta)
        if partition_key_field(meta) is None and partition_name in meta.partitions and (
                loaded is None or partition_name in loaded):
            raise InvalidArgument(f"partition cannot be dropped, partition is loaded, please "
                                  f"release it first[partition={partition_name}]")
        self._catalog.drop_partition(self._db, collection_name, partition_name)

    def has_partition(self, collection_name: str, partition_name: str, **kw: Any) -> bool:
        _reject(kw, "has_partition", ("timeout",))
        return self._catalog.has_partition(self._db, collection_name, partition_name)

    def list_partitions(self, collection_name: str, **kw: Any) -> list[str]:
        _reject(kw, "list_partitions", ("timeout",))
        return self._catalog.list_partitions(self._db, collection_name)

    def create_alias(self, collection_name: str, alias: str, **kw: Any) -> None:
        _reject(kw, "create_alias", ("timeout",))
        self._catalog.create_alias(self._db, collection_name, alias)

    def alter_alias(self, collection_name: str, alias: str, **kw: Any) -> None:
        _reject(kw, "alter_alias", ("timeout",))
        self._catalog.alter_alias(self._db, collection_name, alias)

    def drop_alias(self, alias: str, **kw: Any) -> None:
        _reject(kw, "drop_alias", ("timeout",))
        self._catalog.drop_alias(self._db, alias)

    def describe_alias(self, alias: str, **kw: Any) -> dict[str, str]:
        _reject(kw, "describe_alias", ("timeout",))
        return self._catalog.describe_alias(self._db, alias)

    def list_aliases(self, collection_name: str = "", **kw: Any) -> dict[str, Any]:
        _reject(kw, "list_aliases", ("timeout",))
        return self._catalog.list_aliases(self._db, collection_name)

    def create_database(self, db_name: str, properties: dict | None = None, **kw: Any) -> None:
        _reject(kw, "create_database", ("timeout",))
        self._catalog.create_database(db_name, self._dep.coordinator.tso.now(), properties)

    def drop_database(self, db_name: str, **kw: Any) -> None:
        _reject(kw, "drop_database", ("timeout",))
        self._catalog.drop_database(db_name)

    def list_databases(self, **kw: Any) -> list[str]:
        _reject(kw, "list_databases", ("timeout",))
        return self._catalog.list_databases()

    def describe_database(self, db_name: str, **kw: Any) -> dict[str, Any]:
        _reject(kw, "describe_database", ("timeout",))
        return self._catalog.describe_database(db_name)

    def use_database(self, db_name: str, **kw: Any) -> None:
        _reject(kw, "use_database", ("timeout",))
        self._catalog.list_collections(db_name)  # raises DatabaseNotFound
        self._db = db_name

    # ---- data --------------------------------------------------------------------------------

    def insert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
        _reject(kwargs, "insert")
        return self._proxy.insert(self._db, collection_name, data, partition_name or None)

    def upsert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
        """Inserts rows, replacing any stored under the same primary keys, atomically."""
        partial = kwargs.pop("partial_update", False)
        if not isinstance(partial, bool):
            raise InvalidArgument(f"partial_update must be a bool, got {partial!r}")
        _reject(kwargs, "upsert")
        return self._proxy.insert(self._db, collection_name, data, partition_name or None,
                                  upsert=True, partial=partial)

    def delete(self, collection_name: str, ids: Any = None, timeout: float | None = None,
               filter: str | None = None, partition_name: str | None = None,  # noqa: A002
               filter_params: dict | None = None, **kwargs: Any) -> dict[str, int]:
        _reject(kwargs, "delete")
        return self._proxy.delete(self._db, collection_name, ids, filter, filter_params,
                                  partition_name or None)

    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
            timeout: float | None = None, partition_names: list[str] | None = None,
            **kwargs: Any) -> list[dict[str, Any]]:
        consistency = kwargs.pop("consistency_level", None)
        _reject(kwargs, "get")
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
        _reject(kwargs, "query")
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
        _reject(kwargs, "search")
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
        _reject(kwargs, "search_iterator")
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
        _reject(kwargs, "hybrid_search")
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
        _reject(kwargs, "query_iterator")
        self._loaded(collection_name)
        return QueryIterator(self._proxy, self._db, collection_name, batch_size, limit, filter,
                             output_fields, partition_names, params, offset, consistency)

    def flush(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        self._dep.flush(self._catalog.resolve(self._db, collection_name))

    def truncate_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> None:
        """Removes every row; the schema, indexes, partitions, aliases and properties stay."""
        self._dep.truncate(self._catalog.resolve(self._db, collection_name))

    def compact(self, collection_name: str, is_clustering: bool = False, is_l0: bool = False,
                timeout: float | None = None, **kwargs: Any) -> int:
        """Starts merging the collection's small segments and dropping its deleted rows in the
        background; returns the job id for :meth:`get_compaction_state`."""
        if is_clustering or is_l0:
            raise NotSupported("compact: clustering and L0 compaction are not supported by "
                               "vecstore yet; call compact(collection_name) for a mix compaction")
        _reject(kwargs, "compact", ("target_size",))
        return self._dep.compact(self._catalog.resolve(self._db, collection_name))

    def get_compaction_state(self, job_id: int, timeout: float | None = None,
                             **kwargs: Any) -> str:
        """"Executing" or "Completed" (pymilvus's CompactionState names; "UndefiedState" for an
        unknown id, such as one from before the database was reopened)."""
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise InvalidArgument(f"job_id must be the int that compact() returned, got "
                                  f"{job_id!r}")
        return self._dep.compaction_state(job_id)

    def close(self) -> None:
        self._dep.close()

    def __enter__(self) -> MilvusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
