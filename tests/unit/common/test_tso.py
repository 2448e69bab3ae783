"""The timestamp oracle: hybrid layout, monotonic under clock steps, bursts and restarts."""

from __future__ import annotations

import threading

import pytest

from vecstore.coordinator.tso import (
    BOUND_KEY,
    LOGICAL_MASK,
    TimestampOracle,
    compose,
    logical,
    physical_ms,
)
from vecstore.errors import InvalidArgument
from vecstore.storage.meta import SqliteMetaStore


class FakeClock:
    def __init__(self, seconds: float) -> None:
        self.t = seconds

    def __call__(self) -> float:
        return self.t


def test_layout():
    ts = compose(1_700_000_000_000, 5)
    assert physical_ms(ts) == 1_700_000_000_000 and logical(ts) == 5
    with pytest.raises(InvalidArgument):
        compose(1, LOGICAL_MASK + 1)


def test_follows_the_clock_and_orders_within_a_millisecond():
    clock = FakeClock(1000.0)
    tso = TimestampOracle(clock=clock)
    a, b = tso.now(), tso.now()
    assert physical_ms(a) == 1_000_000 and b == a + 1
    clock.t = 1000.5
    c = tso.now()
    assert physical_ms(c) == 1_000_500 and logical(c) == 0


def test_clock_stepping_back_never_goes_backwards():
    clock = FakeClock(2000.0)
    tso = TimestampOracle(clock=clock)
    first = tso.now()
    clock.t = 1000.0
    assert tso.now() > first


def test_bursts_borrow_the_next_millisecond():
    clock = FakeClock(3000.0)
    tso = TimestampOracle(clock=clock)
    first = tso.allocate(LOGICAL_MASK)
    nxt = tso.allocate(10)
    assert nxt > first + LOGICAL_MASK - 1
    assert physical_ms(nxt) == physical_ms(first) + 1


def test_concurrent_allocation_is_unique():
    tso = TimestampOracle()
    out: list[int] = []
    lock = threading.Lock()

    def work():
        got = [tso.now() for _ in range(2000)]
        with lock:
            out.extend(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == len(out) == 8000


def test_restart_never_reissues(tmp_path):
    clock = FakeClock(5000.0)
    with SqliteMetaStore(str(tmp_path / "meta.sqlite")) as meta:
        tso = TimestampOracle(meta, window_ms=3000, clock=clock)
        last = max(tso.now() for _ in range(100))
        assert int(meta.get(BOUND_KEY)) >= physical_ms(last)
    clock.t = 4000.0  # the clock even went back across the restart
    with SqliteMetaStore(str(tmp_path / "meta.sqlite")) as meta:
        tso = TimestampOracle(meta, window_ms=3000, clock=clock)
        assert tso.now() > last


def test_bad_arguments():
    with pytest.raises(InvalidArgument):
        TimestampOracle(window_ms=0)
    tso = TimestampOracle()
    for bad in (0, -1, True, 1.5, LOGICAL_MASK + 2):
        with pytest.raises(InvalidArgument):
            tso.allocate(bad)
