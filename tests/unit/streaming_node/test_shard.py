"""Shard: WAL-first writes, replay after reopen (and after a torn tail), MVCC snapshots."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from vecstore.common.mvcc import visible
from vecstore.coordinator.tso import TimestampOracle
from vecstore.errors import InvalidArgument
from vecstore.storage.wal import FileWal
from vecstore.streaming_node.growing import VectorSpec
from vecstore.streaming_node.shard import Shard

SPECS = {"v": VectorSpec("float32", 8), "b": VectorSpec("binary", 16)}


def batch(rng, start, n):
    pk = np.arange(start, start + n, dtype=np.int64)
    vecs = {"v": rng.standard_normal((n, 8)).astype(np.float32),
            "b": rng.integers(0, 256, (n, 2), dtype=np.uint8)}
    titles = pa.array([f"t{i}" for i in range(start, start + n)])
    return pk, vecs, pa.record_batch({"title": titles})


def test_writes_survive_reopen_with_identical_data(tmp_path, rng):
    tso = TimestampOracle()
    wal = FileWal(tmp_path / "ch")
    shard = Shard(wal, tso, SPECS)
    batches = [batch(rng, i * 10, 10) for i in range(5)]
    stamps = [shard.insert(*b) for b in batches]
    del_ts = shard.delete(np.array([3, 14, 999], np.int64))
    assert stamps == sorted(stamps) and del_ts > stamps[-1]
    before = shard.snapshot()
    wal.close()

    reopened = Shard(FileWal(tmp_path / "ch"), tso, SPECS)
    assert reopened.replayed == 6
    after = reopened.snapshot()
    assert before.snapshot == del_ts and after.snapshot > del_ts  # reads start at a fresh ts
    for name in ("v", "b"):
        np.testing.assert_array_equal(after.growing.vectors[name], before.growing.vectors[name])
    np.testing.assert_array_equal(after.growing.pks, before.growing.pks)
    np.testing.assert_array_equal(after.growing.timestamps, before.growing.timestamps)
    assert after.growing.scalars.equals(before.growing.scalars)
    np.testing.assert_array_equal(after.delete_pks, [3, 14, 999])


def test_snapshots_see_exactly_what_was_applied_before_them(tmp_path, rng):
    shard = Shard(FileWal(tmp_path / "ch"), TimestampOracle(), SPECS)
    t1 = shard.insert(*batch(rng, 0, 5))
    t2 = shard.delete(np.array([1], np.int64))
    t3 = shard.insert(*batch(rng, 5, 5))
    for snap, want in [(t1 - 1, []), (t1, [0, 1, 2, 3, 4]), (t2, [0, 2, 3, 4]),
                       (t3, [0, 2, 3, 4, 5, 6, 7, 8, 9])]:
        s = shard.snapshot(snap)
        mask = visible(s.growing.pks, s.growing.timestamps, s.delete_pks, s.delete_ts, snap)
        assert s.growing.pks[mask].tolist() == want


def test_a_bad_batch_never_reaches_the_wal(tmp_path, rng):
    wal = FileWal(tmp_path / "ch")
    shard = Shard(wal, TimestampOracle(), SPECS)
    pk, vecs, sc = batch(rng, 0, 4)
    with pytest.raises(InvalidArgument):
        shard.insert(pk, {"v": vecs["v"]}, sc)
    with pytest.raises(InvalidArgument):
        shard.insert(pk[:0], vecs, sc)
    shard.insert(pk, vecs, sc)
    with pytest.raises(InvalidArgument, match="scalar columns differ"):
        shard.insert(pk, vecs, pa.record_batch({"other": pa.array([1, 2, 3, 4])}))
    with pytest.raises(InvalidArgument, match="scalar columns differ"):
        shard.insert(pk, vecs, None)
    assert len(list(wal.read())) == 1
    assert shard.snapshot().growing.rows == 4


def test_string_primary_keys(tmp_path, rng):
    wal = FileWal(tmp_path / "ch")
    shard = Shard(wal, TimestampOracle(), {"v": VectorSpec("float32", 4)}, pk_kind="string")
    shard.insert(np.array(["a", "b", "c"]), {"v": np.ones((3, 4), np.float32)})
    shard.delete(np.array(["b"]))
    wal.close()
    s = Shard(FileWal(tmp_path / "ch"), TimestampOracle(), {"v": VectorSpec("float32", 4)},
              pk_kind="string").snapshot()
    mask = visible(s.growing.pks, s.growing.timestamps, s.delete_pks, s.delete_ts, s.snapshot)
    assert s.growing.pks[mask].tolist() == ["a", "c"]


@pytest.mark.parametrize("rows", [10, 20_000])  # below and above the overlap threshold
def test_an_insert_whose_fsync_fails_is_never_visible(tmp_path, rng, rows):
    """Large inserts stage their rows while the WAL append runs in another thread; a failed
    fsync must leave nothing visible. After reopening, the unacknowledged record may replay (it
    reached the file) but only whole, and later inserts land intact."""
    from vecstore.common import failpoints
    from vecstore.errors import StorageError

    tso = TimestampOracle()
    wal = FileWal(tmp_path / "ch")
    shard = Shard(wal, tso, SPECS)
    shard.insert(*batch(rng, 0, 5))
    failpoints.configure("wal.sync=error")
    try:
        with pytest.raises(StorageError):
            shard.insert(*batch(rng, 100, rows))
    finally:
        failpoints.configure("")
    snap = shard.snapshot()
    assert snap.growing.rows == 5 and snap.growing.vectors["v"].shape == (5, 8)
    wal.close()
    reopened = Shard(FileWal(tmp_path / "ch"), tso, SPECS)
    replayed = np.isin(np.arange(100, 100 + rows), reopened.snapshot().growing.pks)
    assert replayed.all() or not replayed.any()
    pk, vecs, titles = batch(rng, 500_000, rows)
    reopened.insert(pk, vecs, titles)
    view = reopened.snapshot().growing
    np.testing.assert_array_equal(view.pks[-rows:], pk)
    np.testing.assert_array_equal(view.vectors["v"][-rows:], vecs["v"])


def test_legacy_insert_records_still_replay(tmp_path, rng):
    """WALs written before the split payload layout (one Arrow IPC stream with the vectors as
    fixed-size binary columns) replay unchanged."""
    from vecstore.streaming_node.records import (
        PK,
        VEC_PREFIX,
        decode_insert,
        encode_insert,
        join_parts,
    )

    pk, vecs, titles = batch(rng, 0, 6)
    cols = {PK: pa.array(pk)}
    for name, arr in vecs.items():
        cols[VEC_PREFIX + name] = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(arr.shape[1] * arr.itemsize), len(arr), [None, pa.py_buffer(arr)])
    cols["title"] = titles.column(0)
    sink = pa.BufferOutputStream()
    legacy = pa.record_batch(cols)
    with pa.ipc.new_stream(sink, legacy.schema) as w:
        w.write_batch(legacy)
    for payload in (sink.getvalue().to_pybytes(), join_parts(encode_insert(pk, vecs, titles))):
        got_pk, got_vecs, scalars, upsert, replaces = decode_insert(payload, SPECS)
        np.testing.assert_array_equal(got_pk, pk)
        for name in SPECS:
            np.testing.assert_array_equal(got_vecs[name], vecs[name])
        assert scalars.column(0).equals(titles.column(0)) and not upsert and replaces is None
    wal = FileWal(tmp_path / "ch")
    wal.append(sink.getvalue().to_pybytes(), ts_begin=5, ts_end=5)
    wal.close()
    replayed = Shard(FileWal(tmp_path / "ch"), TimestampOracle(), SPECS).snapshot().growing
    np.testing.assert_array_equal(replayed.vectors["v"], vecs["v"])


def test_damaged_split_payload_is_corruption(rng):
    from vecstore.errors import CorruptionError
    from vecstore.streaming_node.records import decode_insert, encode_insert, join_parts

    pk, vecs, titles = batch(rng, 0, 4)
    payload = join_parts(encode_insert(pk, vecs, titles))
    for bad in (payload[:-1], payload + b"\0", payload[:6]):
        with pytest.raises(CorruptionError):
            decode_insert(bad, SPECS)


def test_concurrent_writers_publish_in_timestamp_order(tmp_path, rng):
    """Writers from several threads share fsyncs but publish in WAL/timestamp order: every
    snapshot a reader takes meanwhile is a complete prefix (each visible row's batch whole and
    every earlier batch visible), and a reopen replays exactly what was published."""
    import threading

    tso = TimestampOracle()
    wal = FileWal(tmp_path / "ch")
    shard = Shard(wal, tso, SPECS)
    n_threads, per_thread, rows = 4, 12, 50
    done = threading.Event()
    errors = []

    def writer(t):
        r = np.random.default_rng(t)
        try:
            for i in range(per_thread):
                base = (t * per_thread + i) * rows
                shard.insert(*batch(r, base, rows))
                if i % 5 == 4:
                    shard.delete(np.array([base], np.int64))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader():
        while not done.is_set():
            s = shard.snapshot()
            ts = s.growing.timestamps
            assert np.all(np.diff(ts.astype(np.int64)) >= 0)  # published in ts order
            assert s.growing.rows % rows == 0  # whole batches only
            assert s.delete_ts.size == 0 or s.delete_ts.max() <= s.snapshot
            assert ts.size == 0 or ts.max() <= s.snapshot

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    check = threading.Thread(target=reader)
    check.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    check.join()
    assert not errors
    assert wal.syncs <= wal.appends
    before = shard.snapshot()
    assert before.growing.rows == n_threads * per_thread * rows
    wal.close()
    after = Shard(FileWal(tmp_path / "ch"), tso, SPECS).snapshot()
    np.testing.assert_array_equal(after.growing.pks, before.growing.pks)
    np.testing.assert_array_equal(after.growing.vectors["v"], before.growing.vectors["v"])
    np.testing.assert_array_equal(np.sort(after.delete_pks), np.sort(before.delete_pks))


def test_rotation_during_concurrent_writes_loses_and_repeats_nothing(tmp_path, rng):
    """A rotation waits for in-flight writes: each row lands in exactly one segment, and the WAL
    after a sealed segment's checkpoint holds exactly the rows of the segments after it."""
    import threading

    tso = TimestampOracle()
    wal = FileWal(tmp_path / "ch")
    shard = Shard(wal, tso, SPECS)
    sealed = []

    def writer(t):
        r = np.random.default_rng(t)
        for i in range(15):
            shard.insert(*batch(r, (t * 15 + i) * 20, 20))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    seg = 2
    while any(t.is_alive() for t in threads):
        got = shard.rotate(seg)
        if got is not None:
            sealed.append(got)
            seg += 1
    for t in threads:
        t.join()
    pks = [s.view.pks for s in sealed] + [shard.snapshot().growing.pks]
    every = np.concatenate(pks)
    assert np.array_equal(np.sort(every), np.arange(3 * 15 * 20))
    if sealed:
        wal.close()
        tail = Shard(FileWal(tmp_path / "ch"), tso, SPECS, checkpoint=sealed[-1].checkpoint)
        np.testing.assert_array_equal(tail.snapshot().growing.pks, pks[-1])


def test_a_batch_bigger_than_a_record_is_split_and_replays_whole(tmp_path, rng, monkeypatch):
    """Batches over Shard.RECORD_BYTES become several records of consecutive rows: the rows,
    their order and an upsert's replacements are the same as one record's, after reopen too."""
    monkeypatch.setattr(Shard, "RECORD_BYTES", 4096)
    tso = TimestampOracle()
    wal = FileWal(tmp_path / "ch")
    shard = Shard(wal, tso, SPECS)
    pk, vecs, titles = batch(rng, 0, 500)
    shard.insert(pk, vecs, titles)
    assert wal.appends > 5
    pk2, vecs2, titles2 = batch(rng, 250, 500)  # half replaces rows 250..499
    shard.insert(pk2, vecs2, titles2, upsert=True)
    before = shard.snapshot()
    mask = visible(before.growing.pks, before.growing.timestamps, before.delete_pks,
                   before.delete_ts, before.snapshot)
    assert sorted(before.growing.pks[mask].tolist()) == list(range(750))
    wal.close()
    after = Shard(FileWal(tmp_path / "ch"), tso, SPECS).snapshot()
    np.testing.assert_array_equal(after.growing.pks, before.growing.pks)
    np.testing.assert_array_equal(after.growing.vectors["v"], before.growing.vectors["v"])
    assert after.growing.scalars.equals(before.growing.scalars)


def test_a_later_record_reported_durable_after_an_earlier_failed_one_is_not_acknowledged(
        tmp_path, rng):
    """A log written by another process (a streaming node) can lose the reply of one append
    and deliver the next one's. The shard must then publish neither: the failed write dropped
    every staged row, so publishing the later one would expose the failed rows in its place."""
    import threading

    from vecstore.errors import StorageError

    class Pending:
        def __init__(self, inner, gate, fail):
            self.inner, self.gate, self.fail = inner, gate, fail

        def wait(self):
            self.gate.wait(10)
            if self.fail:
                raise StorageError("simulated: the reply was lost")
            return self.inner.wait()

    class SplitLog:
        """A FileWal whose first pending append (after ``arm``) fails, the others succeed."""

        def __init__(self, wal):
            self.wal, self.armed, self.gates = wal, False, []

        def append_pending(self, payload, **kw):
            gate = threading.Event()
            if self.armed:  # the test releases these replies, the first one as a failure
                self.gates.append(gate)
            else:
                gate.set()
            fail = self.armed and len(self.gates) == 1
            return Pending(self.wal.append_pending(payload, **kw), gate, fail)

        def __getattr__(self, name):
            return getattr(self.wal, name)

    log = SplitLog(FileWal(tmp_path / "ch"))
    shard = Shard(log, TimestampOracle(), SPECS)
    first = batch(rng, 0, 5)
    errors: dict[int, BaseException] = {}

    def write(i, start):
        try:
            shard.insert(*batch(rng, start, 3))
        except BaseException as e:  # noqa: BLE001
            errors[i] = e

    shard.insert(*first)  # acknowledged
    log.armed = True
    a = threading.Thread(target=write, args=(0, 100))
    a.start()
    while len(log.gates) < 1:
        pass
    b = threading.Thread(target=write, args=(1, 200))
    b.start()
    while len(log.gates) < 2:
        pass
    log.gates[1].set()  # the later record's reply first: durable
    log.gates[0].set()  # then the earlier one's failure
    a.join()
    b.join()
    assert isinstance(errors.get(0), StorageError) and isinstance(errors.get(1), StorageError)
    view = shard.snapshot().growing
    np.testing.assert_array_equal(view.pks, first[0])  # neither batch is visible
    np.testing.assert_array_equal(view.vectors["v"], first[1]["v"])
