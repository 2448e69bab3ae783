"""The timestamp oracle (TSO): hybrid timestamps, as Milvus issues them.

A timestamp is ``(physical_ms << 18) | logical``: wall-clock milliseconds since the Unix epoch in
the high 46 bits and an 18-bit counter that orders timestamps within one millisecond. Every write
carries the timestamp the TSO gave it, and a read's snapshot is a timestamp, so ordering and MVCC
visibility are integer comparisons.

Guarantees:
- strictly increasing within a process, whatever the wall clock does (a clock that steps back
  keeps the physical part where it was and advances the logical part; a full logical part borrows
  the next millisecond);
- strictly increasing across restarts when a meta store is given: before handing out a timestamp
  whose physical part exceeds the persisted bound, the TSO commits a new bound ``window_ms`` ahead
  (``tso/upper_bound`` in the meta store, etcd-style "save ahead"), and a restarted TSO starts
  above the persisted bound. A crash therefore never reissues a timestamp.
Thread-safe.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from vecstore.errors import InvalidArgument

LOGICAL_BITS = 18
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
MAX_PHYSICAL_MS = (1 << (64 - LOGICAL_BITS)) - 1
BOUND_KEY = "tso/upper_bound"


def compose(physical_ms: int, logical: int = 0) -> int:
    """The hybrid timestamp of a millisecond and a logical counter."""
    if not 0 <= logical <= LOGICAL_MASK:
        raise InvalidArgument(f"logical part must be in [0, {LOGICAL_MASK}], got {logical}")
    if not 0 <= physical_ms <= MAX_PHYSICAL_MS:
        raise InvalidArgument(f"physical part must be in [0, {MAX_PHYSICAL_MS}], got {physical_ms}")
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


def logical(ts: int) -> int:
    return ts & LOGICAL_MASK


class TimestampOracle:
    """Issues hybrid timestamps. ``meta``: a MetaStore for the persisted bound (None: this process
    only, e.g. tests); ``clock``: seconds since the epoch (time.time by default)."""

    def __init__(self, meta: object | None = None, *, window_ms: int = 3000,
                 clock: Callable[[], float] = time.time) -> None:
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 1:
            raise InvalidArgument(f"window_ms must be a positive int, got {window_ms!r}")
        self._meta = meta
        self._window = window_ms
        self._clock = clock
        self._mu = threading.Lock()
        self._physical = 0
        self._logical = -1
        self._bound = 0
        if meta is not None:
            raw = meta.get(BOUND_KEY)  # type: ignore[attr-defined]
            if raw is not None:
                # Everything up to the bound may have been issued before a crash: start above it.
                self._bound = int(raw)
                self._physical = self._bound + 1
                self._logical = -1

    def allocate(self, count: int = 1) -> int:
        """Reserves ``count`` consecutive timestamps and returns the first. They share one
        physical millisecond, so count is at most 2**18."""
        ok = isinstance(count, int) and not isinstance(count, bool)
        if not ok or not 1 <= count <= LOGICAL_MASK + 1:
            raise InvalidArgument(f"count must be an int in [1, {LOGICAL_MASK + 1}], got {count!r}")
        with self._mu:
            now_ms = int(self._clock() * 1000)
            if now_ms > self._physical:
                self._physical, self._logical = now_ms, -1
            if self._logical + count > LOGICAL_MASK:
                # This millisecond is used up: borrow the next one (the clock catches up).
                self._physical, self._logical = self._physical + 1, -1
            first = self._logical + 1
            self._logical += count
            if self._physical > self._bound:
                self._persist_bound(self._physical + self._window)
            return compose(self._physical, first)

    def now(self) -> int:
        """One fresh timestamp."""
        return self.allocate(1)

    def peek(self) -> int:
        """A timestamp no later than the next one :meth:`now` would issue, without issuing one
        (no lock, nothing persisted): for reads that only need "about now", such as Bounded
        consistency's guarantee, which lags it by seconds anyway."""
        return compose(min(MAX_PHYSICAL_MS, max(self._physical, int(self._clock() * 1000))), 0)

    def _persist_bound(self, bound: int) -> None:
        if self._meta is not None:
            self._meta.put(BOUND_KEY, str(bound).encode())  # type: ignore[attr-defined]
        self._bound = bound
