"""SqliteMetaStore: revisions, etcd-style transactions, watches, persistence and errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import vecstore
from vecstore.errors import CorruptionError, InvalidArgument, NotFoundError, VecstoreError
from vecstore.storage.meta import (
    EVENT_DELETE,
    EVENT_PUT,
    Compacted,
    Compare,
    Delete,
    DeletePrefix,
    DeleteResponse,
    Get,
    GetResponse,
    MetaStore,
    Put,
    PutResponse,
    SqliteMetaStore,
    WatchEvent,
)

SEED = int(os.environ.get("VECSTORE_SEED", "20261126"))
PYTHON_DIR = str(Path(vecstore.__file__).resolve().parents[1])


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "meta.sqlite"


@pytest.fixture
def store(db):
    s = SqliteMetaStore(db)
    yield s
    s.close()


def puts(*pairs):
    return [Put(k, v) for k, v in pairs]


# -- basics ---------------------------------------------------------------------------------


def test_round_trip_and_revisions(store):
    assert isinstance(store, MetaStore)
    assert store.revision == 0
    assert store.get("a") is None and store.get_kv("a") is None

    assert store.put("a", b"1") == 1
    assert store.put("b", bytearray(b"2")) == 2
    assert store.put("a", memoryview(b"3")) == 3
    assert store.get("a") == b"3" and isinstance(store.get("b"), bytes)
    kv = store.get_kv("a")
    assert (kv.create_revision, kv.mod_revision, kv.version) == (1, 3, 2)

    assert store.delete("a") is True
    assert store.revision == 4
    assert store.delete("a") is False  # nothing changed: the revision stays
    assert store.revision == 4
    assert store.put("a", b"") == 5  # empty values are values
    kv = store.get_kv("a")
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"", 5, 5, 1)


def test_reopen_after_close_persists_everything(db):
    with SqliteMetaStore(db) as s:
        s.put("x/1", b"one")
        s.txn([], puts(("x/2", b"two"), ("y", b"why")))
        s.delete("y")
        before = s.scan_with_revision()
    assert before[1] == 3
    with SqliteMetaStore(db) as s:
        assert s.scan_with_revision() == before
        assert s.put("x/3", b"three") == 4  # the revision continues, never restarts


def test_sqlite_settings_are_durable(store):
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_memory_store(tmp_path):
    with SqliteMetaStore(":memory:") as s:
        assert s.put("k", b"v") == 1 and s.get("k") == b"v"
        assert s.path == ":memory:"
    assert os.listdir(tmp_path) == []


# -- scans ----------------------------------------------------------------------------------


def test_scan_sorted_and_prefix_is_literal(store):
    keys = ["a%b", "a_b", "aXb", "a%", "ab", "a", "b", "a\\b", "a[b", "é", "z", "\U0001f600", "A"]
    for i, k in enumerate(keys):
        store.put(k, str(i).encode())
    everything = store.scan("")
    assert [k for k, _ in everything] == sorted(keys)  # str order == UTF-8 byte order
    assert store.scan() == everything
    # '%' and '_' are ordinary characters, not LIKE wildcards.
    assert [k for k, _ in store.scan("a%")] == ["a%", "a%b"]
    assert [k for k, _ in store.scan("a_")] == ["a_b"]
    assert [k for k, _ in store.scan("a\\")] == ["a\\b"]
    assert [k for k, _ in store.scan("a[")] == ["a[b"]
    assert [k for k, _ in store.scan("a")] == sorted(k for k in keys if k.startswith("a"))
    assert store.scan("ab") == [("ab", b"4")]  # a prefix that is a whole key matches it
    assert store.scan("abc") == [] and store.scan("zz") == []
    assert store.scan("\U0001f600") == [("\U0001f600", b"11")]


def test_scan_prefix_ending_in_the_largest_code_point(store):
    top = "\U0010ffff"
    for k in ["a" + top, "a" + top + "x", "a" + top + top, "b", "a\U0010fffe"]:
        store.put(k, b"")
    assert [k for k, _ in store.scan("a" + top)] == ["a" + top, "a" + top + "x", "a" + top + top]
    assert [k for k, _ in store.scan(top)] == []


def test_scan_with_revision_and_kv_fields(store):
    store.put("p/1", b"a")
    store.put("p/2", b"b")
    store.put("p/1", b"c")
    kvs, revision = store.scan_with_revision("p/")
    assert revision == 3
    assert [(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version) for kv in kvs] == [
        ("p/1", b"c", 1, 3, 2),
        ("p/2", b"b", 2, 2, 1),
    ]


# -- transactions ---------------------------------------------------------------------------


def test_txn_branches_compares_and_responses(store):
    store.put("k", b"v1")
    r = store.txn(
        [Compare.value_equals("k", b"v1"), Compare.absent("new"), Compare.exists("k")],
        [Put("new", b"n"), Delete("k"), Get("new"), Get("k"), Delete("missing")],
        [Put("failed", b"x")],
    )
    assert r.succeeded and r.revision == 2
    assert r.responses[0] == PutResponse(2)
    assert r.responses[1] == DeleteResponse(1)
    assert isinstance(r.responses[2], GetResponse) and r.responses[2].kv.value == b"n"
    assert r.responses[3] == GetResponse(None)  # reads see the branch's earlier writes
    assert r.responses[4] == DeleteResponse(0)
    assert store.get("failed") is None

    r = store.txn([Compare.value_equals("k", b"v1")], [Put("x", b"")], [Put("failed", b"x")])
    assert not r.succeeded and r.revision == 3 and r.responses == (PutResponse(3),)
    assert store.get("x") is None and store.get("failed") == b"x"

    # A transaction that changes nothing leaves the revision alone.
    r = store.txn([Compare.exists("nope")], [Put("y", b"")], [Get("new")])
    assert not r.succeeded and r.revision == 3 and store.revision == 3


def test_txn_compare_targets(store):
    store.put("k", b"b")
    store.put("k", b"b")  # version 2, mod_revision 2, create_revision 1
    cases = [
        (Compare("k", "value", "<", b"c"), True),
        (Compare("k", "value", ">", b"c"), False),
        (Compare("k", "value", "!=", b"b"), False),
        (Compare("k", "version", "==", 2), True),
        (Compare("k", "create_revision", "==", 1), True),
        (Compare.mod_revision_equals("k", 2), True),
        (Compare.mod_revision_equals("k", 1), False),
        (Compare("k", "mod_revision", "<", 3), True),
        # An absent key: revisions and version are 0, and every value comparison is false.
        (Compare.mod_revision_equals("gone", 0), True),
        (Compare("gone", "value", "!=", b"x"), False),
        (Compare.value_equals("gone", b""), False),
        (Compare.absent("gone"), True),
        (Compare.exists("gone"), False),
    ]
    for compare, expected in cases:
        assert store.txn([compare], []).succeeded is expected, compare


def test_delete_prefix(store):
    store.txn([], puts(("d/1", b""), ("d/2", b""), ("d", b""), ("e/1", b"")))
    r = store.txn([], [DeletePrefix("d/"), Put("e/2", b"")])
    assert r.responses == (DeleteResponse(2), PutResponse(2))
    assert [k for k, _ in store.scan()] == ["d", "e/1", "e/2"]
    assert store.txn([], [DeletePrefix("zz")]).revision == 2  # nothing deleted, no new revision
    # Deleting a key twice is allowed (as in etcd): the second finds nothing.
    r = store.txn([], [Delete("e/1"), Delete("e/1"), DeletePrefix("e/")])
    assert r.responses == (DeleteResponse(1), DeleteResponse(0), DeleteResponse(1))
    assert r.revision == 3 and store.scan() == [("d", b"")]


def test_txn_is_atomic_when_an_op_fails_midway(store, monkeypatch):
    store.put("keep", b"old")
    w = store.watch("")
    calls = []
    real = SqliteMetaStore._apply_put

    def flaky(self, conn, op, revision, seq):
        calls.append(op.key)
        if len(calls) == 3:
            raise OSError("injected failure after two ops were applied")
        return real(self, conn, op, revision, seq)

    monkeypatch.setattr(SqliteMetaStore, "_apply_put", flaky)
    with pytest.raises(OSError, match="injected"):
        store.txn([], [Put("a", b"1"), Put("keep", b"new"), Delete("x"), Put("c", b"3")])
    assert calls == ["a", "keep", "c"]
    monkeypatch.undo()
    # Nothing of the failed transaction is visible, the revision did not move, no event was logged.
    assert store.scan() == [("keep", b"old")]
    assert store.revision == 1
    assert w.get(timeout=0) is None
    assert store.put("after", b"") == 2  # the store is still usable


def test_txn_validates_everything_before_touching_the_store(store):
    store.put("k", b"v")
    bad = [
        ([], [Put("a", b""), Put("a", b"")], ()),  # one key written twice
        ([], [Put("a", b""), Delete("a")], ()),
        ([], [DeletePrefix("a/"), Put("a/b", b"")], ()),
        ([], [Put("a", b"")], [Delete("b"), Put("b", b"")]),  # the failure branch is checked too
        ([], [Put("a", b""), "not an op"], ()),
        (["not a compare"], [Put("a", b"")], ()),
        ([], "not a list", ()),
        (Compare.exists("k"), [Put("a", b"")], ()),
    ]
    for compares, success, failure in bad:
        with pytest.raises(InvalidArgument):
            store.txn(compares, success, failure)
    assert store.scan() == [("k", b"v")] and store.revision == 1


def test_bad_op_and_compare_construction():
    with pytest.raises(InvalidArgument, match="target"):
        Compare("k", "lease", "==", 1)
    with pytest.raises(InvalidArgument, match="operator"):
        Compare("k", "version", ">=", 1)
    with pytest.raises(InvalidArgument, match="bytes"):
        Compare("k", "value", "==", "text")
    with pytest.raises(InvalidArgument, match="int"):
        Compare("k", "version", "==", b"1")
    with pytest.raises(InvalidArgument, match="empty"):
        DeletePrefix("")
    with SqliteMetaStore(":memory:") as s, pytest.raises(InvalidArgument, match="twice"):
        s.txn([], [Delete("k"), Put("k", b"")])
    with pytest.raises(InvalidArgument, match="encode"):
        Put("k", "text")
    with pytest.raises(InvalidArgument, match="serialise"):
        Put("k", {"a": 1})


def test_ops_and_results_pickle():
    for obj in [
        Compare.value_equals("k", b"v"),
        Put("k", b"v"),
        Delete("k"),
        DeletePrefix("p"),
        WatchEvent(EVENT_PUT, "k", b"v", 3),
    ]:
        assert pickle.loads(pickle.dumps(obj)) == obj
    err = pickle.loads(pickle.dumps(Compacted("gone", compact_revision=7)))
    assert isinstance(err, NotFoundError) and err.compact_revision == 7


def test_compare_and_put(store):
    assert store.compare_and_put("k", None, b"1") is True
    assert store.compare_and_put("k", None, b"2") is False
    assert store.compare_and_put("k", b"2", b"3") is False
    assert store.compare_and_put("k", b"1", b"3") is True
    assert store.get("k") == b"3" and store.revision == 2


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_compare_and_put_race_has_exactly_one_winner(db, shared):
    n = 12
    stores = [SqliteMetaStore(db)] * n if shared else [SqliteMetaStore(db) for _ in range(n)]
    barrier = threading.Barrier(n)
    wins: list[int] = []

    def run(i):
        barrier.wait(timeout=30)
        if stores[i].compare_and_put("leader", None, str(i).encode()):
            wins.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(wins) == 1
    assert stores[0].get("leader") == str(wins[0]).encode()
    assert stores[0].revision == 1
    for s in set(stores):
        s.close()


def test_counter_increments_are_never_lost_across_connections(db):
    threads_n, increments = 4, 8
    stores = [SqliteMetaStore(db) for _ in range(threads_n)]
    stores[0].put("counter", b"0")

    def run(s):
        for _ in range(increments):
            while True:
                old = s.get("counter")
                if s.compare_and_put("counter", old, str(int(old) + 1).encode()):
                    break

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert stores[0].get("counter") == str(threads_n * increments).encode()
    assert stores[0].revision == 1 + threads_n * increments
    for s in stores:
        s.close()


# -- watches --------------------------------------------------------------------------------


def test_watch_delivers_prefix_events_in_order(store):
    store.put("c/old", b"before the watch")
    w = store.watch("c/")
    store.put("c/1", b"a")
    store.put("other", b"x")
    store.txn([], [Put("c/2", b"b"), Put("c/1", b"c"), Put("d", b"")])
    store.delete("c/1")
    store.txn([], [DeletePrefix("c/")])
    events = [w.get(timeout=5) for _ in range(6)]
    assert events == [
        WatchEvent(EVENT_PUT, "c/1", b"a", 2),
        WatchEvent(EVENT_PUT, "c/2", b"b", 4),
        WatchEvent(EVENT_PUT, "c/1", b"c", 4),
        WatchEvent(EVENT_DELETE, "c/1", None, 5),
        WatchEvent(EVENT_DELETE, "c/2", None, 6),
        WatchEvent(EVENT_DELETE, "c/old", None, 6),
    ]
    assert w.get(timeout=0) is None
    w.close()
    assert w.get(timeout=0) is None


def test_watch_replays_history_and_continues_a_scan(store):
    for i in range(5):
        store.put(f"k/{i}", str(i).encode())
    w = store.watch("k/", start_revision=3)
    assert [e.key for e in (w.get(0), w.get(0), w.get(0))] == ["k/2", "k/3", "k/4"]
    assert w.get(0) is None

    kvs, revision = store.scan_with_revision("k/")
    store.put("k/9", b"9")
    follow = store.watch("k/", start_revision=revision + 1)
    assert follow.get(timeout=0) == WatchEvent(EVENT_PUT, "k/9", b"9", 6)


def test_watch_sees_big_transactions_whole(store):
    n = 2500  # more than one fetch batch, all at one revision
    store.txn([], [Put(f"big/{i:05d}", b"") for i in range(n)])
    w = store.watch("big/", start_revision=1)
    keys = [w.get(timeout=0).key for _ in range(n)]
    assert keys == [f"big/{i:05d}" for i in range(n)]
    assert w.get(timeout=0) is None


def test_watch_iteration_blocks_until_events_and_ends_on_close(store):
    w = store.watch("q/")
    got: list[WatchEvent] = []
    ready = threading.Event()

    def consume():
        for event in w:
            got.append(event)
            if len(got) == 3:
                ready.set()

    t = threading.Thread(target=consume)
    t.start()
    for i in range(3):
        store.put(f"q/{i}", b"")
    assert ready.wait(timeout=10)
    w.close()
    t.join(timeout=10)
    assert not t.is_alive()
    assert [e.key for e in got] == ["q/0", "q/1", "q/2"]


def test_watch_sees_other_store_on_same_file(db):
    with SqliteMetaStore(db) as a, SqliteMetaStore(db) as b:
        w = a.watch("")
        b.put("from-b", b"1")
        a.put("from-a", b"2")
        assert w.get(timeout=5) == WatchEvent(EVENT_PUT, "from-b", b"1", 1)
        assert w.get(timeout=5) == WatchEvent(EVENT_PUT, "from-a", b"2", 2)


def test_watch_sees_other_process_by_polling(db):
    with SqliteMetaStore(db, poll_interval_s=0.01) as s:
        w = s.watch("x/")
        code = (
            "import sys\n"
            "from vecstore.storage.meta import SqliteMetaStore\n"
            "with SqliteMetaStore(sys.argv[1]) as s:\n"
            "    s.put('x/child', b'hi')\n"
        )
        env = {**os.environ, "PYTHONPATH": PYTHON_DIR}
        subprocess.run([sys.executable, "-c", code, str(db)], env=env, check=True, timeout=60)
        assert w.get(timeout=10) == WatchEvent(EVENT_PUT, "x/child", b"hi", 1)


def test_watch_of_compacted_history_raises(db):
    with SqliteMetaStore(db, history_revisions=5) as s:
        behind = s.watch("")
        for i in range(20):
            s.put(f"k{i}", b"")
        assert s.compact_revision == 15
        with pytest.raises(Compacted, match="scan_with_revision") as info:
            s.watch("", start_revision=3)
        assert info.value.compact_revision == 15
        with pytest.raises(Compacted):
            behind.get(timeout=0)
        recent = s.watch("", start_revision=16)
        assert [recent.get(0).revision for _ in range(5)] == [16, 17, 18, 19, 20]


def test_closing_the_store_ends_its_watches(db):
    s = SqliteMetaStore(db)
    w = s.watch("")
    s.close()
    assert w.get(timeout=1) is None
    assert list(w) == []


# -- bad input and failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    "key,match",
    [
        ("", "empty"),
        (b"bytes", "str"),
        (7, "str"),
        ("a\x00b", "NUL"),
        ("é" * 513, "1024"),
        ("\ud800", "UTF-8"),
    ],
)
def test_bad_keys_are_rejected_before_any_change(store, key, match):
    for call in (
        lambda: store.put(key, b""),
        lambda: store.get(key),
        lambda: store.delete(key),
        lambda: store.compare_and_put(key, None, b""),
    ):
        with pytest.raises(InvalidArgument, match=match):
            call()
    assert store.revision == 0 and store.scan() == []


def test_key_length_limit_is_in_bytes(store):
    store.put("é" * 512, b"")  # 1024 bytes: the limit itself is allowed
    store.put("a" * 1024, b"")
    with pytest.raises(InvalidArgument, match="1024"):
        store.put("a" * 1025, b"")


def test_bad_arguments(store):
    with pytest.raises(InvalidArgument, match="prefix"):
        store.scan(None)
    with pytest.raises(InvalidArgument, match="start_revision"):
        store.watch("", start_revision=0)
    with pytest.raises(InvalidArgument, match="timeout"):
        store.watch("").get(timeout=-1)
    with pytest.raises(InvalidArgument, match="bytes"):
        store.put("k", "text")
    with pytest.raises(InvalidArgument, match="history_revisions"):
        SqliteMetaStore(":memory:", history_revisions=0)
    assert store.revision == 0


def test_use_after_close_names_the_fix(db):
    s = SqliteMetaStore(db)
    s.put("k", b"v")
    s.close()
    s.close()  # idempotent
    for call in (
        lambda: s.get("k"),
        lambda: s.put("k", b""),
        lambda: s.delete("k"),
        lambda: s.scan(),
        lambda: s.txn([], []),
        lambda: s.watch(""),
        lambda: s.revision,
    ):
        with pytest.raises(InvalidArgument, match=r"closed; open it again with SqliteMetaStore\("):
            call()


def test_random_bytes_file_is_reported_as_corrupt(db):
    rng = np.random.default_rng(SEED)
    db.write_bytes(rng.integers(0, 256, 8192, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptionError, match=str(db)):
        SqliteMetaStore(db)
    db.write_bytes(b"SQLite format 3\x00")  # truncated header
    with pytest.raises(CorruptionError, match=str(db)):
        SqliteMetaStore(db)


def test_damaged_pages_are_reported_as_corrupt(db):
    with SqliteMetaStore(db) as s:
        s.txn([], [Put(f"key/{i:04d}", bytes(200)) for i in range(200)])
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    rng = np.random.default_rng(SEED)
    data[2 * page : 4 * page] = rng.integers(0, 256, 2 * page, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match=str(db)):
        SqliteMetaStore(db)


def test_foreign_sqlite_database_is_refused(db):
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptionError, match="not a vecstore meta store"):
        SqliteMetaStore(db)


def test_missing_directory_and_bad_paths(tmp_path):
    with pytest.raises(NotFoundError, match="create it first"):
        SqliteMetaStore(tmp_path / "nope" / "meta.sqlite")
    with pytest.raises(InvalidArgument, match="directory"):
        SqliteMetaStore(tmp_path)
    with pytest.raises(InvalidArgument):
        SqliteMetaStore(42)
    assert issubclass(Compacted, VecstoreError)
