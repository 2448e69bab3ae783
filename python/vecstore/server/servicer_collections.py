"""MilvusService RPCs of the catalog: handshake, collections, partitions, aliases, databases,
indexes, load state, flush and compaction.

A mixin of :class:`vecstore.server.servicer.Servicer`, which provides ``_view(request, context)``
(the embedded ``MilvusClient`` of the request's database) and ``_tso``. Each method translates
the request into the embedded client's call and its answer into Milvus's reply, so semantics and
messages are the embedded client's; :func:`guard` turns every error into a status.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from vecstore.client.common import IndexParams
from vecstore.errors import InvalidArgument
from vecstore.schema import CollectionSchema
from vecstore.server.encode import kv_dict, kv_pairs, loads, schema_from_proto, schema_to_proto
from vecstore.server.errors import INDEX_NOT_FOUND, OK, guard

_START = int(time.time())


def _status_ok(**kw: Any) -> dict[str, Any]:
    return {"status": OK, **kw}


class CollectionRpcs:
    _view: Any
    _base: Any
    _tso: Any

    # ---- handshake, time ---------------------------------------------------------------------

    @guard
    def Connect(self, request: Any, context: Any) -> Any:
        from vecstore import __version__

        info = common_pb2.ServerInfo(build_tags=f"vecstore-{__version__}", deploy_mode="vecstore",
                                     reserved={"host": socket.gethostname()})
        return milvus_pb2.ConnectResponse(status=OK, server_info=info,
                                          identifier=self._next_identifier())

    @guard
    def GetVersion(self, request: Any, context: Any) -> Any:
        from vecstore import __version__

        return milvus_pb2.GetVersionResponse(status=OK, version=f"vecstore-{__version__}")

    @guard
    def CheckHealth(self, request: Any, context: Any) -> Any:
        return milvus_pb2.CheckHealthResponse(status=OK, isHealthy=True)

    @guard
    def AllocTimestamp(self, request: Any, context: Any) -> Any:
        return milvus_pb2.AllocTimestampResponse(status=OK, timestamp=self._tso.now())

    # ---- collections -------------------------------------------------------------------------

    @guard
    def CreateCollection(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        raw = schema_pb2.CollectionSchema.FromString(request.schema)
        schema = CollectionSchema.from_dict(schema_from_proto(raw))
        kw: dict[str, Any] = {
            "consistency_level": int(request.consistency_level),
            "properties": kv_dict(request.properties),
        }
        if request.shards_num:
            kw["num_shards"] = int(request.shards_num)
        if request.num_partitions:
            kw["num_partitions"] = int(request.num_partitions)
        view.create_collection(request.collection_name, schema=schema, **kw)
        return OK

    @guard
    def DescribeCollection(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        name = request.collection_name
        if not name:
            raise InvalidArgument("DescribeCollection: give the collection by name")
        d = view.describe_collection(name)
        return milvus_pb2.DescribeCollectionResponse(
            status=OK, schema=schema_to_proto(d["collection_name"], d),
            collectionID=int(d["collection_id"]), created_timestamp=int(d["created_timestamp"]),
            created_utc_timestamp=int(d["created_timestamp"]) >> 18,
            shards_num=int(d["num_shards"]), aliases=d["aliases"],
            consistency_level=int(d["consistency_level"]), collection_name=d["collection_name"],
            properties=kv_pairs(d["properties"]), db_name=view._db,
            num_partitions=int(d["num_partitions"]),
            virtual_channel_names=[f"{d['collection_name']}_v{i}"
                                   for i in range(int(d["num_shards"]))])

    @guard
    def HasCollection(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        return milvus_pb2.BoolResponse(status=OK,
                                       value=view.has_collection(request.collection_name))

    @guard
    def ShowCollections(self, request: Any, context: Any) -> Any:
        names = self._view(request, context).list_collections()
        return milvus_pb2.ShowCollectionsResponse(status=OK, collection_names=names)

    @guard
    def DropCollection(self, request: Any, context: Any) -> Any:
        self._view(request, context).drop_collection(request.collection_name)
        self._forget_iterators()
        return OK

    @guard
    def RenameCollection(self, request: Any, context: Any) -> Any:
        self._view(request, context).rename_collection(request.oldName, request.newName,
                                                       request.newDBName)
        return OK

    @guard
    def TruncateCollection(self, request: Any, context: Any) -> Any:
        self._view(request, context).truncate_collection(request.collection_name)
        return milvus_pb2.TruncateCollectionResponse(status=OK)

    @guard
    def AlterCollection(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        if request.properties:
            view.alter_collection_properties(request.collection_name,
                                             kv_dict(request.properties))
        if request.delete_keys:
            view.drop_collection_properties(request.collection_name, list(request.delete_keys))
        return OK

    @guard
    def GetCollectionStatistics(self, request: Any, context: Any) -> Any:
        stats = self._view(request, context).get_collection_stats(request.collection_name)
        return milvus_pb2.GetCollectionStatisticsResponse(status=OK, stats=kv_pairs(stats))

    @guard
    def GetPartitionStatistics(self, request: Any, context: Any) -> Any:
        stats = self._view(request, context).get_partition_stats(request.collection_name,
                                                                 request.partition_name)
        return milvus_pb2.GetPartitionStatisticsResponse(status=OK, stats=kv_pairs(stats))

    # ---- load state --------------------------------------------------------------------------

    @staticmethod
    def _replicas(request: Any) -> dict[str, Any]:
        return {"replica_number": request.replica_number} if request.replica_number else {}

    @guard
    def LoadCollection(self, request: Any, context: Any) -> Any:
        self._view(request, context).load_collection(request.collection_name,
                                                     **self._replicas(request))
        return OK

    @guard
    def ReleaseCollection(self, request: Any, context: Any) -> Any:
        self._view(request, context).release_collection(request.collection_name)
        return OK

    @guard
    def LoadPartitions(self, request: Any, context: Any) -> Any:
        self._view(request, context).load_partitions(
            request.collection_name, list(request.partition_names), **self._replicas(request))
        return OK

    @guard
    def ReleasePartitions(self, request: Any, context: Any) -> Any:
        self._view(request, context).release_partitions(request.collection_name,
                                                        list(request.partition_names))
        return OK

    def _load_state(self, request: Any, context: Any) -> int:
        view = self._view(request, context)
        names = list(request.partition_names) or [""]
        states = [int(view.get_load_state(request.collection_name, p)["state"]) for p in names]
        return min(states)

    @guard
    def GetLoadState(self, request: Any, context: Any) -> Any:
        return milvus_pb2.GetLoadStateResponse(status=OK, state=self._load_state(request, context))

    @guard
    def GetLoadingProgress(self, request: Any, context: Any) -> Any:
        loaded = self._load_state(request, context) == common_pb2.LoadStateLoaded
        # Loading is a catalog flag here: a loaded collection serves at once.
        return milvus_pb2.GetLoadingProgressResponse(status=OK, progress=100 if loaded else 0,
                                                     refresh_progress=100 if loaded else 0)

    # ---- flush, compaction -------------------------------------------------------------------

    @guard
    def Flush(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        out = milvus_pb2.FlushResponse(status=OK, db_name=view._db)
        for name in request.collection_names:
            view.flush(name)
            out.coll_segIDs[name].SetInParent()
            out.flush_coll_segIDs[name].SetInParent()
            out.coll_seal_times[name] = int(time.time())
            out.coll_flush_ts[name] = self._tso.now()
        return out

    @guard
    def GetFlushState(self, request: Any, context: Any) -> Any:
        return milvus_pb2.GetFlushStateResponse(status=OK, flushed=True)  # Flush is synchronous

    @guard
    def ManualCompaction(self, request: Any, context: Any) -> Any:
        if request.majorCompaction or request.l0Compaction:
            from vecstore.errors import NotSupported

            raise NotSupported("clustering and L0 compaction are not supported by vecstore yet")
        job = self._view(request, context).compact(request.collection_name)
        return milvus_pb2.ManualCompactionResponse(status=OK, compactionID=int(job),
                                                   compactionPlanCount=1)

    @guard
    def GetCompactionState(self, request: Any, context: Any) -> Any:
        state = self._base.get_compaction_state(int(request.compactionID))
        value = {"Executing": common_pb2.Executing, "Completed": common_pb2.Completed}.get(
            state, common_pb2.UndefiedState)
        done = value == common_pb2.Completed
        return milvus_pb2.GetCompactionStateResponse(status=OK, state=value,
                                                     executingPlanNo=0 if done else 1,
                                                     completedPlanNo=1 if done else 0)

    # ---- partitions --------------------------------------------------------------------------

    @guard
    def CreatePartition(self, request: Any, context: Any) -> Any:
        self._view(request, context).create_partition(request.collection_name,
                                                      request.partition_name)
        return OK

    @guard
    def DropPartition(self, request: Any, context: Any) -> Any:
        self._view(request, context).drop_partition(request.collection_name,
                                                    request.partition_name)
        return OK

    @guard
    def HasPartition(self, request: Any, context: Any) -> Any:
        value = self._view(request, context).has_partition(request.collection_name,
                                                           request.partition_name)
        return milvus_pb2.BoolResponse(status=OK, value=value)

    @guard
    def ShowPartitions(self, request: Any, context: Any) -> Any:
        names = self._view(request, context).list_partitions(request.collection_name)
        return milvus_pb2.ShowPartitionsResponse(status=OK, partition_names=names,
                                                 partitionIDs=list(range(1, len(names) + 1)))

    # ---- aliases -----------------------------------------------------------------------------

    @guard
    def CreateAlias(self, request: Any, context: Any) -> Any:
        self._view(request, context).create_alias(request.collection_name, request.alias)
        return OK

    @guard
    def AlterAlias(self, request: Any, context: Any) -> Any:
        self._view(request, context).alter_alias(request.collection_name, request.alias)
        return OK

    @guard
    def DropAlias(self, request: Any, context: Any) -> Any:
        self._view(request, context).drop_alias(request.alias)
        return OK

    @guard
    def DescribeAlias(self, request: Any, context: Any) -> Any:
        d = self._view(request, context).describe_alias(request.alias)
        return milvus_pb2.DescribeAliasResponse(status=OK, db_name=d["db_name"],
                                                alias=d["alias"], collection=d["collection_name"])

    @guard
    def ListAliases(self, request: Any, context: Any) -> Any:
        d = self._view(request, context).list_aliases(request.collection_name)
        return milvus_pb2.ListAliasesResponse(status=OK, db_name=d.get("db_name", ""),
                                              collection_name=d.get("collection_name", ""),
                                              aliases=d["aliases"])

    # ---- databases (the request's db_name names the database acted on) ----------------------

    @guard
    def CreateDatabase(self, request: Any, context: Any) -> Any:
        self._base.create_database(request.db_name, properties=kv_dict(request.properties))
        return OK

    @guard
    def DropDatabase(self, request: Any, context: Any) -> Any:
        self._base.drop_database(request.db_name)
        self._drop_view(request.db_name)
        return OK

    @guard
    def ListDatabases(self, request: Any, context: Any) -> Any:
        return milvus_pb2.ListDatabasesResponse(status=OK, db_names=self._base.list_databases())

    @guard
    def DescribeDatabase(self, request: Any, context: Any) -> Any:
        d = dict(self._base.describe_database(request.db_name or "default"))
        name = d.pop("name", request.db_name)
        return milvus_pb2.DescribeDatabaseResponse(status=OK, db_name=name,
                                                   properties=kv_pairs(d))

    @guard
    def AlterDatabase(self, request: Any, context: Any) -> Any:
        name = request.db_name or "default"
        if request.properties:
            self._base.alter_database_properties(name, kv_dict(request.properties))
        if request.delete_keys:
            self._base.drop_database_properties(name, list(request.delete_keys))
        return OK

    # ---- indexes -----------------------------------------------------------------------------

    @guard
    def CreateIndex(self, request: Any, context: Any) -> Any:
        params = {k: loads(v) for k, v in kv_dict(request.extra_params).items()}
        index_type = str(params.pop("index_type", "") or "AUTOINDEX")
        metric = params.pop("metric_type", None)
        build = params.pop("params", None) or {}
        if isinstance(build, str):
            build = json.loads(build)
        build.update(params)  # Milvus also takes build parameters as top-level keys
        ip = IndexParams()
        ip.add_index(request.field_name, index_type=index_type,
                     index_name=request.index_name or request.field_name,
                     metric_type=metric or None, params=build)
        self._view(request, context).create_index(request.collection_name, ip)
        return OK

    @guard
    def DescribeIndex(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        name = request.collection_name
        names = view.list_indexes(name, field_name=request.field_name)
        if request.index_name:
            names = [n for n in names if n == request.index_name]
        if not names:
            return milvus_pb2.DescribeIndexResponse(status=common_pb2.Status(
                code=INDEX_NOT_FOUND, error_code=common_pb2.IndexNotExist,
                reason=f"index not found[collection={name}]"
                       + (f"[indexName={request.index_name}]" if request.index_name else "")))
        out = milvus_pb2.DescribeIndexResponse(status=OK)
        for i, index_name in enumerate(names):
            d = dict(view.describe_index(name, index_name))
            fixed = {k: d.pop(k) for k in ("index_type", "metric_type", "field_name",
                                           "index_name", "total_rows", "indexed_rows",
                                           "pending_index_rows", "state")}
            params = [common_pb2.KeyValuePair(key="index_type", value=fixed["index_type"]),
                      common_pb2.KeyValuePair(key="metric_type", value=fixed["metric_type"])]
            if d:
                params.append(common_pb2.KeyValuePair(key="params", value=json.dumps(d)))
            out.index_descriptions.add(
                index_name=fixed["index_name"], indexID=i + 1, params=params,
                field_name=fixed["field_name"], indexed_rows=int(fixed["indexed_rows"]),
                total_rows=int(fixed["total_rows"]),
                pending_index_rows=int(fixed["pending_index_rows"]),
                state=common_pb2.Finished if fixed["state"] == "Finished"
                else common_pb2.InProgress)
        return out

    @guard
    def DropIndex(self, request: Any, context: Any) -> Any:
        view = self._view(request, context)
        index_name = request.index_name
        if not index_name:
            names = view.list_indexes(request.collection_name, field_name=request.field_name)
            if not names:
                return OK
            index_name = names[0]
        view.drop_index(request.collection_name, index_name)
        return OK
