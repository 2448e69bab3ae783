"""The embedded wiring: every role in this process, over one data directory, by direct calls.

Opening recovers the whole database: the catalog from the meta store, segment files no committed
key names are removed (what a crash between writing and committing, or committing and removing,
left), every collection's sealed segments and delete logs (mapped, checksummed) are loaded into
the query node, and every collection's shard is replayed from its WAL checkpoint. Then the data
node's background thread starts.

Tasks that span roles are orchestrated here, one at a time per collection (a per-collection
lock; inserts and searches never take it):

flush       the shard hands over its growing segment (it stays searchable as "sealing"), the
            segment and the deletes logged so far are written to the object store, the
            coordinator commits segment + delete log + checkpoint in one transaction (the commit
            point), the query node loads the segment, the shard stops searching the growing copy,
            and the WAL before the checkpoint is dropped. A failure before the commit keeps the
            handed-over segment pending: the next flush writes it first, so checkpoints advance
            in order and no row is skipped.
compaction  the data node merges the planned segments into a new one (deleted and superseded
            rows dropped, the inputs' delete-log entries still needed elsewhere carried over),
            the coordinator swaps inputs for output in one transaction, the query node swaps them
            under its lock, and only then are the inputs' files removed.
import      a bulk import (vecstore.bulk) writes sealed segments itself, outside the WAL;
            :meth:`EmbeddedDeployment.commit_import` commits them all in one transaction under
            the collection's task lock, loads them into the query node in one step and pokes
            the data node and index builder. Uncommitted files are garbage, as a flush's are.
truncate    under the shard lock, the coordinator forgets every segment and moves the checkpoint
            to the WAL's end in one transaction, and the shard and query node drop their data;
            files are removed after.

A search lists the shard's growing views before the query node's segments and skips a view
whose segment a listed segment covers (ShardSnapshot.views), so it sees every row exactly once
across a concurrent flush or compaction. A search concurrent with a truncate may see part of the
old data; any search that starts after it returns sees none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from vecstore.common import failpoints
from vecstore.coordinator.coordinator import Coordinator, DeleteLogRef, SegmentRef
from vecstore.data_node import DataNode, DataNodeConfig
from vecstore.data_node import compaction as merging
from vecstore.data_node.gc import collect_garbage, remove_prefix
from vecstore.data_node.index_builder import IndexBuilder
from vecstore.data_node.work import LocalWork
from vecstore.errors import InternalError, InvalidArgument, StorageError
from vecstore.proxy.convert import Layout
from vecstore.proxy.proxy import Proxy
from vecstore.query_node.node import QueryNode
from vecstore.storage.datadir import DataDir
from vecstore.storage.segment import write_delete_log
from vecstore.storage.wal import Position
from vecstore.streaming_node.flush import flush as write_segment
from vecstore.streaming_node.node import StreamingNode
from vecstore.streaming_node.shard import Sealed, Shard
from vecstore.transport.indexing import Indexing

log = logging.getLogger(__name__)

# The query node of deployments built without one: None is the in-process QueryNode. ``vecstore
# serve --query-nodes N`` sets a factory (deployment -> QueryNode) for its process.
QUERY_NODE_FACTORY: Callable[[EmbeddedDeployment], QueryNode] | None = None
# Where WAL channels are written: None is this process (FileWal). ``vecstore serve
# --streaming-nodes N`` sets a factory (deployment -> StreamingNodes) of writer processes.
STREAMING_NODE_FACTORY: Callable[[EmbeddedDeployment], Any] | None = None
# Where index builds and compaction merges run: None is this process (LocalWork). ``vecstore
# serve --data-nodes N`` sets a factory (deployment -> RemoteWork) of data-node processes.
DATA_NODE_FACTORY: Callable[[EmbeddedDeployment], Any] | None = None


class EmbeddedDeployment:
    def __init__(self, path: str, config: DataNodeConfig | None = None, *,
                 query_node: Callable[[EmbeddedDeployment], QueryNode] | None = None) -> None:
        """``query_node``: builds the query node from the deployment (its data directory and
        coordinator are open); default QUERY_NODE_FACTORY, else the in-process QueryNode."""
        self.datadir = DataDir(path, role="embedded")
        self.data: DataNode | None = None
        self.builder: IndexBuilder | None = None
        self.wal_nodes: Any = None
        self.work: Any = None
        try:
            if STREAMING_NODE_FACTORY is not None:
                self.wal_nodes = STREAMING_NODE_FACTORY(self)
                self.datadir.wal_opener = self.wal_nodes.open
                self.wal_nodes.on_channel_lost = self.recover_channel
            self.config = config if config is not None else DataNodeConfig.from_env()
            self.coordinator = Coordinator(self.datadir.meta)
            self.streaming = StreamingNode(self.datadir, self.coordinator.tso)
            factory = query_node or QUERY_NODE_FACTORY
            self.query = factory(self) if factory else QueryNode(self.datadir.objects)
            self.proxy = Proxy(self.coordinator, self.streaming, self.query)
            self.work = (DATA_NODE_FACTORY(self) if DATA_NODE_FACTORY is not None
                         else LocalWork(self.datadir.objects))
            self._mu = threading.Lock()  # guards the three dicts below
            self._locks: dict[int, threading.Lock] = {}  # collection id -> its task lock
            self._pk_dtypes: dict[int, np.dtype] = {}  # the open collections
            self._pending: dict[int, Sealed] = {}  # handed over, not committed
            self._deleted: dict[int, dict[tuple[int, int, int], int]] = {}  # planner's memo
            metas = [self.coordinator.catalog.resolve(db, name)
                     for db in self.coordinator.catalog.list_databases()
                     for name in self.coordinator.catalog.list_collections(db)]
            self._collect_garbage(metas)
            self.indexing = Indexing(self)
            self.data = DataNode(_Tasks(self), self.config)
            self.builder = IndexBuilder(_IndexTasks(self), self.config.poll_s,
                                        self.config.background)
            for meta in metas:
                self.open_collection(meta)
                self.data.flushed(meta.id)  # look for compaction work left from the last run
            self.data.start()
            self.builder.start()
            self.builder.poke()  # segments flushed or compacted before a crash lack indexes
        except BaseException:
            if self.builder is not None:
                self.builder.stop()
            if self.data is not None:
                self.data.stop()
            self._close_query()
            if self.work is not None:
                self.work.close()
            self.datadir.close()
            if self.wal_nodes is not None:
                self.wal_nodes.close()
            raise

    def _collect_garbage(self, metas: list[Any]) -> None:
        live: dict[str, set[str]] = {}
        for meta in metas:
            for seg in self.coordinator.segments(meta.id):
                live.setdefault(seg.prefix, set())
            for dlog in self.coordinator.delete_logs(meta.id):
                live.setdefault(dlog.prefix, set()).add(dlog.delta.name)
            prefixes = {seg.id: seg.prefix for seg in self.coordinator.segments(meta.id)}
            for ref in self.coordinator.index_files(meta.id):
                if ref.segment_id in prefixes:
                    live[prefixes[ref.segment_id]].add(ref.name)
        collect_garbage(self.datadir.objects, live)

    def open_collection(self, meta: Any) -> None:
        layout = Layout.of(meta.collection_schema())
        logs: dict[str, list[Any]] = {}
        for dlog in self.coordinator.delete_logs(meta.id):  # one scan, not one per segment
            logs.setdefault(dlog.prefix, []).append(dlog.delta)
        for seg in self.coordinator.segments(meta.id):
            self.query.load(meta.id, seg.id, seg.prefix, logs.get(seg.prefix, []))
        self.indexing.declare(meta)
        self.indexing.load(meta.id)
        shard = self.streaming.open(meta.id, layout.vectors, layout.pk_kind,
                                    self.coordinator.next_segment_id(),
                                    self.coordinator.checkpoint(meta.id))
        shard.on_insert = self._on_insert
        with self._mu:
            self._locks.setdefault(meta.id, threading.Lock())
            self._pk_dtypes[meta.id] = np.dtype(np.int64 if layout.pk_kind == "int64" else str)

    def _on_insert(self, shard: Shard) -> None:
        rows, nbytes, _ = shard.growing_stats()
        data = self.data
        if data is not None and (rows >= self.config.seal_rows or nbytes >= self.config.seal_bytes):
            data.poke()

    @contextmanager
    def _task(self, collection_id: int) -> Iterator[Shard | None]:
        """Holds the collection's task lock; yields its shard, or None if it is not open (a
        dropped collection)."""
        with self._mu:
            lock = self._locks.get(collection_id)
        if lock is None:
            yield None
            return
        with lock:
            with self._mu:
                is_open = collection_id in self._pk_dtypes
            yield self.streaming.shard(collection_id) if is_open else None

    def recover_channel(self, channel: str) -> None:
        """Rebuilds the shard of ``channel`` from its log, after its WAL failed (its streaming
        node died): between two tasks of the collection, from the last flush's checkpoint, into
        a new growing segment. A handed-over segment whose flush did not commit is dropped: its
        rows are after the checkpoint, so the replay brings them back."""
        collection_id = self.streaming.collection_of(channel)
        if collection_id is None:
            return
        with self._task(collection_id) as shard:
            if shard is None:
                return  # dropped meanwhile
            self._pending.pop(collection_id, None)
            new = self.streaming.reopen(collection_id, self.coordinator.next_segment_id(),
                                        self.coordinator.checkpoint(collection_id))
        log.warning("recovered channel %s: %d WAL records replayed", channel, new.replayed)

    # ---- flush ------------------------------------------------------------------------------

    def flush(self, meta: Any) -> None:
        """Seals and flushes the collection's growing data (client.flush)."""
        self._flush(meta.id)

    def _flush(self, collection_id: int) -> bool:
        with self._task(collection_id) as shard:
            if shard is None:
                return False
            flushed = False
            while True:
                pending = self._pending.pop(collection_id, None)
                sealed = pending or shard.rotate(self.coordinator.next_segment_id())
                if sealed is None:
                    break
                try:
                    self._write_and_commit(collection_id, shard, sealed)
                except _Uncommitted as e:
                    self._pending[collection_id] = sealed
                    raise e.__cause__ from None  # type: ignore[misc]
                flushed = True
                if pending is None:
                    break  # after a pending one, the rows that came since are flushed too
        if flushed and self.data is not None:
            self.data.flushed(collection_id)
        if flushed and self.builder is not None:
            self.builder.poke()
        return flushed

    def _write_and_commit(self, collection_id: int, shard: Shard, sealed: Sealed) -> None:
        seg_id = sealed.segment.segment_id
        prefix = f"{collection_id}/{seg_id}"
        if self.coordinator.segment(collection_id, seg_id) is not None:
            # An earlier try committed and then reported an error: finish that one.
            dlog = next((d for d in self.coordinator.delete_logs(collection_id)
                         if d.prefix == prefix), None)
        else:
            dlog = self._write_and_commit_new(collection_id, prefix, sealed)
        failpoints.hit("flush.after_commit")
        # Committed. Load before the shard stops searching its copy: a reader may meanwhile list
        # both, and skips the copy (ShardSnapshot.views).
        self.query.load(collection_id, seg_id, prefix, [dlog.delta] if dlog else [])
        through = int(sealed.delete_ts.max()) if sealed.delete_ts.size else None
        shard.sealed(seg_id, deletes_through=through)
        self.datadir.wal(self.streaming.channel(collection_id)).truncate_before(
            sealed.checkpoint)

    def _write_and_commit_new(self, collection_id: int, prefix: str, sealed: Sealed
                              ) -> DeleteLogRef | None:
        store = self.datadir.objects
        seg_id = sealed.segment.segment_id
        try:
            remove_prefix(store, prefix)  # what an earlier, failed try left: never committed
            manifest = write_segment(sealed.segment, sealed.view, store, prefix,
                                     schema_version=1)
            dlog = None
            if sealed.delete_pks.size:
                dlog = DeleteLogRef(prefix, write_delete_log(store, prefix, sealed.delete_pks,
                                                             sealed.delete_ts))
            ref = SegmentRef(seg_id, prefix, manifest.rows, merging.segment_bytes(manifest))
            if failpoints.hit("flush.before_commit"):
                raise StorageError("failpoint flush.before_commit: simulated I/O error")
            self.coordinator.commit_flush(collection_id, ref, dlog, sealed.checkpoint)
        except Exception as e:
            raise _Uncommitted() from e
        return dlog

    # ---- bulk import ------------------------------------------------------------------------

    def commit_import(self, collection_id: int, segments: list[SegmentRef]) -> None:
        """Makes a bulk import's written segments visible, all at once. Raises InvalidArgument
        (nothing committed; the caller removes the files) if the collection was dropped."""
        with self._task(collection_id) as shard:
            if shard is None:
                raise InvalidArgument(f"collection {collection_id} was dropped during the "
                                      "import; nothing was imported")
            self.coordinator.commit_import(collection_id, segments)
            # Committed: a failure from here on is reported, and the next open loads them.
            self.query.load_many(collection_id, [(s.id, s.prefix) for s in segments])
            # A time tick: reads other than Strong read at the shard's newest applied timestamp
            # (or seconds behind now), which only writes move. An empty delete record moves it
            # past the import's timestamp, so every read from now on sees the imported rows.
            with self._mu:
                dtype = self._pk_dtypes[collection_id]
            shard.delete(np.empty(0, dtype))
        if self.data is not None:
            self.data.flushed(collection_id)  # a small last segment may be worth merging
        if self.builder is not None:
            self.builder.poke()  # declared indexes for the new segments

    # ---- compaction -------------------------------------------------------------------------

    def compact(self, meta: Any) -> int:
        """Queues a manual compaction of the collection; returns its job id."""
        job = self.coordinator.next_compaction_id()
        assert self.data is not None
        self.data.submit_compaction(job, meta.id)
        return job

    def compaction_state(self, job_id: int) -> str:
        assert self.data is not None
        return self.data.jobs.state(job_id)

    def _compact(self, collection_id: int, manual: bool) -> int:
        with self._task(collection_id) as shard:
            if shard is None:
                return 0
            loaded = dict(self.query.segments(collection_id))
            dtype = self._pk_dtypes[collection_id]
            del_pk, del_ts = self.query.deletes(collection_id, dtype)
            snapshot = self.coordinator.tso.now()
            groups = merging.plan(self._stats(collection_id, loaded, del_pk, del_ts, snapshot),
                                  self.config, manual=manual)
            done = 0
            for group in groups:
                done += self._merge(collection_id, group, del_pk, del_ts, snapshot)
            return done

    def _stats(self, collection_id: int, loaded: dict[int, Any], del_pk: np.ndarray,
               del_ts: np.ndarray, snapshot: int) -> list[merging.SegmentStats]:
        memo = self._deleted.setdefault(collection_id, {})
        fresh: dict[tuple[int, int, int], int] = {}
        out = []
        for sid, sealed in loaded.items():
            # New delete logs raise the newest delete timestamp; a swap only drops entries that
            # match no segment outside its group. So this key changes whenever a count can.
            key = (sid, int(del_pk.size), int(del_ts.max()) if del_ts.size else 0)
            n = memo.get(key)
            if n is None:
                n = merging.deleted_rows(sealed.pks, sealed.segment.timestamps(), del_pk, del_ts,
                                         snapshot)
            fresh[key] = n
            seg = sealed.segment
            out.append(merging.SegmentStats(sid, seg.rows, merging.segment_bytes(seg.manifest), n))
        self._deleted[collection_id] = fresh
        return out

    def _merge(self, collection_id: int, group: list[int], del_pk: np.ndarray,
               del_ts: np.ndarray, snapshot: int) -> int:
        store = self.datadir.objects
        loaded = dict(self.query.segments(collection_id))
        inputs = [loaded[i] for i in group]
        out_id = self.coordinator.next_segment_id()
        prefix = f"{collection_id}/{out_id}"
        try:
            written = self.work.merge([s.segment for s in inputs], del_pk, del_ts, snapshot,
                                      prefix)
            if written is None:
                return 0  # no row survives: nothing was written
            rows, nbytes = written
            others = [s.segment for sid, s in loaded.items() if sid not in group]
            spk, sts = merging.surviving_deletes([s._own_deletes() for s in inputs], others)
            dlog = None
            if spk.size:
                dlog = DeleteLogRef(prefix, write_delete_log(store, prefix, spk, sts))
            ref = SegmentRef(out_id, prefix, rows, nbytes)
            if failpoints.hit("compact.before_commit"):
                raise StorageError("failpoint compact.before_commit: simulated I/O error")
            self.coordinator.commit_compaction(collection_id, group, ref, dlog)
        except BaseException:
            remove_prefix(store, prefix)  # never committed: nobody reads it
            raise
        self.query.swap(collection_id, group, out_id, prefix, [dlog.delta] if dlog else [])
        if self.builder is not None:
            self.builder.poke()  # the output needs its indexes
        failpoints.hit("compact.before_remove")
        for s in inputs:
            try:
                remove_prefix(store, s.segment.prefix)
            except OSError:  # garbage now; the next open removes it
                log.warning("could not remove compacted segment %s", s.segment.prefix,
                            exc_info=True)
        return 1

    # ---- truncate and drop ------------------------------------------------------------------

    def truncate(self, meta: Any) -> None:
        """Removes every row of the collection, keeping its schema, indexes, partitions, aliases
        and properties. Durable and atomic: one meta-store transaction is the commit point."""
        with self._task(meta.id) as shard:
            if shard is None:
                return
            self._pending.pop(meta.id, None)
            done: list[Position] = []

            def commit(position: Position) -> None:
                self.coordinator.commit_truncate(meta.id, position)
                self.query.clear(meta.id)
                done.append(position)

            failpoints.hit("truncate.before_commit")
            shard.truncate(self.coordinator.next_segment_id(), commit)
            failpoints.hit("truncate.after_commit")
            self._deleted.pop(meta.id, None)
            self.datadir.wal(self.streaming.channel(meta.id)).truncate_before(done[0])
            remove_prefix(self.datadir.objects, str(meta.id))

    def drop_collection_data(self, meta: Any) -> None:
        with self._task(meta.id):
            with self._mu:
                self._pk_dtypes.pop(meta.id, None)
                self._locks.pop(meta.id, None)
            self._pending.pop(meta.id, None)
            self._deleted.pop(meta.id, None)
            self.indexing.forget(meta.id)
            if self.data is not None:
                self.data.jobs.drop_collection(meta.id)
            self.query.release(meta.id)
            self.streaming.drop(meta.id)
            self.coordinator.forget_collection(meta.id)
            remove_prefix(self.datadir.objects, str(meta.id))

    # ---- indexes ----------------------------------------------------------------------------

    def declare_indexes(self, meta: Any, fields: list[str], timeout: float | None = None
                        ) -> None:
        """create_index: records the declarations and returns once ``fields``' indexes are
        built on every sealed segment (as pymilvus's create_index waits); raises if a build
        failed or ``timeout`` passed first."""
        self.indexing.declare(meta)
        assert self.builder is not None

        def done() -> bool:
            return not any(f in fields for _, f in self.indexing.jobs(meta.id))

        if not self.builder.wait_until(done, timeout):
            pending = sorted({f for _, f in self.indexing.jobs(meta.id) if f in fields})
            raise InternalError(f"the index build of {pending} on collection {meta.name} did "
                                "not finish (a build failed, see the log, or the timeout "
                                "passed); searches stay exact on the segments without it and "
                                "the build is retried in the background")

    def drop_index(self, meta: Any, field: str) -> None:
        self.indexing.drop(meta, field)

    def index_progress(self, collection_id: int, field: str) -> tuple[int, int, int]:
        return self.indexing.progress(collection_id, field)

    def growing_rows(self, collection_id: int) -> int:
        with self._mu:
            if collection_id not in self._pk_dtypes:
                return 0
        return self.streaming.shard(collection_id).growing_stats()[0]

    def close(self) -> None:
        if self.builder is not None:
            self.builder.stop()
        if self.data is not None:
            self.data.stop()  # lets a task in progress finish first
        self._close_query()
        self.work.close()
        self.datadir.close()  # closes the WALs: on their streaming nodes too
        if self.wal_nodes is not None:
            self.wal_nodes.close()

    def _close_query(self) -> None:
        # A query node with worker processes stops them.
        close = getattr(getattr(self, "query", None), "close", None)
        if close is not None:
            close()


class _Uncommitted(Exception):
    """A flush failed before its commit (the cause is chained)."""


class _Tasks:
    """The data node's view of the deployment (data_node.worker.Tasks)."""

    def __init__(self, dep: EmbeddedDeployment) -> None:
        self._dep = dep

    def collections(self) -> list[int]:
        with self._dep._mu:
            return sorted(self._dep._pk_dtypes)

    def growing_stats(self, collection_id: int) -> tuple[int, int, float | None] | None:
        with self._dep._mu:
            if collection_id not in self._dep._pk_dtypes:
                return None
        return self._dep.streaming.shard(collection_id).growing_stats()

    def flush(self, collection_id: int) -> bool:
        return self._dep._flush(collection_id)

    def compact(self, collection_id: int, manual: bool) -> int:
        return self._dep._compact(collection_id, manual)


class _IndexTasks:
    """The index builder's view of the deployment (data_node.index_builder.IndexTasks)."""

    def __init__(self, dep: EmbeddedDeployment) -> None:
        self._dep = dep

    def collections(self) -> list[int]:
        with self._dep._mu:
            return sorted(self._dep._pk_dtypes)

    def index_jobs(self, collection_id: int) -> list[tuple[int, str]]:
        return self._dep.indexing.jobs(collection_id)

    def build(self, collection_id: int, job: tuple[int, str], cancel: Any = None) -> None:
        self._dep.indexing.build(collection_id, job, cancel)
