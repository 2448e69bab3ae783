"""RemoteQueryNodes: the query node of ``vecstore serve --query-nodes N``, whose sealed-segment
vector searches run in N worker processes (:mod:`vecstore.query_node.worker`).

It is a :class:`~vecstore.query_node.node.QueryNode` (the proxy, flush, compaction and index
builds call it exactly as the in-process one) that also assigns each segment it loads to one
worker (round robin) and has the worker open the same committed files, mapped: the page cache
holds one copy whichever process reads them. A search of a sealed segment (``knn_rows``) sends
the query vectors and the caller's allow mask (visibility, deletes and filter, packed to one bit
per row) to the segment's worker and gets (rows, distances) back; the proxy merges them with the
growing data's hits as before. Filters are evaluated, and output fields, ``query`` and ``count``
read, in the server process on its own mapping of the same files.

Faults. A supervisor thread heartbeats every worker; one whose process exited or that missed
``MISSED_HEARTBEATS`` in a row (a hung process: ~15 s by default) is replaced: killed if still
there, a new process started on a new socket, and every segment (and index) assigned to the old
one loaded on it. A search whose
worker fails (UNAVAILABLE, timeout, NOT_FOUND after a restart) triggers that recovery itself and
is retried, up to ``SEARCH_TRIES`` times; after that it runs in the server process on its own
mapping, so a client never sees a worker's death, only a slower answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from vecstore.query_node import rpc
from vecstore.query_node.node import QueryNode
from vecstore.query_node.sealed import SealedSegment
from vecstore.storage.object import ObjectStore
from vecstore.storage.segment import DeltaInfo, Segment
from vecstore.transport.role_process import RoleFailed, RolePool, RoleProcess, gone_codes

log = logging.getLogger(__name__)

SEARCH_TIMEOUT_S = 60.0
SEARCH_TRIES = 3
STATUS_FILE = "query_nodes.json"  # in the data directory: the workers' pids and sockets
WorkerFailed = RoleFailed


class WorkerPool(RolePool):
    """N worker processes, which segment each holds, and the restarts."""

    def __init__(self, data_dir: str, count: int) -> None:
        super().__init__("query-node", "vecstore.query_node.worker", rpc.SERVICE, rpc.METHODS,
                         data_dir, count, STATUS_FILE)
        self._mu = threading.Lock()  # guards the two dicts and the counter
        self._assigned: dict[str, int] = {}  # prefix -> worker index
        self._indexes: dict[str, dict[str, tuple[dict, str]]] = {}  # prefix -> field -> ref, fp
        self._next = 0
        self.start()

    def status(self) -> dict[str, Any]:
        return {"sockets": self._sockets}

    def on_failed(self, w: RoleProcess, generation: int) -> None:
        """Replaces w's process unless someone did since ``generation``; reloads its segments
        and indexes on the new one before any search reaches it."""
        self.replace(w, generation, then=self._reload)

    def _reload(self, w: RoleProcess) -> None:
        with self._mu:
            mine = [p for p, i in self._assigned.items() if i == w.index]
            indexes = {p: dict(self._indexes.get(p, {})) for p in mine}
        assert w.stub is not None
        for prefix in mine:
            self._load_on(w, prefix)
            for field, (ref, fp) in indexes[prefix].items():
                w.stub.call("Attach", {"prefix": prefix, "field": field, "ref": ref,
                                       "fingerprint": fp}, timeout=SEARCH_TIMEOUT_S)
        log.warning("query-node worker %d restarted (pid %s), %d segments reloaded", w.index,
                    w.pid, len(mine))

    # ---- calls ------------------------------------------------------------------------------

    def _load_on(self, w: RoleProcess, prefix: str) -> None:
        assert w.stub is not None
        w.stub.call("Load", {"prefix": prefix}, timeout=SEARCH_TIMEOUT_S)

    def _call(self, prefix: str, method: str, header: dict, arrays: dict | None = None
              ) -> tuple[dict, dict]:
        """One call to the worker holding ``prefix``, recovering and retrying on failure."""
        import grpc

        last: Exception | None = None
        for _ in range(SEARCH_TRIES):
            with self._mu:
                index = self._assigned.get(prefix)
            if index is None:
                raise WorkerFailed(f"segment {prefix} is assigned to no query-node worker")
            w = self.processes[index]
            gen, stub = w.current()
            if stub is None:
                last = WorkerFailed(f"query-node worker {index} is not running")
                continue
            try:
                return stub.call(method, header, arrays, timeout=SEARCH_TIMEOUT_S)
            except ValueError as e:  # the channel was closed by a restart meanwhile
                last = e
                continue
            except grpc.RpcError as e:
                last, code = e, e.code()
                if code == grpc.StatusCode.NOT_FOUND:
                    try:  # the worker restarted without it (a race with load): load it again
                        self._load_on(w, prefix)
                        continue
                    except grpc.RpcError as e2:
                        last, code = e2, e2.code()
                if code not in gone_codes():
                    # It answered, with an error: a restart would not help.
                    raise WorkerFailed(f"query-node worker {index} could not {method} "
                                       f"{prefix}: {code.name} {last.details()}") from last
                try:
                    self.on_failed(w, gen)
                except Exception as e3:
                    last = e3
        raise WorkerFailed(f"query-node call {method} on {prefix} failed "
                           f"{SEARCH_TRIES} times: {last}")

    def assign(self, prefix: str) -> None:
        """Assigns ``prefix`` to a worker and has it load the segment."""
        with self._mu:
            if prefix in self._assigned:
                return
            self._assigned[prefix] = self._next % len(self.processes)
            self._next += 1
        self._call(prefix, "Load", {"prefix": prefix})

    def release(self, prefixes: Iterable[str]) -> None:
        by_worker: dict[int, list[str]] = {}
        with self._mu:
            for p in prefixes:
                i = self._assigned.pop(p, None)
                self._indexes.pop(p, None)
                if i is not None:
                    by_worker.setdefault(i, []).append(p)
        for i, ps in by_worker.items():
            stub = self.processes[i].stub
            if stub is None:
                continue
            try:
                stub.call("Release", {"prefixes": ps}, timeout=10)
            except Exception:  # a restarted worker no longer has them anyway
                log.warning("could not release %s on query-node worker %d", ps, i,
                            exc_info=True)

    def attach(self, prefix: str, field: str, ref: dict | None, fingerprint: str | None
               ) -> None:
        with self._mu:
            if prefix not in self._assigned:
                return
            if ref is None:
                self._indexes.get(prefix, {}).pop(field, None)
            else:
                self._indexes.setdefault(prefix, {})[field] = (ref, fingerprint or "")
        self._call(prefix, "Attach", {"prefix": prefix, "field": field, "ref": ref,
                                      "fingerprint": fingerprint})

    def search(self, prefix: str, rows: int, field: str, queries: np.ndarray, k: int,
               metric: str, packed: np.ndarray | None, params: dict | None
               ) -> tuple[np.ndarray, np.ndarray]:
        arrays = {"queries": queries}
        if packed is not None:
            arrays["packed"] = packed
        _, out = self._call(prefix, "Search", {"prefix": prefix, "field": field, "k": int(k),
                                               "metric": metric, "rows": rows,
                                               "params": params}, arrays)
        return out["rows"], out["dist"]


class RemoteSealed(SealedSegment):
    """A sealed segment whose vector searches run in its query-node worker."""

    pool: WorkerPool
    remote = True  # the proxy fans its searches out alongside other segments'
    remote_indexes: frozenset[str] = frozenset()  # fields whose index the worker has too

    def knn_rows(self, field: str, queries: np.ndarray, k: int, metric: str,
                 allow: np.ndarray | None, threads: int = 0, *, params: dict | None = None,
                 packed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        built = self.indexes.get(field)
        if built is not None and field not in self.remote_indexes:
            # The worker could not open this index: search it here rather than differently.
            return super().knn_rows(field, queries, k, metric, allow, threads, params=params,
                                    packed=packed)
        rows = self.segment.rows
        if allow is not None and packed is None:
            if allow.all():
                allow = None
            else:
                packed = np.packbits(allow, bitorder="little")
        if allow is None:
            packed = None
        try:
            return self.pool.search(self.segment.prefix, rows, field,
                                    np.ascontiguousarray(queries), k, metric, packed,
                                    dict(params) if params else None)
        except WorkerFailed as e:  # one line: a traceback per search would flood the log
            log.warning("searching %s in the server process: %s", self.segment.prefix, e)
            return super().knn_rows(field, queries, k, metric, allow, threads, params=params,
                                    packed=packed)


class RemoteQueryNodes(QueryNode):
    """A QueryNode whose sealed-segment searches run in worker processes (module docstring).
    ``index_refs(collection_id)``: the committed index files (the coordinator's), so a worker
    opens the same file the server attached."""

    def __init__(self, store: ObjectStore, data_dir: str, workers: int,
                 index_refs: Callable[[int], list[Any]] | None = None) -> None:
        super().__init__(store)
        self.pool = WorkerPool(data_dir, workers)
        self._index_refs = index_refs

    def _open(self, segment_id: int, prefix: str, deltas: Iterable[DeltaInfo],
              covers: frozenset[int] = frozenset()) -> SealedSegment:
        sealed = RemoteSealed(Segment.open(self._store, prefix, deltas=list(deltas)), segment_id,
                              covers)
        sealed.pool = self.pool
        sealed._own_deletes()
        try:
            self.pool.assign(sealed.segment.prefix)
        except WorkerFailed:  # searches load it on their worker, or run here
            log.warning("could not load %s on a query-node worker", prefix, exc_info=True)
        return sealed

    def _prefixes(self, collection_id: int, ids: Iterable[int] | None = None) -> list[str]:
        with self._mu:
            segs = self._segments.get(collection_id, {})
            keep = segs.keys() if ids is None else [i for i in ids if i in segs]
            return [segs[i].segment.prefix for i in keep]

    def swap(self, collection_id: int, remove: Iterable[int], segment_id: int, prefix: str,
             deltas: Iterable[DeltaInfo] = ()) -> None:
        remove = list(remove)
        gone = self._prefixes(collection_id, remove)
        super().swap(collection_id, remove, segment_id, prefix, deltas)
        self.pool.release(gone)

    def clear(self, collection_id: int) -> None:
        gone = self._prefixes(collection_id)
        super().clear(collection_id)
        self.pool.release(gone)

    def release(self, collection_id: int) -> None:
        gone = self._prefixes(collection_id)
        super().release(collection_id)
        self.pool.release(gone)

    def attach_index(self, collection_id: int, segment_id: int, field: str,
                     index: Any) -> bool:
        with self._mu:
            sealed = self._segments.get(collection_id, {}).get(segment_id)
        if sealed is None or not isinstance(sealed, RemoteSealed):
            return super().attach_index(collection_id, segment_id, field, index)
        # The server's copy first: until the worker has it too, searches of this field run
        # here (RemoteSealed.knn_rows), so no search sees a mix.
        sealed.remote_indexes = sealed.remote_indexes - {field}
        attached = super().attach_index(collection_id, segment_id, field, index)
        if not attached:
            return False
        prefix = sealed.segment.prefix
        try:
            if index is None:
                self.pool.attach(prefix, field, None, None)
                return True
            ref = self._ref(collection_id, segment_id, field, index.spec.fingerprint)
            if ref is None:
                log.warning("no committed index file for %s field %s: searched in the server",
                            prefix, field)
                return True
            self.pool.attach(prefix, field, ref.to_dict(), index.spec.fingerprint)
            sealed.remote_indexes = sealed.remote_indexes | {field}
        except Exception:
            log.warning("query-node worker could not open the index of %s field %s: searched "
                        "in the server", prefix, field, exc_info=True)
        return True

    def _ref(self, collection_id: int, segment_id: int, field: str, fingerprint: str
             ) -> Any:
        if self._index_refs is None:
            return None
        for ref in self._index_refs(collection_id):
            if ref.segment_id == segment_id and ref.field == field and \
                    ref.fingerprint == fingerprint:
                return ref
        return None

    def detach_indexes(self, collection_id: int, field: str) -> None:
        segs = self.segments(collection_id)
        for _, sealed in segs:
            if isinstance(sealed, RemoteSealed):
                sealed.remote_indexes = sealed.remote_indexes - {field}
        super().detach_indexes(collection_id, field)
        for _, sealed in segs:
            try:
                self.pool.attach(sealed.segment.prefix, field, None, None)
            except Exception:
                log.warning("could not detach %s's index on its worker", sealed.segment.prefix,
                            exc_info=True)

    def close(self) -> None:
        self.pool.close()


def factory(workers: int) -> Callable[[Any], QueryNode]:
    """An EmbeddedDeployment query-node factory: RemoteQueryNodes with ``workers`` processes
    over the deployment's data directory."""
    def build(dep: Any) -> QueryNode:
        return RemoteQueryNodes(dep.datadir.objects, str(dep.datadir.path), workers,
                                dep.coordinator.index_files)

    return build
