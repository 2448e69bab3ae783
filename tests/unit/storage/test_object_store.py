"""LocalObjectStore: atomic publishing, put-if-absent races, key rules, ranges and disk errors."""

from __future__ import annotations

import errno
import multiprocessing
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from vecstore.errors import InvalidArgument, NotFoundError, StorageError
from vecstore.storage.object import (
    LocalObjectStore,
    ObjectMeta,
    SupportsLocalPath,
    check_key,
)
from vecstore.storage.object.protocol import TEMP_PREFIX

SEED = int(os.environ.get("VECSTORE_SEED", "20261126"))


@pytest.fixture
def root(tmp_path):
    return tmp_path / "objects"


@pytest.fixture
def store(root):
    return LocalObjectStore(root)


def all_files(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files
    )


# -- round trips ----------------------------------------------------------------------------


def test_round_trip_types_and_metadata(store):
    rng = np.random.default_rng(SEED)
    vectors = rng.standard_normal((10, 8)).astype(np.float32)
    store.put("segments/1/vec.npy", vectors)
    store.put("segments/1/manifest", b"m1")
    store.put("a", bytearray(b"ba"))
    store.put("b", memoryview(b"xxmvxx")[2:4])
    store.put("empty", b"")
    assert store.get("segments/1/vec.npy") == vectors.tobytes()
    assert store.get("a") == b"ba" and store.get("b") == b"mv" and store.get("empty") == b""
    store.put("a", b"replaced")
    assert store.get("a") == b"replaced"
    meta = store.head("segments/1/vec.npy")
    assert isinstance(meta, ObjectMeta) and meta.size == vectors.nbytes and meta.last_modified > 0
    assert store.size("a") == 8 and store.size("empty") == 0
    assert store.exists("a") and not store.exists("nope") and not store.exists("segments/1")
    assert isinstance(store, SupportsLocalPath)


def test_missing_objects_raise_not_found_naming_the_key(store):
    store.put("dir/obj", b"x")
    for key in ("missing", "dir", "dir/obj/below", "other/deeper/key"):
        for call in (
            store.get,
            store.head,
            store.size,
            store.local_path,
            lambda k: store.get_range(k, 0, 1),
        ):
            with pytest.raises(NotFoundError, match=repr(key)):
                call(key)
        assert store.exists(key) is False


def test_get_range(store):
    data = bytes(range(256)) * 4
    store.put("r", data)
    assert store.get_range("r", 0, 10) == data[:10]
    assert store.get_range("r", 1000, 100) == data[1000:]  # past the end: what exists
    assert store.get_range("r", 1024, 5) == b""
    assert store.get_range("r", 5000, 5) == b""
    assert store.get_range("r", 3, 0) == b""
    assert store.get_range("r", 0, 1 << 62) == data  # a huge length allocates nothing extra
    for start, length, match in [
        (-1, 1, "start"),
        (0, -1, "length"),
        (1.0, 1, "int"),
        (True, 1, "int"),
        (0, None, "int"),
    ]:
        with pytest.raises(InvalidArgument, match=match):
            store.get_range("r", start, length)


def test_bad_data_is_rejected(store, root):
    with pytest.raises(InvalidArgument, match="encode"):
        store.put("k", "text")
    with pytest.raises(InvalidArgument, match="bytes-like"):
        store.put("k", 12)
    with pytest.raises(InvalidArgument, match="contiguous"):
        store.put("k", np.zeros((4, 4), dtype=np.float32)[:, ::2])
    with pytest.raises(InvalidArgument, match="encode"):
        store.put_if_absent("k", "text")
    assert all_files(root) == []


def test_root_handling(tmp_path):
    with pytest.raises(NotFoundError, match="create=True"):
        LocalObjectStore(tmp_path / "missing", create=False)
    nested = LocalObjectStore(tmp_path / "x" / "y")
    assert os.path.isdir(nested.root)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="not a directory"):
        LocalObjectStore(tmp_path / "file")
    with pytest.raises(InvalidArgument):
        LocalObjectStore(None)


# -- list and delete ------------------------------------------------------------------------


def test_list_is_sorted_literal_prefix_and_skips_temp_files(store, root):
    keys = [
        "segments/1/a",
        "segments/1/b",
        "segments/10/a",
        "segments/2/x/y",
        "sealed",
        "z",
        "é",
        "a_b",
        "a%b",
    ]
    for k in reversed(keys):
        store.put(k, b"")
    (root / "segments" / "1" / f"{TEMP_PREFIX}999999-abc").write_bytes(b"partial")
    assert store.list() == sorted(keys)
    assert store.list("") == sorted(keys)
    assert store.list("seg") == sorted(k for k in keys if k.startswith("seg"))
    assert store.list("segments/1") == ["segments/1/a", "segments/1/b", "segments/10/a"]
    assert store.list("segments/1/") == ["segments/1/a", "segments/1/b"]
    assert store.list("segments/2/x/y") == ["segments/2/x/y"]
    assert store.list("a_") == ["a_b"] and store.list("a%") == ["a%b"]
    assert store.list("nothing/here/") == [] and store.list("segments/3") == []
    assert store.list("segments/1/" + TEMP_PREFIX) == []
    for bad in ("/abs", "../x", "a//", "a/../b/", "a\\b", None):
        with pytest.raises(InvalidArgument):
            store.list(bad)


def test_delete(store, root):
    store.put("c/1/x", b"1")
    store.put("c/1/y", b"2")
    store.put("c/2/z", b"3")
    assert store.delete("c/1/x") is True
    assert store.delete("c/1/x") is False
    assert store.delete("c") is False  # a prefix is not an object
    assert store.delete("nope/deeper") is False
    assert store.delete("c/1/y") is True
    assert not (root / "c" / "1").exists()  # emptied directories go, like S3 prefixes
    assert store.list() == ["c/2/z"]
    assert store.delete("c/2/z") is True
    assert os.listdir(root) == []  # the root itself stays


def test_key_cannot_be_object_and_prefix(store, root):
    store.put("a/b", b"")
    with pytest.raises(InvalidArgument, match="prefix"):
        store.put("a", b"")
    with pytest.raises(InvalidArgument, match="prefix"):
        store.put("a/b/c", b"")
    with pytest.raises(InvalidArgument, match="prefix"):
        store.put_if_absent("a/b/c/d", b"")
    assert all_files(root) == ["a/b"]


def test_local_path(store):
    store.put("seg/vec.npy", b"\x93NUMPY")
    path = store.local_path("seg/vec.npy")
    assert os.path.isabs(path) and path.startswith(store.root)
    with open(path, "rb") as f:
        assert f.read() == b"\x93NUMPY"


# -- key rules ------------------------------------------------------------------------------

BAD_KEYS = [
    ("", "empty"),
    ("/etc/passwd", "absolute"),
    ("../x", r"'\.\.'"),
    ("a/../../b", r"'\.\.'"),
    ("a/..", r"'\.\.'"),
    ("./a", r"'\.'"),
    ("a//b", "empty path component"),
    ("a/", "empty path component"),
    ("a\\b", "backslash"),
    ("..\\x", "backslash"),
    ("a\x00b", "NUL"),
    (".tmp-123-abc", "reserved"),
    ("x/.tmp-1/y", "reserved"),
    ("a" * 256, "255"),
    ("a/" * 512 + "b", "1024"),
    ("\udcff", "UTF-8"),
    (b"bytes", "str"),
    (None, "str"),
]


@pytest.mark.parametrize("key,match", BAD_KEYS)
def test_bad_keys_rejected_before_any_side_effect(store, root, tmp_path, key, match):
    calls = [
        lambda: store.put(key, b"x"),
        lambda: store.put_if_absent(key, b"x"),
        lambda: store.get(key),
        lambda: store.get_range(key, 0, 1),
        lambda: store.head(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.local_path(key),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument, match=match):
            call()
    assert all_files(root) == [] and sorted(os.listdir(tmp_path)) == ["objects"]
    with pytest.raises(InvalidArgument):
        check_key(key)


def test_symlink_escaping_the_root_is_rejected(store, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"do not read")
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret", root / "file-link")
    for key in ("link/secret", "link/new", "file-link", "link/deep/new"):
        for call, args in (
            (store.put, (key, b"x")),
            (store.get, (key,)),
            (store.put_if_absent, (key, b"x")),
            (store.delete, (key,)),
        ):
            with pytest.raises(InvalidArgument, match="outside"):
                call(*args)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"do not read"
    assert store.list() == []  # links are not objects and are never followed
    assert store.list("link/") == []
    # A link that stays inside the root is fine.
    store.put("real/obj", b"inside")
    os.symlink(root / "real", root / "alias")
    assert store.get("alias/obj") == b"inside"


# -- atomicity and races --------------------------------------------------------------------


def test_reader_never_sees_a_partial_object(store):
    size = 4 << 20
    store.put("big", bytes([0]) * size)
    stop = threading.Event()
    seen: set[int] = set()
    bad: list[str] = []

    def reader():
        while not stop.is_set():
            data = store.get("big")
            if len(data) != size or data.count(data[:1]) != size:
                bad.append(f"len {len(data)}")
                return
            seen.add(data[0])

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, 200):
            store.put("big", bytes([i]) * size)
            if i >= 24 and len(seen) >= 3:
                break
    finally:
        stop.set()
        t.join(timeout=30)
    assert bad == []
    assert len(seen) > 1  # the reader really raced the writer
    assert [f for f in os.listdir(store.root) if f.startswith(TEMP_PREFIX)] == []


def test_put_if_absent_race_between_threads(store):
    n = 16
    barrier = threading.Barrier(n)
    wins: list[int] = []

    def run(i):
        barrier.wait(timeout=30)
        if store.put_if_absent("wal/lease", f"writer {i}".encode()):
            wins.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(wins) == 1
    assert store.get("wal/lease") == f"writer {wins[0]}".encode()
    assert store.list() == ["wal/lease"]
    assert all_files(store.root) == ["wal/lease"]


def _put_if_absent_worker(root, i, barrier, results):
    store = LocalObjectStore(root)
    barrier.wait(timeout=60)
    results.put((i, store.put_if_absent("fence/epoch-1", f"process {i}".encode() * 1000)))


def test_put_if_absent_race_between_processes(store):
    ctx = multiprocessing.get_context("spawn")
    n = 3
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_put_if_absent_worker, args=(store.root, i, barrier, results))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=60) for _ in range(n))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = [i for i, won in outcomes.items() if won]
    assert len(winners) == 1
    assert store.get("fence/epoch-1") == f"process {winners[0]}".encode() * 1000
    assert all_files(store.root) == ["fence/epoch-1"]


def test_put_if_absent_does_not_replace(store):
    assert store.put_if_absent("k", b"first") is True
    assert store.put_if_absent("k", b"second") is False
    assert store.get("k") == b"first"


# -- durability and disk errors -------------------------------------------------------------


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fsynced fds")
def test_put_fsyncs_the_file_and_every_new_directory(store, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store.put("d1/d2/obj", b"data")
    root = store.root
    assert synced[-2].startswith(os.path.join(root, "d1", "d2", TEMP_PREFIX))
    assert synced[-1] == os.path.join(root, "d1", "d2")
    assert root in synced and os.path.join(root, "d1") in synced  # new directories' entries
    synced.clear()
    store.put_if_absent("d1/d2/other", b"data")
    assert synced[-1] == os.path.join(root, "d1", "d2")
    synced.clear()
    store.delete("d1/d2/obj")
    assert synced == [os.path.join(root, "d1", "d2")]


@pytest.mark.parametrize("failing", ["write", "fsync"])
@pytest.mark.parametrize("method", ["put", "put_if_absent"])
def test_disk_errors_leave_no_visible_object(store, monkeypatch, failing, method):
    store.put("keep", b"old content")
    code = errno.ENOSPC if failing == "write" else errno.EIO
    real = getattr(os, failing)
    broken = {"on": True}

    def fail(fd, *args):
        # Fail writes, or fsyncs of files (not of directories), as a full or failing disk would.
        if broken["on"] and stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))
        return real(fd, *args)

    monkeypatch.setattr(os, failing, fail)
    for key in ("new/object", "keep") if method == "put" else ("new/object",):
        with pytest.raises(StorageError, match=repr(key)) as info:
            getattr(store, method)(key, b"x" * 100_000)
        assert info.value.errno == code
        assert errno.errorcode[code] in str(info.value)
    broken["on"] = False
    assert store.get("keep") == b"old content"  # the old object is untouched
    assert not store.exists("new/object")
    assert store.list() == ["keep"]
    assert [f for f in all_files(store.root) if TEMP_PREFIX in f] == []  # temp files removed
    store.put("new/object", b"fine")  # nothing is left in the way
    assert store.get("new/object") == b"fine"


def test_leftover_temp_files_are_ignored_and_cleaned(store, root):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    store.put("seg/obj", b"real")
    crashed = root / "seg" / f"{TEMP_PREFIX}{dead_pid}-0123456789abcdef"
    crashed.write_bytes(b"half of an obj")
    live = root / "seg" / f"{TEMP_PREFIX}{os.getpid()}-fedcba9876543210"
    live.write_bytes(b"a put in flight")
    assert store.list() == ["seg/obj"] and store.get("seg/obj") == b"real"
    assert store.remove_temp_files() == 1
    assert not crashed.exists() and live.exists()  # a live writer's file is kept
    assert store.remove_temp_files(stale_after_s=0) == 1  # unless it is older than allowed
    assert not live.exists()
    assert all_files(root) == ["seg/obj"]
    with pytest.raises(InvalidArgument):
        store.remove_temp_files(stale_after_s=-1)


# -- put_parts and object writers -----------------------------------------------------------


def test_put_parts_stores_the_concatenation_without_joining(store):
    from vecstore import _core

    rng = np.random.default_rng(SEED)
    rows = rng.standard_normal((300, 16)).astype(np.float32)
    parts = [b"header--", rows, memoryview(b"xxtailxx")[2:6], bytearray(b""), rows[::1]]
    store.put_parts("seg/v.npy", parts)
    joined = b"".join(bytes(memoryview(p).cast("B")) for p in parts)
    assert store.get("seg/v.npy") == joined
    crc = 0
    for p in parts:
        crc = _core.crc32c(p, crc)
    assert crc == _core.crc32c(joined)  # an incremental CRC over the parts is the put's CRC
    store.put("seg/one", joined)
    assert store.get("seg/one") == store.get("seg/v.npy")
    store.put_parts("seg/empty", iter(()))
    assert store.get("seg/empty") == b""


def test_put_parts_consumes_a_generator_lazily(store):
    seen = []

    def gen():
        for i in range(5):
            seen.append(i)
            yield bytes([i]) * 1000

    store.put_parts("g", gen())
    assert seen == list(range(5))
    assert store.get("g") == b"".join(bytes([i]) * 1000 for i in range(5))


@pytest.mark.parametrize("failure", ["generator", "not-bytes", "write", "fsync"])
def test_put_parts_failure_midway_leaves_no_object(store, monkeypatch, failure):
    store.put("keep", b"old")

    def parts():
        yield b"a" * 100_000
        if failure == "generator":
            raise RuntimeError("source failed")
        yield "text" if failure == "not-bytes" else b"b" * 100_000

    if failure in ("write", "fsync"):
        real = getattr(os, failure)
        calls = {"n": 0}

        def fail(fd, *args):
            if stat.S_ISREG(os.fstat(fd).st_mode):
                calls["n"] += 1
                if failure == "fsync" or calls["n"] > 1:  # the second part's write fails
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, *args)

        monkeypatch.setattr(os, failure, fail)
    expected = {"generator": RuntimeError, "not-bytes": InvalidArgument}.get(failure, StorageError)
    for key in ("new/obj", "keep"):
        with pytest.raises(expected):
            store.put_parts(key, parts())
    monkeypatch.undo()
    assert store.get("keep") == b"old" and not store.exists("new/obj")
    assert [f for f in all_files(store.root) if TEMP_PREFIX in f] == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fsynced fds")
def test_put_parts_and_writer_fsync_file_then_directory(store, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store.put_parts("d1/obj", [b"a", b"b"])
    assert synced[-2].startswith(os.path.join(store.root, "d1", TEMP_PREFIX))
    assert synced[-1] == os.path.join(store.root, "d1")
    synced.clear()
    with store.open_writer("d1/w") as w:
        w.write(b"abc")
        w.commit()
    assert synced[-2].startswith(os.path.join(store.root, "d1", TEMP_PREFIX))
    assert synced[-1] == os.path.join(store.root, "d1")


def test_object_writer_appends_patches_and_publishes_on_commit(store):
    store.put("seg/v", b"old")
    w = store.open_writer("seg/v")
    w.write(b"\0" * 8)
    w.write(np.arange(4, dtype=np.int32))
    assert w.size == 24
    w.write_at(0, b"HEADER!!")
    assert store.get("seg/v") == b"old" and store.list() == ["seg/v"]  # nothing visible yet
    with pytest.raises(InvalidArgument, match="outside"):
        w.write_at(20, b"12345")  # would grow the object
    w.commit()
    assert store.get("seg/v") == b"HEADER!!" + np.arange(4, dtype=np.int32).tobytes()
    with pytest.raises(InvalidArgument, match="committed"):
        w.write(b"more")
    w.abort()  # no effect after commit
    assert store.exists("seg/v")


def test_object_writer_abort_and_failure_leave_nothing(store, monkeypatch):
    with store.open_writer("a/b") as w:
        w.write(b"x" * 1000)  # leaving the block without commit aborts
    assert not store.exists("a/b")
    w = store.open_writer("a/c")
    w.write(b"x")
    real = os.write

    def fail(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", fail)
    with pytest.raises(StorageError, match="'a/c'") as info:
        w.write(b"y")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "write", real)
    with pytest.raises(InvalidArgument, match="aborted"):
        w.commit()
    assert store.list() == []
    assert [f for f in all_files(store.root) if TEMP_PREFIX in f] == []
    with pytest.raises(InvalidArgument):
        store.open_writer("bad//key")
