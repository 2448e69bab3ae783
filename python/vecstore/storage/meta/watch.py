"""Watches on the SQLite meta store: in-process wake-ups and the watch object.

Every :class:`~vecstore.storage.meta.sqlite.SqliteMetaStore` of this process on one database file
shares a :class:`_Notifier`, so a commit wakes that file's watches at once; commits by other
processes are found by polling (see the store's module docstring).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from vecstore.errors import InvalidArgument
from vecstore.storage.meta.protocol import WatchEvent

if TYPE_CHECKING:
    from vecstore.storage.meta.sqlite import SqliteMetaStore


class _Notifier:
    """Wakes the watches of every store of this process that shares one database file."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()


_notifiers: weakref.WeakValueDictionary[str, _Notifier] = weakref.WeakValueDictionary()
_notifiers_lock = threading.Lock()


def _notifier_for(path: str) -> _Notifier:
    with _notifiers_lock:
        n = _notifiers.get(path)
        if n is None:
            n = _Notifier()
            _notifiers[path] = n
        return n


class SqliteWatch:
    """A watch on a :class:`SqliteMetaStore` (see the module docstring for delivery).

    Events come in revision order, and within one revision in the order of the transaction's ops.
    Consume it from one thread; :meth:`close` may be called from any thread.
    """

    def __init__(self, store: SqliteMetaStore, prefix: str, start_revision: int) -> None:
        self._store = store
        self._prefix = prefix
        self._next_revision = start_revision
        self._next_seq = 0
        self._buffer: deque[WatchEvent] = deque()
        self._closed = False

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def next_revision(self) -> int:
        """The revision the next fetch from the store starts at."""
        return self._next_revision

    @property
    def closed(self) -> bool:
        return self._closed

    def _fetch(self) -> bool:
        rows = self._store._changes_since(self._prefix, self._next_revision, self._next_seq)
        if rows is None:  # the store was closed
            self._closed = True
            return False
        if not rows:
            return False
        self._buffer.extend(event for _, event in rows)
        # Resume right after the last row: a batch may end inside a large transaction.
        self._next_revision, self._next_seq = rows[-1][1].revision, rows[-1][0] + 1
        return True

    def get(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event; ``None`` on timeout or once the watch (or its store) is closed."""
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise InvalidArgument(f"timeout must be a number >= 0 or None, got {timeout!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        notifier = self._store._notifier
        while True:
            if self._closed:
                return None
            if self._buffer:
                return self._buffer.popleft()
            with notifier.cond:
                generation = notifier.generation  # read before fetching: no lost wake-up
            if self._fetch():
                continue
            if self._closed:
                return None
            wait = self._store._poll_interval_s
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait = min(wait, remaining)
            with notifier.cond:
                if notifier.generation == generation and not self._closed:
                    notifier.cond.wait(wait)

    def close(self) -> None:
        """Stop the watch and wake a thread blocked in :meth:`get`. Idempotent."""
        self._closed = True
        self._buffer.clear()
        self._store._notifier.notify()

    def __iter__(self) -> Iterator[WatchEvent]:
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    def __enter__(self) -> SqliteWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SqliteWatch(prefix={self._prefix!r}, next_revision={self._next_revision}, "
            f"closed={self._closed})"
        )
