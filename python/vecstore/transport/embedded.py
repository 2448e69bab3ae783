"""The embedded wiring: every role in this process, over one data directory, by direct calls.

Opening recovers the whole database: the catalog from the meta store, every collection's sealed
segments and delete logs (mapped, checksummed) into the query node, and every collection's shard
from its WAL, replayed from the collection's checkpoint. Flush is orchestrated here, because it
spans roles: the shard hands over its growing segment, the segment and the deletes logged so far
are written to the object store, the coordinator commits segment + delete log + checkpoint in one
meta-store transaction, the query node loads the segment, the shard stops searching the growing
copy, and finally the WAL before the checkpoint is dropped.
"""

from __future__ import annotations

import threading
from typing import Any

from vecstore.coordinator.coordinator import Coordinator, DeleteLogRef, SegmentRef
from vecstore.proxy.convert import Layout
from vecstore.proxy.proxy import Proxy
from vecstore.query_node.node import QueryNode
from vecstore.storage.datadir import DataDir
from vecstore.storage.segment import write_delete_log
from vecstore.streaming_node.flush import flush as write_segment
from vecstore.streaming_node.node import StreamingNode


class EmbeddedDeployment:
    def __init__(self, path: str) -> None:
        self.datadir = DataDir(path, role="embedded")
        try:
            self.coordinator = Coordinator(self.datadir.meta)
            self.streaming = StreamingNode(self.datadir, self.coordinator.tso)
            self.query = QueryNode(self.datadir.objects)
            self.proxy = Proxy(self.coordinator, self.streaming, self.query)
            self._flush_mu = threading.Lock()
            for db in self.coordinator.catalog.list_databases():
                for name in self.coordinator.catalog.list_collections(db):
                    self.open_collection(self.coordinator.catalog.resolve(db, name))
        except BaseException:
            self.datadir.close()
            raise

    def open_collection(self, meta: Any) -> None:
        layout = Layout.of(meta.collection_schema())
        logs: dict[str, list[Any]] = {}
        for log in self.coordinator.delete_logs(meta.id):  # one scan, not one per segment
            logs.setdefault(log.prefix, []).append(log.delta)
        for seg in self.coordinator.segments(meta.id):
            self.query.load(meta.id, seg.id, seg.prefix, logs.get(seg.prefix, []))
        self.streaming.open(meta.id, layout.vectors, layout.pk_kind,
                            self.coordinator.next_segment_id(),
                            self.coordinator.checkpoint(meta.id))

    def flush(self, meta: Any) -> None:
        with self._flush_mu:
            shard = self.streaming.shard(meta.id)
            sealed = shard.rotate(self.coordinator.next_segment_id())
            if sealed is None:
                return
            seg_id = sealed.segment.segment_id
            prefix = f"{meta.id}/{seg_id}"
            manifest = write_segment(sealed.segment, sealed.view, self.datadir.objects, prefix,
                                     schema_version=1)
            log = None
            if sealed.delete_pks.size:
                info = write_delete_log(self.datadir.objects, prefix, sealed.delete_pks,
                                        sealed.delete_ts)
                log = DeleteLogRef(prefix, info)
            self.coordinator.commit_flush(meta.id, SegmentRef(seg_id, prefix, manifest.rows), log,
                                          sealed.checkpoint)
            self.query.load(meta.id, seg_id, prefix, [log.delta] if log else [])
            through = int(sealed.delete_ts.max()) if sealed.delete_ts.size else None
            shard.sealed(seg_id, deletes_through=through)
            self.datadir.wal(self.streaming.channel(meta.id)).truncate_before(sealed.checkpoint)

    def drop_collection_data(self, meta: Any) -> None:
        self.query.release(meta.id)
        self.streaming.drop(meta.id)
        self.coordinator.forget_collection(meta.id)
        for key in self.datadir.objects.list(f"{meta.id}/"):
            self.datadir.objects.delete(key)

    def row_count(self, meta: Any) -> int:
        rows = self.proxy.query(meta.db, meta.name, "", ["count(*)"], None, 0, None, None, None)
        return int(rows[0]["count(*)"])

    def close(self) -> None:
        self.datadir.close()


