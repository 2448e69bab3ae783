"""DataNodes: the data-node processes of ``vecstore serve --data-nodes N``
(:mod:`vecstore.data_node.process`), which run index builds and compaction merges, and
:class:`RemoteWork`, the server's handle on them (the same methods as
:class:`~vecstore.data_node.work.LocalWork`).

The server keeps the scheduling (seal policy, compaction plans, which index each segment needs)
and every commit; a data node only reads committed segments and writes new files, so losing one
loses no data. Each call goes to the node running the fewest calls. A node that exits or stops
answering heartbeats is killed and restarted; a call it was running fails with a "gone" status
and is run again on another node (or its replacement), up to ``TRIES`` times; the files the
dead node half wrote are garbage the caller removes (or the next open does). Cancelling (the
index builder stops at close) asks the node to stop the build and raises Cancelled.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from vecstore.data_node.process import METHODS, SERVICE
from vecstore.errors import Cancelled, InternalError
from vecstore.index.spec import IndexSpec
from vecstore.storage.segment import Segment
from vecstore.storage.segment.index_file import IndexFileRef
from vecstore.transport import rpc
from vecstore.transport.role_process import RolePool, gone_codes

log = logging.getLogger(__name__)

TRIES = 3
POLL_S = 0.2  # how often a waiting call looks at its cancel flag
STATUS_FILE = "data_nodes.json"


class DataNodes(RolePool):
    """N data-node processes, restarted when they fail (module docstring)."""

    def __init__(self, data_dir: str, count: int) -> None:
        super().__init__("data-node", "vecstore.data_node.process", SERVICE, METHODS, data_dir,
                         count, STATUS_FILE)
        self._mu = threading.Lock()
        self._running = [0] * count  # calls in flight per node
        self._jobs = itertools.count(1)
        self.retried = 0
        self.start()

    def call(self, method: str, header: dict[str, Any], arrays: dict[str, Any] | None = None,
             cancel: Any = None) -> dict[str, Any]:
        """Runs one call on the least busy node, again elsewhere if its node dies."""
        import grpc

        job = f"{method.lower()}-{next(self._jobs)}"
        last: Exception | None = None
        for attempt in range(TRIES):
            if attempt:
                self.retried += 1
            with self._mu:
                index = min(range(len(self.processes)), key=lambda i: (self._running[i], i))
                self._running[index] += 1
            node = self.processes[index]
            try:
                gen, stub = node.current()
                if stub is None:
                    last = InternalError(f"data node {index} is not running")
                    continue
                try:
                    future = stub.future(method, {**header, "job": job}, arrays)
                    return self._wait(future, stub, job, cancel)
                except ValueError as e:  # its channel was closed by a restart meanwhile
                    last = e
                except grpc.RpcError as e:
                    if e.code() not in gone_codes():
                        details = e.details() or ""
                        if details.startswith("Cancelled"):
                            raise Cancelled(f"data node {index}: {details}") from None
                        raise InternalError(f"data node {index} could not {method}: "
                                            f"{e.code().name} {details}") from None
                    last = e
                    log.warning("data node %d failed during %s (%s): running it again",
                                index, method, e.code().name)
                    try:
                        self.replace(node, gen)
                    except Exception as e2:  # the next try picks another node or fails
                        last = e2
            finally:
                with self._mu:
                    self._running[index] -= 1
        raise InternalError(f"data-node call {method} failed {TRIES} times: {last}")

    def _wait(self, future: Any, stub: rpc.Stub, job: str, cancel: Any) -> dict[str, Any]:
        import grpc

        while True:
            try:
                return rpc.decode(future.result(timeout=POLL_S))[0]
            except grpc.FutureTimeoutError:
                pass
            if cancel is not None and cancel.is_set():
                try:
                    stub.call("Cancel", {"job": job}, timeout=5)
                except (grpc.RpcError, ValueError):
                    pass  # a dead node builds nothing either
                future.cancel()
                raise Cancelled(f"{job} was cancelled")


class RemoteWork:
    """:class:`~vecstore.data_node.work.LocalWork`'s methods, run on data-node processes."""

    def __init__(self, nodes: DataNodes) -> None:
        self.nodes = nodes

    def build_index(self, segment: Segment, segment_id: int, field: str, spec: IndexSpec,
                    build_id: int, cancel: Any = None) -> IndexFileRef:
        out = self.nodes.call("Build", {"prefix": segment.prefix, "segment_id": segment_id,
                                        "field": field, "fingerprint": spec.fingerprint,
                                        "build": build_id}, cancel=cancel)
        return IndexFileRef.from_dict(out["ref"])

    def merge(self, inputs: list[Segment], del_pk: np.ndarray, del_ts: np.ndarray,
              snapshot: int, prefix: str) -> tuple[int, int] | None:
        out = self.nodes.call("Merge", {"inputs": [s.prefix for s in inputs], "prefix": prefix,
                                        "snapshot": int(snapshot)},
                              {"del_pk": np.ascontiguousarray(del_pk),
                               "del_ts": np.ascontiguousarray(del_ts, dtype=np.uint64)})
        return (int(out["rows"]), int(out["bytes"])) if out["rows"] else None

    def close(self) -> None:
        self.nodes.close()


def factory(count: int) -> Callable[[Any], RemoteWork]:
    """An EmbeddedDeployment data-work factory: ``count`` data-node processes."""
    def build(dep: Any) -> RemoteWork:
        return RemoteWork(DataNodes(str(dep.datadir.path), count))

    return build
