"""DataNode: the background thread that seals, flushes and compacts, and the manual compaction
jobs it runs.

The thread wakes every ``poll_s`` seconds, or at once when poked (a shard crossed a size limit,
a flush committed, ``compact()`` was called), and for each collection: flushes the growing
segment if the seal policy says so, runs the collection's queued manual compaction jobs, and
plans an automatic compaction after new flushes. The work itself is done by the wiring through
the :class:`Tasks` protocol, which serialises it per collection; an error is logged and the task
retried on a later pass (a manual job stays Executing until it has run).

Lifetime: :meth:`DataNode.start` starts a daemon thread (it never keeps the interpreter alive);
:meth:`DataNode.stop` — called by ``close()``, and at interpreter exit for a deployment that was
never closed — lets the task in progress finish, then joins the thread. Without a thread
(``background=False``), :meth:`DataNode.run_once` does one pass and manual jobs run when
submitted.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from typing import Protocol

from vecstore.data_node.seal_policy import DataNodeConfig

log = logging.getLogger(__name__)

EXECUTING = "Executing"
COMPLETED = "Completed"
UNDEFINED = "UndefiedState"  # sic: pymilvus's CompactionState name for an unknown job


class Tasks(Protocol):
    def collections(self) -> list[int]:
        """Ids of the open collections."""
        ...

    def growing_stats(self, collection_id: int) -> tuple[int, int, float | None] | None:
        """(rows, bytes, first-row time) of the growing segment; None if the collection is
        gone."""
        ...

    def flush(self, collection_id: int) -> bool:
        """Seals and flushes the growing segment; False if there was nothing to flush."""
        ...

    def compact(self, collection_id: int, manual: bool) -> int:
        """Plans and runs a compaction; returns how many merges it committed."""
        ...


class CompactionJobs:
    """Manual compaction jobs: id -> state, and the queue of jobs not run yet. Thread-safe."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._state: dict[int, str] = {}
        self._queue: deque[tuple[int, int]] = deque()

    def submit(self, job_id: int, collection_id: int) -> None:
        with self._mu:
            self._state[job_id] = EXECUTING
            self._queue.append((job_id, collection_id))

    def take(self, collection_id: int) -> list[int]:
        with self._mu:
            mine = [j for j, c in self._queue if c == collection_id]
            self._queue = deque((j, c) for j, c in self._queue if c != collection_id)
            return mine

    def requeue(self, job_ids: list[int], collection_id: int) -> None:
        with self._mu:
            self._queue.extend((j, collection_id) for j in job_ids)

    def pending(self) -> set[int]:
        with self._mu:
            return {c for _, c in self._queue}

    def finish(self, job_ids: list[int]) -> None:
        with self._mu:
            for j in job_ids:
                self._state[j] = COMPLETED

    def drop_collection(self, collection_id: int) -> None:
        """Jobs of a dropped collection complete: there is nothing left to compact."""
        self.finish(self.take(collection_id))

    def state(self, job_id: int) -> str:
        with self._mu:
            return self._state.get(job_id, UNDEFINED)


class DataNode:
    def __init__(self, tasks: Tasks, config: DataNodeConfig) -> None:
        self.tasks = tasks
        self.config = config
        self.jobs = CompactionJobs()
        self._cond = threading.Condition()
        self._stop = False
        self._poked = False
        self._dirty: set[int] = set()  # collections with flushes not yet considered for merging
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None or not self.config.background:
            return
        self._thread = threading.Thread(target=self._run, name="vecstore-data-node", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stops the thread after the task in progress; idempotent."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            atexit.unregister(self.stop)
            if thread is not threading.current_thread():
                thread.join()

    def poke(self) -> None:
        """Wakes the thread for a pass now."""
        with self._cond:
            self._poked = True
            self._cond.notify_all()

    def flushed(self, collection_id: int) -> None:
        """A flush committed: consider the collection for an automatic compaction."""
        with self._cond:
            self._dirty.add(collection_id)
            self._poked = True
            self._cond.notify_all()

    def submit_compaction(self, job_id: int, collection_id: int) -> None:
        self.jobs.submit(job_id, collection_id)
        if self._thread is None:
            self._compact_jobs(collection_id)
        else:
            self.poke()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stop and not self._poked:
                    self._cond.wait(self.config.poll_s)
                if self._stop:
                    return
                self._poked = False
            self.run_once()

    def _stopping(self) -> bool:
        with self._cond:
            return self._stop

    def run_once(self, now: float | None = None) -> None:
        """One pass over every collection: seal and flush, manual jobs, automatic compaction.
        ``now``: the time.monotonic() to judge segment ages by (tests pass a later one)."""
        now = time.monotonic() if now is None else now
        for cid in self.tasks.collections():
            if self._stopping():
                return
            try:
                stats = self.tasks.growing_stats(cid)
                if stats is not None and self.config.seal_reason(*stats, now):
                    self.tasks.flush(cid)
            except Exception:  # a failed flush keeps its rows in the WAL; retried next pass
                log.exception("background flush of collection %d failed", cid)
            self._compact_jobs(cid)
            with self._cond:
                dirty = cid in self._dirty
                self._dirty.discard(cid)
            if dirty and self.config.auto_compact and not self._stopping():
                try:
                    self.tasks.compact(cid, manual=False)
                except Exception:
                    log.exception("automatic compaction of collection %d failed", cid)

    def _compact_jobs(self, collection_id: int) -> None:
        jobs = self.jobs.take(collection_id)
        if not jobs:
            return
        try:
            self.tasks.compact(collection_id, manual=True)
        except Exception:
            log.exception("compaction of collection %d failed; retrying on the next pass",
                          collection_id)
            self.jobs.requeue(jobs, collection_id)
            if self._thread is None:
                raise
            return
        self.jobs.finish(jobs)
