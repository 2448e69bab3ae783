"""IndexBuilder: the data node's background thread that builds vector indexes of sealed segments.

Separate from the flush/compaction thread so that a long build (tens of seconds for an HNSW graph
over a large segment) never delays a flush. It wakes when poked (a flush or compaction committed,
an index was declared, the deployment opened) or every ``poll_s`` seconds, asks the wiring for
the jobs of every collection (:class:`IndexTasks`) and runs them one at a time. A failed job is
logged and retried on a later pass. Waiters (``create_index`` returns once its index is built,
as pymilvus's does) block on :meth:`wait_idle`.

Without a thread (``background=False``), :meth:`run_once` does the work inline: the wiring
calls it where the thread would have been poked.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from vecstore import _core
from vecstore.errors import Cancelled

log = logging.getLogger(__name__)


class IndexTasks(Protocol):
    def collections(self) -> list[int]:
        ...

    def index_jobs(self, collection_id: int) -> list[Any]:
        """The builds the collection needs now (segment x field without a current index)."""
        ...

    def build(self, collection_id: int, job: Any, cancel: Any = None) -> None:
        """Builds, writes, commits and swaps in one index; may raise (retried later).
        ``cancel``: a ``_core.CancelFlag`` set when the builder stops; a build that sees it
        raises :class:`vecstore.errors.Cancelled` and commits nothing."""
        ...


class IndexBuilder:
    def __init__(self, tasks: IndexTasks, poll_s: float, background: bool) -> None:
        self.tasks = tasks
        self.poll_s = poll_s
        self.background = background
        self._cond = threading.Condition()
        self._stop = False
        self._poked = False
        self._busy = False
        self._failed: set[tuple[int, Any]] = set()  # jobs that failed this round (not retried
        # until the next poke, so a broken segment does not spin the thread)
        self._thread: threading.Thread | None = None
        # Set by stop(): the build in progress ends early instead of delaying shutdown by up to
        # minutes (an HNSW graph over a large segment). Its segment is built again next open.
        self._cancel = _core.CancelFlag()

    def start(self) -> None:
        if self._thread is not None or not self.background:
            return
        self._thread = threading.Thread(target=self._run, name="vecstore-index-builder",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stops, cancelling the build in progress; idempotent."""
        with self._cond:
            self._stop = True
            self._cancel.set()
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            atexit.unregister(self.stop)
            if thread is not threading.current_thread():
                thread.join()

    def poke(self) -> None:
        with self._cond:
            self._poked = True
            self._failed.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stop and not self._poked:
                    self._cond.wait(self.poll_s)
                if self._stop:
                    return
                self._poked = False
                self._busy = True
            try:
                self.run_once()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def run_once(self) -> int:
        """Builds every job of every collection (jobs appearing meanwhile included); returns how
        many builds ran."""
        done = 0
        while True:
            progressed = False
            for cid in self.tasks.collections():
                for job in self.tasks.index_jobs(cid):
                    with self._cond:
                        if self._stop:
                            return done
                        if (cid, job) in self._failed:
                            continue
                    try:
                        self.tasks.build(cid, job, self._cancel)
                        done += 1
                        progressed = True
                    except Cancelled:
                        return done  # stop() was called
                    except Exception:
                        log.exception("index build %r of collection %d failed; retried on a "
                                      "later pass", job, cid)
                        with self._cond:
                            self._failed.add((cid, job))
            if not progressed:
                return done

    def wait_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Waits until ``done()`` holds (building inline without a thread); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is None:
            self.run_once()
            return done()
        self.poke()
        while not done():
            with self._cond:
                if self._stop:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                idle = not self._busy and not self._poked
                if idle and self._failed:
                    return False  # a build failed: the caller reports the pending rows
                self._cond.wait(0.05 if left is None else min(0.05, left))
        return True
