"""The Wal: round trips, positions, rotation, retention, sync policies, group commit, bad input,
I/O failures. Damage and torn tails are in test_wal_damage.py."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from vecstore.common import failpoints
from vecstore.errors import InvalidArgument, StorageError
from vecstore.storage.wal import FileWal, Position, RecordType, SyncPolicy, Wal

# Sizes around the format's boundaries: empty, tiny, one block, several blocks.
SIZES = [0, 1, 7, 24, 32768 - 7 - 24 - 32, 32768 - 7 - 24 - 31, 32768, 100_000, 1_000_000]


@pytest.fixture
def no_failpoints():
    yield
    failpoints.configure("")


def payloads(rng, sizes):
    return [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]


def test_round_trip_positions_and_timestamps(tmp_path, rng):
    data = payloads(rng, SIZES * 2)
    with FileWal(tmp_path / "ch") as wal:
        positions = [wal.append(p, type=RecordType.INSERT if i % 2 else RecordType.DELETE,
                                ts_begin=10 * i, ts_end=10 * i + 5) for i, p in enumerate(data)]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    with FileWal(tmp_path / "ch") as wal:
        entries = list(wal.read())
        assert [e.payload for e in entries] == data
        assert [e.position for e in entries] == positions
        assert [e.ts_begin for e in entries] == [10 * i for i in range(len(data))]
        assert [e.ts_end for e in entries] == [10 * i + 5 for i in range(len(data))]
        assert entries[0].type is RecordType.DELETE and entries[1].type is RecordType.INSERT
        # Reading from any position yields exactly the suffix.
        for i in (0, 3, len(data) - 1):
            assert [e.payload for e in wal.read(positions[i])] == data[i:]


def test_appends_continue_after_reopen(tmp_path, rng):
    first, second = payloads(rng, [500] * 5), payloads(rng, [700] * 5)
    with FileWal(tmp_path) as wal:
        for p in first:
            wal.append(p)
    with FileWal(tmp_path) as wal:
        assert wal.recovery.torn_bytes_dropped == 0
        for p in second:
            wal.append(p)
    with FileWal(tmp_path) as wal:
        assert [e.payload for e in wal.read()] == first + second


def test_rotation_and_truncate_before(tmp_path, rng):
    data = payloads(rng, [20_000] * 30)
    with FileWal(tmp_path, file_size_limit=65536) as wal:
        positions = [wal.append(p) for p in data]
        files = sorted(p.name for p in tmp_path.glob("*.log"))
        assert len(files) >= 8
        assert [e.payload for e in wal.read()] == data
        cut = positions[17]
        deleted = wal.truncate_before(cut)
        assert deleted == cut.seq - 1
        assert [e.payload for e in wal.read(cut)] == data[17:]
        assert [e.payload for e in wal.read()][-13:] == data[17:]
        with pytest.raises(InvalidArgument, match="before the oldest retained WAL file"):
            list(wal.read(positions[0]))
        # The current file is never deleted, whatever position is given.
        wal.truncate_before(Position(10**9, 0))
        assert len(list(tmp_path.glob("*.log"))) == 1
        wal.append(b"after")
    with FileWal(tmp_path, file_size_limit=65536) as wal:
        assert [e.payload for e in wal.read()][-1] == b"after"


@pytest.mark.parametrize("policy", ["always", "batch", "none"])
def test_every_policy_round_trips(tmp_path, rng, policy):
    data = payloads(rng, [3000] * 20)
    with FileWal(tmp_path, sync=policy, batch_interval_ms=1) as wal:
        assert wal.sync_policy is SyncPolicy(policy)
        for p in data:
            wal.append(p)
        wal.sync()
    with FileWal(tmp_path) as wal:
        assert [e.payload for e in wal.read()] == data


def test_concurrent_appenders_group_commit(tmp_path):
    n_threads, per_thread = 8, 40
    results: dict[int, list[Position]] = {}

    def work(t):
        out = []
        for i in range(per_thread):
            out.append(wal.append(f"{t}:{i}".encode() * 50, ts_begin=i))
        results[t] = out

    with FileWal(tmp_path) as wal:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    all_pos = [p for ps in results.values() for p in ps]
    assert len(set(all_pos)) == n_threads * per_thread
    with FileWal(tmp_path) as wal:
        got = {e.position: e.payload for e in wal.read()}
    for t, ps in results.items():
        for i, p in enumerate(ps):
            assert got[p] == f"{t}:{i}".encode() * 50  # acknowledged, readable, in its place


def test_arrow_and_numpy_payloads_and_zstd(tmp_path, rng):
    batch = pa.record_batch({"pk": pa.array(np.arange(1000, dtype=np.int64)),
                             "v": pa.array(rng.standard_normal(1000))})
    vecs = rng.standard_normal((100, 16)).astype(np.float32)
    with FileWal(tmp_path, compression="zstd") as wal:
        wal.append(batch)
        wal.append(pa.Table.from_batches([batch]))
        wal.append(vecs)
        wal.append(b"z" * 100_000)
    with FileWal(tmp_path) as wal:
        e = list(wal.read())
    assert pa.ipc.open_stream(e[0].payload).read_all() == pa.Table.from_batches([batch])
    assert pa.ipc.open_stream(e[1].payload).read_all() == pa.Table.from_batches([batch])
    np.testing.assert_array_equal(np.frombuffer(e[2].payload, np.float32).reshape(100, 16), vecs)
    assert e[3].payload == b"z" * 100_000
    assert (tmp_path / "00000000000000000001.log").stat().st_size < 100_000  # compressed


def test_bad_arguments_change_nothing(tmp_path):
    with pytest.raises(InvalidArgument, match="unknown sync policy"):
        FileWal(tmp_path, sync="sometimes")
    with pytest.raises(InvalidArgument, match="compression"):
        FileWal(tmp_path, compression="lz4")
    with pytest.raises(InvalidArgument, match="on_damage"):
        FileWal(tmp_path, on_damage="ignore")
    with pytest.raises(InvalidArgument, match="file_size_limit"):
        FileWal(tmp_path, file_size_limit=10)
    assert not list(tmp_path.iterdir())  # nothing created by a refused open
    wal = FileWal(tmp_path)
    wal.append(b"ok")
    size = (tmp_path / "00000000000000000001.log").stat().st_size
    with pytest.raises(InvalidArgument, match="unknown record type"):
        wal.append(b"x", type=99)
    with pytest.raises(InvalidArgument, match="ts_end .* is before ts_begin"):
        wal.append(b"x", ts_begin=5, ts_end=4)
    with pytest.raises(InvalidArgument, match="ts_begin must be an int"):
        wal.append(b"x", ts_begin=-1)
    with pytest.raises(InvalidArgument, match="bytes-like"):
        wal.append({"not": "bytes"})
    with pytest.raises(InvalidArgument, match="must be a Position"):
        list(wal.read(from_position=(1, 32)))
    with pytest.raises(InvalidArgument, match="must be a Position"):
        wal.truncate_before(3)
    assert (tmp_path / "00000000000000000001.log").stat().st_size == size
    wal.close()
    wal.close()  # idempotent
    with pytest.raises(InvalidArgument, match="is closed"):
        wal.append(b"late")


@pytest.mark.usefixtures("no_failpoints")
def test_failed_fsync_refuses_further_writes_until_reopened(tmp_path):
    wal = FileWal(tmp_path)
    acked = wal.append(b"durable")
    failpoints.configure("wal.sync=error")
    with pytest.raises(StorageError, match="fsync"):
        wal.append(b"never acknowledged")
    failpoints.configure("")
    with pytest.raises(StorageError, match="refuses writes"):
        wal.append(b"refused")
    wal.close()
    with FileWal(tmp_path) as wal:
        got = [e.payload for e in wal.read()]
        assert got[0] == b"durable" and b"refused" not in got
        assert list(wal.read())[0].position == acked
        wal.append(b"after reopen")
        assert [e.payload for e in wal.read()][-1] == b"after reopen"


@pytest.mark.usefixtures("no_failpoints")
def test_full_disk_refuses_writes_and_keeps_the_log_readable(tmp_path):
    wal = FileWal(tmp_path)
    for i in range(5):
        wal.append(b"row %d" % i)
    failpoints.configure("wal.write=error")
    with pytest.raises(StorageError, match="No space left"):
        wal.append(b"does not fit")
    failpoints.configure("")
    with pytest.raises(StorageError, match="refuses writes"):
        wal.append(b"still refused")
    assert [e.payload for e in wal.read()] == [b"row %d" % i for i in range(5)]
    wal.close()
    with FileWal(tmp_path) as wal:
        assert [e.payload for e in wal.read()] == [b"row %d" % i for i in range(5)]


@pytest.mark.usefixtures("no_failpoints")
def test_injected_python_fsync_failure_reaches_every_waiter(tmp_path):
    wal = FileWal(tmp_path)
    failpoints.configure("wal.before_sync=error")
    errors = []

    def work():
        try:
            wal.append(b"x" * 1000)
        except StorageError as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4  # nobody was acknowledged
    failpoints.configure("")
    wal.close()


def test_file_wal_satisfies_the_protocol(tmp_path):
    with FileWal(tmp_path) as wal:
        assert isinstance(wal, Wal)


def test_end_position_is_a_checkpoint(tmp_path):
    with FileWal(tmp_path, file_size_limit=65536) as wal:
        wal.append(b"a" * 40_000)
        cut = wal.end_position
        wal.append(b"b" * 40_000)  # rotates: the checkpoint is in the older file
        wal.append(b"c")
        assert [e.payload[:1] for e in wal.read(cut)] == [b"b", b"c"]
        assert [e.payload for e in wal.read(wal.end_position)] == []
    with FileWal(tmp_path, file_size_limit=65536) as wal:
        assert list(wal.read(wal.end_position)) == []


def test_waiting_appenders_share_one_fsync(tmp_path):
    # Hold the sync lock so that every appender has written before the leader may fsync: then
    # one fsync must acknowledge all of them (group commit), whatever the thread timing.
    wal = FileWal(tmp_path)
    n = 8
    done: list[Position] = []
    with wal._sync_lock:
        threads = [threading.Thread(target=lambda i=i: done.append(wal.append(b"%d" % i)))
                   for i in range(n)]
        for t in threads:
            t.start()
        while wal.appends < n:  # all eight records are written, none acknowledged
            threading.Event().wait(0.001)
        assert done == []
    for t in threads:
        t.join()
    assert len(done) == n and wal.syncs == 1
    wal.close()


def test_payload_parts_are_stored_as_their_concatenation(tmp_path, rng):
    """A payload given as parts (the insert path passes vector buffers unjoined) reads back as
    one payload, whatever block and fragment boundaries the parts straddle; zstd joins them."""
    for compression in (None, "zstd"):
        wal = FileWal(tmp_path / f"parts-{compression}", compression=compression)
        want = []
        for sizes in ([5], [0, 7, 0], [40_000, 1, 70_000], [32_768 - 31, 3, 100_000, 0, 9]):
            parts = [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes]
            wal.append(parts, ts_begin=len(want))
            want.append(b"".join(p.tobytes() for p in parts))
        wal.close()
        with FileWal(tmp_path / f"parts-{compression}") as again:
            assert [e.payload for e in again.read()] == want
    with pytest.raises(InvalidArgument, match="at least one part"):
        FileWal(tmp_path / "empty").append([])


def test_append_pending_acknowledges_only_on_wait(tmp_path):
    wal = FileWal(tmp_path / "ch")
    syncs = wal.syncs
    pending = [wal.append_pending(b"x" * 100, ts_begin=i) for i in range(3)]
    assert wal.syncs == syncs  # written, not yet made durable
    assert [p.wait() for p in pending] == [p.position for p in pending]
    assert wal.syncs == syncs + 1  # the first wait's fsync covered all three
    wal.close()
