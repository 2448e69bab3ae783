"""Checksum verification of segment files: each file once, by whichever thread needs it first.

A :class:`FileCheck` compares the CRC32C of one file's bytes (a mapping or an in-memory copy)
with the value its manifest (or DeltaInfo) promises. States: ``pending`` -> ``running`` ->
``ok`` | ``failed`` (| ``cancelled`` when the segment was closed mid-check). Exactly one thread
runs a check: a background worker (:func:`submit`) or an accessor calling :meth:`FileCheck.ensure`
that finds it still pending, which runs it itself instead of queueing behind other segments. An
accessor that finds it running waits for it. :meth:`FileCheck.ensure` raises the
:class:`~vecstore.errors.CorruptionError` of a failed check every time it is called (never only
once), so no caller gets data from a file that failed, and none gets it before the check passed.

The background pool is process-wide: ``WORKERS`` daemon threads fed by a queue, so opening many
segments does not start many threads. CRC32C (``vecstore._core.crc32c``) releases the GIL and runs
at memory speed (about 6.5 GB/s on one core here, the same over a fresh mapping as over a heap
array, since the kernel maps page-cache pages around each fault), so checks run in parallel with
Python work; they proceed in ``CHUNK_BYTES`` pieces so that closing a segment stops its check
within one piece. At interpreter exit the workers are stopped (within one piece) before Python
finalises, because a thread killed inside the native CRC would abort the process.

Fork: a check left ``running`` by a thread of the parent process is re-run by the child when it
needs it (the parent's thread does not exist there).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Iterable

from vecstore import _core
from vecstore.errors import CorruptionError, InvalidArgument

logger = logging.getLogger(__name__)

CHUNK_BYTES = 16 << 20
WORKERS = 2

_PENDING, _RUNNING, _OK, _FAILED, _CANCELLED = "pending", "running", "ok", "failed", "cancelled"


class FileCheck:
    """Verification of one file: ``buffer`` (any contiguous bytes-like, not copied) against the
    expected CRC32C. ``key`` names the file in errors; ``cancel`` stops the check when set."""

    __slots__ = (
        "key",
        "_buffer",
        "_expected",
        "_cancel",
        "_lock",
        "_done",
        "_state",
        "_actual",
        "_pid",
        "queued",
    )

    def __init__(self, key: str, buffer: object, expected_crc: int, cancel: threading.Event):
        self.key = key
        self._buffer = buffer
        self._expected = expected_crc
        self._cancel = cancel
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state = _PENDING
        self._actual: int | None = None
        self._pid = 0
        self.queued = False  # handed to the background workers

    @property
    def state(self) -> str:
        return self._state

    def _claim(self) -> bool:
        with self._lock:
            if self._state == _RUNNING and self._pid != os.getpid():
                self._state = _PENDING  # claimed by a thread of the parent before a fork
            if self._state != _PENDING:
                return False
            self._state, self._pid = _RUNNING, os.getpid()
            self._done.clear()
            return True

    def _run(self, log_failure: bool = False) -> None:
        # An exception (MemoryError, KeyboardInterrupt) leaves the check pending for a retry.
        state, crc = _PENDING, None
        try:
            with memoryview(self._buffer) as raw, raw.cast("B") as view:  # type: ignore[arg-type]
                crc = 0
                for start in range(0, len(view), CHUNK_BYTES):
                    if self._cancel.is_set() or _shutting_down.is_set():
                        state = _CANCELLED
                        break
                    crc = _core.crc32c(view[start : start + CHUNK_BYTES], crc)
                else:
                    state = _OK if crc == self._expected else _FAILED
        finally:
            with self._lock:
                self._state, self._actual = state, crc
                if state in (_OK, _CANCELLED):
                    self._buffer = None  # the check no longer keeps the mapping alive
            if log_failure and state == _FAILED:
                # Logged before waiters wake: whoever sees the failure can also find the report.
                logger.error("%s", self.error())
            self._done.set()

    def discard(self) -> None:
        """Drops the buffer of a check that will not run (its segment was closed)."""
        with self._lock:
            if self._state == _PENDING:
                self._state, self._buffer = _CANCELLED, None
                self._done.set()

    def run_in_background(self) -> None:
        if self._claim():
            self._run(log_failure=True)  # a failure is also raised to every accessor of the file

    def wait(self, timeout: float | None) -> bool:
        """Waits (without running the check) until it finished; False on timeout or if pending."""
        if self._state == _PENDING and not self.queued:
            return False
        return self._done.wait(timeout) and self._state not in (_PENDING, _RUNNING)

    def ensure(self) -> None:
        """Returns once the file is verified; CorruptionError if it failed its checksum."""
        while self._state != _OK:
            if self._claim():
                self._run()
            else:
                self._done.wait()
            if self._state == _FAILED:
                raise self.error()
            if self._state == _CANCELLED or self._cancel.is_set():
                raise InvalidArgument(f"segment file {self.key}: the segment is closed")

    def error(self) -> CorruptionError:
        err = CorruptionError(
            f"segment file {self.key} is damaged: its checksum is crc32c {self._actual:08x} but "
            f"the manifest recorded {self._expected:08x}; reload the segment from another "
            "replica or rebuild it"
        )
        err.key = self.key  # type: ignore[attr-defined]
        err.expected_crc32c = self._expected  # type: ignore[attr-defined]
        err.actual_crc32c = self._actual  # type: ignore[attr-defined]
        return err


_queue: queue.SimpleQueue = queue.SimpleQueue()
_workers: list[threading.Thread] = []
_workers_lock = threading.Lock()
_shutting_down = threading.Event()


def _work() -> None:
    while True:
        checks = _queue.get()
        if checks is None:
            return
        for check in checks:
            if _shutting_down.is_set():
                break
            try:
                check.run_in_background()
            except Exception:  # the accessor that needs the file re-runs the check and raises
                logger.exception("background verification of %s failed", check.key)
        del checks  # drop the buffers before blocking on the queue


def submit(checks: Iterable[FileCheck]) -> None:
    """Queues ``checks`` for the background workers (started on first use). During interpreter
    shutdown nothing is queued: the checks stay pending and run when their files are used."""
    batch = list(checks)
    with _workers_lock:
        if _shutting_down.is_set():
            return
        for check in batch:
            check.queued = True
        for i in range(len(_workers), WORKERS):
            t = threading.Thread(target=_work, name=f"vecstore-segment-verify-{i}", daemon=True)
            t.start()
            _workers.append(t)
        _queue.put(batch)


def _stop_workers() -> None:
    # Interpreter exit: a daemon thread still inside the native CRC when Python finalises would be
    # killed while unwinding through C++ frames (std::terminate, SIGABRT). Stop the workers first:
    # each leaves within one CHUNK_BYTES piece (a few milliseconds).
    with _workers_lock:
        _shutting_down.set()
        workers = list(_workers)
    for _ in workers:
        _queue.put(None)
    for t in workers:
        t.join(timeout=30)


def _reset_after_fork() -> None:
    global _queue, _workers_lock
    _queue = queue.SimpleQueue()
    _workers.clear()
    _workers_lock = threading.Lock()


atexit.register(_stop_workers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
