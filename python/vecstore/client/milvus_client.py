"""MilvusClient: pymilvus's ``MilvusClient`` API, embedded.

``MilvusClient("./my_data")`` (or ``"./milvus.db"``, as Milvus Lite users write it) opens that data
directory with every role in this process. Method names, parameters, defaults and return shapes
follow pymilvus 2.6 / Milvus 2.6 (see shared/MILVUS_API.md); a parameter this version does not
implement raises :class:`NotSupported` naming it, never silently ignored.

This module holds the connection, the builders and collection-level DDL, flush, compaction and
truncation; :mod:`.catalog_methods` the load state, indexes, partitions, aliases and databases;
:mod:`.data_methods` the writes, reads, searches and iterators; :mod:`.bulk_methods` bulk
import. ``MilvusClient("http://host:port")`` returns pymilvus's own client connected to that
server (:mod:`.remote`).
"""

from __future__ import annotations

import os
from typing import Any

from vecstore.client.bulk_methods import BulkMethods
from vecstore.client.catalog_methods import CatalogMethods
from vecstore.client.common import (  # noqa: F401 (CollectionNotLoaded: re-exported)
    CollectionNotLoaded,
    IndexParams,
    NotSupported,
    key_partitions,
    reject,
)
from vecstore.client.data_methods import DataMethods
from vecstore.errors import InvalidArgument
from vecstore.proxy.consistency import parse_level
from vecstore.proxy.partitions import LOADED
from vecstore.schema import CollectionSchema, DataType


class MilvusClient(CatalogMethods, DataMethods, BulkMethods):
    def __new__(cls, uri: str = "./milvus.db", *args: Any, **kwargs: Any) -> Any:
        # A server URI gets pymilvus's own client, connected to that server (`vecstore serve`
        # or Milvus): the same API, over the wire.
        from vecstore.client.remote import connect, served_address

        if isinstance(uri, str) and uri.startswith(("http://", "https://")):
            return connect(uri, *args, **kwargs)
        if isinstance(uri, (str, os.PathLike)) and os.path.isdir(uri):
            address = served_address(os.fspath(uri))
            if address is not None:  # a running `vecstore serve` owns the directory
                return connect(f"http://{address}", *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, uri: str = "./milvus.db", user: str = "", password: str = "",
                 db_name: str = "", token: str = "", timeout: float | None = None,
                 **kwargs: Any) -> None:
        # user/password/token/timeout matter to a server; for a local directory they are
        # accepted and unused, as Milvus Lite does. Anything else is refused.
        reject(kwargs, "MilvusClient")
        if not isinstance(uri, (str, os.PathLike)):
            raise InvalidArgument(f"uri must be a path or URL string, got {type(uri).__name__}")
        uri = os.fspath(uri)
        if "://" in uri or uri.startswith("unix:"):
            raise NotSupported(
                f"uri {uri!r}: vecstore connects to servers by http:// or https:// URIs (such as "
                "'http://127.0.0.1:19530'), or opens a local directory such as './my_data'")
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
        reject(kwargs, "create_collection")
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
        partitions = key_partitions(schema, num_partitions)
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
        reject(kw, "has_collection")
        return self._catalog.has_collection(self._db, collection_name)

    def list_collections(self, **kwargs: Any) -> list[str]:
        reject(kwargs, "list_collections", ("timeout",))
        return self._catalog.list_collections(self._db)

    def describe_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> dict[str, Any]:
        reject(kwargs, "describe_collection", ("timeout",))
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
        reject(kwargs, "rename_collection", ("timeout",))
        self._catalog.rename_collection(self._db, old_name, new_name, target_db or None)

    def get_collection_stats(self, collection_name: str, timeout: float | None = None,
                             **kwargs: Any) -> dict[str, int]:
        reject(kwargs, "get_collection_stats", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        rows = self._proxy.query(self._db, meta.name, "", ["count(*)"], None, 0, None, None,
                                 None, ignore_load=True)
        return {"row_count": int(rows[0]["count(*)"])}

    def get_partition_stats(self, collection_name: str, partition_name: str,
                            timeout: float | None = None, **kwargs: Any) -> dict[str, int]:
        reject(kwargs, "get_partition_stats", ("timeout",))
        meta = self._catalog.resolve(self._db, collection_name)
        if partition_name not in meta.partitions:
            raise InvalidArgument(f"partition not found[partition={partition_name}]")
        rows = self._proxy.query(self._db, meta.name, "", ["count(*)"], None, 0, None,
                                 [partition_name], None, ignore_load=True)
        return {"row_count": int(rows[0]["count(*)"])}

    def alter_collection_properties(self, collection_name: str, properties: dict,
                                    timeout: float | None = None, **kwargs: Any) -> None:
        reject(kwargs, "alter_collection_properties", ("timeout",))
        self._catalog.alter_properties(self._db, collection_name, properties)

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
        reject(kwargs, "compact", ("target_size",))
        return self._dep.compact(self._catalog.resolve(self._db, collection_name))

    def get_compaction_state(self, job_id: int, timeout: float | None = None,
                             **kwargs: Any) -> str:
        """"Executing" or "Completed" (pymilvus's CompactionState names; "UndefiedState" for an
        unknown id, such as one from before the database was reopened)."""
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise InvalidArgument(f"job_id must be the int that compact() returned, got "
                                  f"{job_id!r}")
        return self._dep.compaction_state(job_id)

    def flush_all(self, timeout: float | None = None, **kwargs: Any) -> None:
        """Flushes every collection of every database (returns when they are sealed)."""
        reject(kwargs, "flush_all")
        for db in self._catalog.list_databases():
            for name in self._catalog.list_collections(db):
                self._dep.flush(self._catalog.resolve(db, name))

    def get_flush_all_state(self, timeout: float | None = None, **kwargs: Any) -> bool:
        reject(kwargs, "get_flush_all_state")
        return True  # flush_all returns only once everything it flushed is durable

    def get_server_version(self, timeout: float | None = None, detail: bool = False,
                           **kwargs: Any) -> str | dict[str, Any]:
        reject(kwargs, "get_server_version")
        from vecstore import __version__

        version = f"vecstore-{__version__}"
        return {"version": version, "server_type": "milvus"} if detail else version

    def get_server_type(self) -> str:
        """"milvus", as Milvus Lite answers: callers branch on milvus vs zilliz."""
        return "milvus"

    def refresh_load(self, collection_name: str, timeout: float | None = None,
                     **kwargs: Any) -> None:
        """A loaded collection always serves its newest segments: nothing to refresh."""
        reject(kwargs, "refresh_load")
        self._loaded(collection_name)

    def using_database(self, db_name: str, **kwargs: Any) -> None:
        """Deprecated in pymilvus: :meth:`use_database`."""
        self.use_database(db_name, **kwargs)

    @staticmethod
    def create_field_schema(name: str, data_type: DataType, desc: str = "", **kwargs: Any
                            ) -> Any:
        from vecstore.schema import FieldSchema

        return FieldSchema(name, data_type, description=desc, **kwargs)

    def close(self) -> None:
        if self._imports is not None:
            self._imports.close()  # running imports fail, committing nothing
        self._dep.close()

    def __enter__(self) -> MilvusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
