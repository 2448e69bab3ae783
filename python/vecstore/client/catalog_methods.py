"""MilvusClient's catalog methods: load state, indexes, partitions, aliases and databases.

A mixin of :class:`vecstore.client.MilvusClient`, which provides ``self._catalog`` (the
coordinator's catalog), ``self._proxy``, ``self._dep`` (the deployment) and ``self._db``.
Load state lives in the collection's properties (see :mod:`vecstore.proxy.partitions`): all
partitions loaded, or a list of loaded ones.
"""

from __future__ import annotations

import json
from typing import Any

from vecstore.client import indexes
from vecstore.client.common import (
    CollectionNotLoaded,
    reject,
    replicas,
)
from vecstore.errors import InvalidArgument
from vecstore.proxy.partitions import (
    LOADED,
    LOADED_PARTITIONS,
    loaded_partitions,
    partition_key_field,
)
from vecstore.schema import CollectionSchema


class CatalogMethods:
    _catalog: Any
    _proxy: Any
    _dep: Any
    _db: str

    def _metric_properties(self, schema: CollectionSchema, index_params: list | None
                           ) -> dict[str, str]:
        return indexes.declare(schema, index_params)

    def load_collection(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> None:
        replicas(kwargs.pop("replica_number", None))
        reject(kwargs, "load_collection", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        if not any(k.startswith("index.") for k in meta.properties):
            raise InvalidArgument(f"index not found[collection={meta.name}]: create an index "
                                  "on the vector field before loading")
        self._catalog.alter_properties(self._db, collection_name,
                                       {LOADED: "true", LOADED_PARTITIONS: "[]"})

    def release_collection(self, collection_name: str, timeout: float | None = None,
                           **kwargs: Any) -> None:
        reject(kwargs, "release_collection", ("timeout",))
        self._catalog.alter_properties(self._db, collection_name,
                                       {LOADED: "false", LOADED_PARTITIONS: "[]"})

    def load_partitions(self, collection_name: str, partition_names: list[str] | str,
                        timeout: float | None = None, **kwargs: Any) -> None:
        """Loads some partitions: reads that name no partition see only the loaded ones."""
        replicas(kwargs.pop("replica_number", None))
        reject(kwargs, "load_partitions", ("timeout",))
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
        reject(kwargs, "release_partitions", ("timeout",))
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
        reject(kwargs, "get_load_state", ("timeout",))
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

    def drop_collection_properties(self, collection_name: str, property_keys: list[str],
                                   timeout: float | None = None, **kwargs: Any) -> None:
        reject(kwargs, "drop_collection_properties", ("timeout",))
        keys = _keys(property_keys)
        internal = [k for k in keys if k.startswith(("vecstore.",) + indexes.PREFIXES)]
        if internal:
            raise InvalidArgument(f"property {internal[0]!r} is managed by vecstore (load state "
                                  "or an index); use release_collection or drop_index")
        self._catalog.drop_properties(self._db, collection_name, keys)

    def create_index(self, collection_name: str, index_params: list,
                     timeout: float | None = None, **kwargs: Any) -> None:
        reject(kwargs, "create_index", ("timeout",))
        """Declares the indexes and returns once they are built on every sealed segment, as
        pymilvus's create_index waits (rows that arrive later are indexed in the background
        when their segment is sealed; until then they are searched exactly)."""
        meta = self._catalog.resolve(self._db, collection_name)
        props = indexes.declare(meta.collection_schema(), index_params)
        indexes.check_unchanged(meta.properties, props)
        self._catalog.alter_properties(self._db, collection_name, props)
        fields = [k[len("index."):] for k in props if k.startswith("index.")]
        self._dep.declare_indexes(self._catalog.resolve(self._db, collection_name), fields,
                                  timeout)

    def list_indexes(self, collection_name: str, field_name: str = "", **kwargs: Any
                     ) -> list[str]:
        reject(kwargs, "list_indexes", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        return [name for name, field in indexes.indexed_fields(meta.properties).items()
                if not field_name or field == field_name]

    def describe_index(self, collection_name: str, index_name: str,
                       timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        reject(kwargs, "describe_index", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        field = indexes.indexed_fields(meta.properties).get(index_name)
        if field is None:
            raise InvalidArgument(f"index not found[indexName={index_name}]")
        progress = self._dep.index_progress(meta.id, field)
        schema = meta.collection_schema()
        if progress == (0, 0, 0) or indexes.is_exact(schema, meta.properties, field):
            # Exact search needs no build: every visible row counts as indexed.
            rows = int(self._proxy.query(self._db, meta.name, "", ["count(*)"], None, 0, None,
                                         None, None, ignore_load=True)[0]["count(*)"])
            progress = (rows, rows, 0)
        return indexes.describe(meta.properties, field, index_name, progress)

    def drop_index(self, collection_name: str, index_name: str, timeout: float | None = None,
                   **kwargs: Any) -> None:
        """Drops a declared index; Milvus refuses while the collection is loaded."""
        reject(kwargs, "drop_index", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        field = indexes.indexed_fields(meta.properties).get(index_name)
        if field is None:
            return  # Milvus: dropping a missing index succeeds
        if loaded_partitions(meta) is None or loaded_partitions(meta):
            raise InvalidArgument(f"index cannot be dropped, collection is loaded, please "
                                  f"release it first[collection={meta.name}]")
        self._catalog.drop_properties(self._db, meta.name,
                                      [p + field for p in indexes.PREFIXES])
        self._dep.drop_index(self._catalog.resolve(self._db, meta.name), field)

    # ---- partitions, aliases, databases ------------------------------------------------------

    def create_partition(self, collection_name: str, partition_name: str, **kw: Any) -> None:
        reject(kw, "create_partition", ("timeout",))
        self._catalog.create_partition(self._db, collection_name, partition_name,
                                       ts=self._dep.coordinator.tso.now())

    def drop_partition(self, collection_name: str, partition_name: str, **kw: Any) -> None:
        """Drops a released partition; its rows stop being visible at once (Milvus refuses to
        drop a loaded partition)."""
        reject(kw, "drop_partition", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        loaded = loaded_partitions(meta)
        if partition_key_field(meta) is None and partition_name in meta.partitions and (
                loaded is None or partition_name in loaded):
            raise InvalidArgument(f"partition cannot be dropped, partition is loaded, please "
                                  f"release it first[partition={partition_name}]")
        self._catalog.drop_partition(self._db, collection_name, partition_name)

    def has_partition(self, collection_name: str, partition_name: str, **kw: Any) -> bool:
        reject(kw, "has_partition", ("timeout",))
        return self._catalog.has_partition(self._db, collection_name, partition_name)

    def list_partitions(self, collection_name: str, **kw: Any) -> list[str]:
        reject(kw, "list_partitions", ("timeout",))
        return self._catalog.list_partitions(self._db, collection_name)

    def create_alias(self, collection_name: str, alias: str, **kw: Any) -> None:
        reject(kw, "create_alias", ("timeout",))
        self._catalog.create_alias(self._db, collection_name, alias)

    def alter_alias(self, collection_name: str, alias: str, **kw: Any) -> None:
        reject(kw, "alter_alias", ("timeout",))
        self._catalog.alter_alias(self._db, collection_name, alias)

    def drop_alias(self, alias: str, **kw: Any) -> None:
        reject(kw, "drop_alias", ("timeout",))
        self._catalog.drop_alias(self._db, alias)

    def describe_alias(self, alias: str, **kw: Any) -> dict[str, str]:
        reject(kw, "describe_alias", ("timeout",))
        return self._catalog.describe_alias(self._db, alias)

    def list_aliases(self, collection_name: str = "", **kw: Any) -> dict[str, Any]:
        reject(kw, "list_aliases", ("timeout",))
        return self._catalog.list_aliases(self._db, collection_name)

    def create_database(self, db_name: str, properties: dict | None = None, **kw: Any) -> None:
        reject(kw, "create_database", ("timeout",))
        self._catalog.create_database(db_name, self._dep.coordinator.tso.now(), properties)

    def drop_database(self, db_name: str, **kw: Any) -> None:
        reject(kw, "drop_database", ("timeout",))
        self._catalog.drop_database(db_name)

    def list_databases(self, **kw: Any) -> list[str]:
        reject(kw, "list_databases", ("timeout",))
        return self._catalog.list_databases()

    def describe_database(self, db_name: str, **kw: Any) -> dict[str, Any]:
        reject(kw, "describe_database", ("timeout",))
        return self._catalog.describe_database(db_name)

    def alter_database_properties(self, db_name: str, properties: dict, **kw: Any) -> None:
        reject(kw, "alter_database_properties", ("timeout",))
        if not isinstance(properties, dict):
            raise InvalidArgument("properties must be a dict of property name to value")
        self._catalog.alter_database_properties(db_name, properties, [])

    def drop_database_properties(self, db_name: str, property_keys: list[str], **kw: Any
                                 ) -> None:
        reject(kw, "drop_database_properties", ("timeout",))
        self._catalog.alter_database_properties(db_name, {}, _keys(property_keys))

    def use_database(self, db_name: str, **kw: Any) -> None:
        reject(kw, "use_database", ("timeout",))
        self._catalog.list_collections(db_name)  # raises DatabaseNotFound
        self._db = db_name


def _keys(property_keys: object) -> list[str]:
    if isinstance(property_keys, str) or not isinstance(property_keys, (list, tuple)) or \
            not all(isinstance(k, str) for k in property_keys):
        raise InvalidArgument("property_keys must be a list of property names")
    return list(property_keys)
