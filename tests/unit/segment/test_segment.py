"""Segment write/open round trips, zero-copy mapping, verification modes, delete logs, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import ml_dtypes
import numpy as np
import pyarrow as pa
import pytest

import vecstore
from tests.unit.segment.segdata import make_columns, make_rng
from vecstore.errors import CorruptionError, InvalidArgument, NotFoundError, StorageError
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import (
    DEFAULT_VERIFY,
    TS_COLUMN,
    DeltaInfo,
    Segment,
    SegmentWriter,
    write_delete_log,
)

MODES = ("eager", "background", "lazy")


class RemoteStore:
    """The ObjectStore protocol without local_path: the reader must fall back to get()."""

    def __init__(self, inner: LocalObjectStore) -> None:
        self._inner = inner

    def __getattr__(self, name):
        if name == "local_path":
            raise AttributeError(name)
        return getattr(self._inner, name)


def _stored(value) -> np.ndarray:
    arr = value[0] if isinstance(value, tuple) else value
    return arr.view(np.uint16) if arr.dtype == ml_dtypes.bfloat16 else arr


def _mapping_at(address: int) -> tuple[str, str] | None:
    """(permissions, path) of this process's memory mapping holding ``address`` (Linux)."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= address < hi:
                return parts[1], parts[5].strip() if len(parts) == 6 else ""
    return None


linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux")


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
def test_round_trip_every_kind(bundle, mode, remote):
    store, prefix, columns, manifest = bundle
    if remote:
        store = RemoteStore(store)
    with Segment.open(store, prefix, verify=mode) as seg:
        assert seg.rows == manifest.rows == 300
        ts = columns["timestamps"]
        assert seg.ts_range == (int(ts.min()), int(ts.max()))
        assert seg.manifest == manifest
        assert seg.manifest.schema_version == 3
        kinds = {f.name: (f.kind, f.dim) for f in seg.manifest.vector_fields}
        assert kinds == {
            "f32": ("float32", 16),
            "f16": ("float16", 16),
            "bf16": ("bfloat16", 16),
            "i8": ("int8", 16),
            "bits": ("binary", 128),
        }
        for field, value in columns["vectors"].items():
            got = seg.vectors(field)
            want = value[0] if isinstance(value, tuple) else value
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(_stored(got), _stored(value))
            assert not got.flags.writeable
        assert seg.vectors("bf16", raw=True).dtype == np.dtype("<u2")

        table = seg.scalars()
        assert table.column_names[:2] == ["pk", TS_COLUMN]
        assert np.array_equal(seg.pks().to_numpy(), columns["pk"])
        assert np.array_equal(seg.timestamps(), ts)
        for name, value in columns["scalars"].items():
            assert table.column(name).combine_chunks().equals(pa.array(value)), name
        assert table.column("maybe").null_count == 60
        seg.verify()
        assert set(seg.verification().values()) == {"ok"}


def test_string_primary_key_round_trip(store):
    columns = make_columns(500, string_pk=True)
    SegmentWriter(store, "s/str").write(**columns, schema_version=0, pk_field="id")
    with Segment.open(store, "s/str") as seg:
        assert seg.pk_type == "string"
        assert seg.pks().equals(columns["pk"])
        assert seg.scalars().column_names[0] == "id"
        assert seg.might_contain(columns["pk"]).all()
        stats = seg.pk_stats
        keys = columns["pk"].to_pylist()
        assert (stats.min, stats.max) == (min(keys), max(keys))


def test_npy_files_are_standard_and_aligned(bundle):
    store, prefix, columns, manifest = bundle
    for field in manifest.vector_fields:
        path = store.local_path(f"{prefix}/{field.file}")
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
            assert f.tell() % 64 == 0
        loaded = np.load(path, mmap_mode="r")
        assert np.array_equal(loaded, _stored(columns["vectors"][field.name]))


@linux_only
def test_vectors_are_read_only_views_of_the_mapping(bundle):
    store, prefix, columns, _ = bundle
    seg = Segment.open(store, prefix, verify="lazy")
    before = pa.total_allocated_bytes()
    for field in columns["vectors"]:
        v = seg.vectors(field)
        perms, path = _mapping_at(v.__array_interface__["data"][0])
        assert os.path.samefile(path, store.local_path(f"{prefix}/vec.{field}.npy"))
        # Read-only (Arrow maps it MAP_PRIVATE, which with PROT_READ still shares the page cache).
        assert perms.startswith("r-")
        assert v.__array_interface__["data"][0] % 64 == 0
    assert pa.total_allocated_bytes() == before
    v = seg.vectors("f32")
    assert seg.vectors("f32") is v  # one view per field, not a new array per call
    with pytest.raises(ValueError):
        v[0, 0] = 1.0
    seg.close()
    assert np.array_equal(v, columns["vectors"]["f32"])  # views outlive close()
    with pytest.raises(InvalidArgument, match="closed"):
        seg.vectors("f32")


@linux_only
def test_scalars_are_zero_copy(bundle):
    store, prefix, _, _ = bundle
    with Segment.open(store, prefix, verify="eager") as seg:
        before = pa.total_allocated_bytes()
        table = seg.scalars()
        assert pa.total_allocated_bytes() == before  # nothing decoded into Arrow's memory pool
        for name in ("pk", "f64", "name"):
            data = table.column(name).chunk(0).buffers()[-1]
            _, path = _mapping_at(data.address)
            assert os.path.samefile(path, store.local_path(f"{prefix}/scalars.arrow"))
            assert not data.is_mutable


def test_open_segments_hold_no_file_descriptors(bundle):
    store, prefix, _, _ = bundle
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    before = len(os.listdir(fd_dir))
    segments = [Segment.open(store, prefix, verify="lazy") for _ in range(20)]
    views = [s.vectors("f32") for s in segments]
    assert len(os.listdir(fd_dir)) == before
    assert all(np.array_equal(v, views[0]) for v in views)


def test_mapped_vectors_feed_knn(store):
    rng = make_rng(11)
    x = rng.standard_normal((2000, 32), dtype=np.float32)
    queries = rng.standard_normal((5, 32), dtype=np.float32)
    SegmentWriter(store, "s/knn").write(
        np.arange(2000), np.ones(2000, np.uint64), {"v": x}, schema_version=1
    )
    with Segment.open(store, "s/knn") as seg:
        mapped = seg.vectors("v")
        for q in queries:
            got = vecstore.knn(q[None], mapped, 10, threads=1)
            want = vecstore.knn(q[None], x, 10, threads=1)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_segment_without_vectors_or_scalars(store):
    m = SegmentWriter(store, "s/bare").write([5, 1, 9], [3, 2, 1], schema_version=0)
    assert m.vector_fields == () and m.ts_min == 1 and m.ts_max == 3
    with Segment.open(store, "s/bare/") as seg:
        assert seg.scalars().column_names == ["pk", TS_COLUMN]
        assert seg.might_contain([5, 2, 9, 100]).tolist()[::2] == [True, True]


def test_compressed_scalars_round_trip(store):
    columns = make_columns(100, seed=4)
    SegmentWriter(store, "s/z").write(**columns, schema_version=1, scalar_compression="zstd")
    with Segment.open(store, "s/z") as seg:
        assert seg.scalars().column("name").to_pylist() == columns["scalars"]["name"].to_pylist()


def test_index_prefix_reserved(bundle):
    store, prefix, _, _ = bundle
    with Segment.open(store, prefix) as seg:
        assert seg.index_prefix("f32", 7) == f"{prefix}/index/f32/7/"
        with pytest.raises(InvalidArgument):
            seg.index_prefix("nope", 1)
        with pytest.raises(InvalidArgument):
            seg.index_prefix("f32", "../x")


# -- verification modes -----------------------------------------------------------------------


def test_default_verify_mode_and_unknown_mode(bundle):
    store, prefix, _, _ = bundle
    assert DEFAULT_VERIFY == "background"
    with pytest.raises(InvalidArgument, match="verify"):
        Segment.open(store, prefix, verify="none")


def test_lazy_mode_verifies_on_first_use_only(bundle):
    store, prefix, _, _ = bundle
    with Segment.open(store, prefix, verify="lazy") as seg:
        assert set(seg.verification().values()) == {"pending"}
        seg.vectors("f16")
        states = seg.verification()
        assert states["vec.f16.npy"] == "ok" and states["vec.f32.npy"] == "pending"


def test_background_mode_finishes_on_its_own(bundle):
    store, prefix, _, _ = bundle
    with Segment.open(store, prefix, verify="background") as seg:
        assert seg.wait_verified(timeout=30)
        assert set(seg.verification().values()) == {"ok"}
    with Segment.open(store, prefix, verify="lazy") as seg:
        assert not seg.wait_verified(timeout=0)  # nobody runs lazy checks but their users


def test_background_failure_is_reported_without_a_reader(bundle, caplog):
    store, prefix, _, _ = bundle
    path = store.local_path(f"{prefix}/stats/pk")
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with Segment.open(store, prefix, verify="background") as seg:
        assert seg.wait_verified(timeout=30)
        assert seg.verification()["stats/pk"] == "failed"
        assert [s for s in seg.verification().values() if s != "ok"] == ["failed"]
        with pytest.raises(CorruptionError, match="stats/pk"):
            seg.verify()
    assert any("stats/pk" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_threads_share_one_check_and_one_error(bundle):
    store, prefix, _, _ = bundle
    path = store.local_path(f"{prefix}/vec.f32.npy")
    with open(path, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0x10]))
    for mode in MODES[1:]:
        seg = Segment.open(store, prefix, verify=mode)
        errors: list[BaseException] = []

        def use(seg=seg, errors=errors):
            try:
                seg.vectors("f32")
            except CorruptionError as error:
                errors.append(error)

        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 8 and all("vec.f32.npy" in str(e) for e in errors)
        assert np.array_equal(seg.vectors("f16").shape, (300, 16))  # other files still serve
        seg.close()


_EXIT_SCRIPT = """
import sys
import numpy as np
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import Segment, SegmentWriter
store = LocalObjectStore(sys.argv[1])
n = 100_000
SegmentWriter(store, "s").write(np.arange(n), np.arange(n), {"v": np.ones((n, 128), np.float32)},
                                schema_version=1)
segments = [Segment.open(store, "s", verify="background") for _ in range(8)]
print("exiting with checks running")
"""


def test_interpreter_exit_while_background_checks_run(tmp_path):
    # A verification thread killed inside the native CRC at exit would abort the process.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    for i in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _EXIT_SCRIPT, str(tmp_path / str(i))],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "exiting with checks running"


# -- delete logs ------------------------------------------------------------------------------


def test_delete_logs_round_trip(bundle):
    store, prefix, columns, _ = bundle
    pk = columns["pk"]
    a = write_delete_log(store, prefix, pk[:10], np.full(10, 500, np.uint64))
    b = write_delete_log(store, prefix, [int(pk[20]), 10**12], [600, 601])
    assert (a.seq, a.rows, a.ts_min, a.ts_max) == (0, 10, 500, 500)
    assert (b.seq, b.name) == (1, "delta/1.arrow")
    assert DeltaInfo.from_dict(b.to_dict()) == b
    with Segment.open(store, prefix, deltas=[a, b.to_dict()]) as seg:
        del_pk, del_ts = seg.deletes()
        assert del_pk.to_pylist() == [*pk[:10].tolist(), int(pk[20]), 10**12]
        assert del_ts.tolist() == [500] * 10 + [600, 601]
        assert seg.might_contain(del_pk).tolist()[:11] == [True] * 11
    with Segment.open(store, prefix) as seg:  # uncommitted logs are not read
        assert len(seg.deletes()[0]) == 0 and seg.deletes()[1].dtype == np.uint64


def test_delete_log_string_keys_and_type_mismatch(store):
    columns = make_columns(50, string_pk=True, seed=2)
    SegmentWriter(store, "s/d").write(**columns, schema_version=1)
    info = write_delete_log(store, "s/d", columns["pk"][:3], [9, 9, 9], seq=7)
    assert info.name == "delta/7.arrow"
    with pytest.raises(InvalidArgument, match="already exists"):
        write_delete_log(store, "s/d", ["a"], [1], seq=7)
    with pytest.raises(InvalidArgument, match="string"):
        write_delete_log(store, "s/d", [1, 2], [1, 1])
    with pytest.raises(NotFoundError):
        write_delete_log(store, "s/missing", [1], [1])
    assert write_delete_log(store, "s/d", ["zz"], [1]).seq == 8
    with Segment.open(store, "s/d", deltas=[info]) as seg:
        assert seg.deletes()[0].to_pylist() == columns["pk"][:3].to_pylist()


def test_delete_log_checksum_and_size_mismatch(bundle):
    store, prefix, _, _ = bundle
    info = write_delete_log(store, prefix, [1, 2, 3], [4, 5, 6])
    wrong_crc = DeltaInfo(info.seq, info.rows, info.size, info.crc32c ^ 1, 4, 6)
    for mode in MODES:
        with Segment.open(store, prefix, verify="lazy", deltas=[wrong_crc]) as seg:
            seg.vectors("f32")  # other files are fine
            with pytest.raises(CorruptionError, match="delta/0.arrow"):
                seg.deletes()
        if mode == "eager":
            with pytest.raises(CorruptionError, match="delta/0.arrow"):
                Segment.open(store, prefix, verify=mode, deltas=[wrong_crc])
    wrong_size = DeltaInfo(info.seq, info.rows, info.size + 1, info.crc32c, 4, 6)
    with pytest.raises(CorruptionError, match="bytes"):
        Segment.open(store, prefix, deltas=[wrong_size])
    missing = DeltaInfo(5, 1, 100, 0, 1, 1)
    with pytest.raises(CorruptionError, match="missing"):
        Segment.open(store, prefix, deltas=[missing])
    with pytest.raises(InvalidArgument):
        Segment.open(store, prefix, deltas=[info, info])
    with pytest.raises(InvalidArgument):
        Segment.open(store, prefix, deltas=[{"seq": 1}])


# -- bad input --------------------------------------------------------------------------------


def _bad_inputs():
    good = make_columns(20, seed=3)
    x = good["vectors"]["f32"]

    def case(**changes):
        kw = {**good, "schema_version": 1, **changes}
        return kw

    yield "rows differ (ts)", case(timestamps=good["timestamps"][:-1])
    yield "rows differ (vector)", case(vectors={"v": x[:-1]})
    yield "rows differ (scalar)", case(scalars={"a": np.arange(19)})
    yield "float pk", case(pk=np.arange(20, dtype=np.float64))
    yield "bool pk", case(pk=np.ones(20, dtype=bool))
    yield "null pk", case(pk=pa.array([None] + list(range(19))))
    yield "uint64 pk over int64", case(pk=np.arange(20, dtype=np.uint64) + np.uint64(2**63))
    yield "bytes pk", case(pk=np.array([b"a"] * 20))
    yield "empty pk", case(pk=[], timestamps=[], vectors={}, scalars=None)
    yield "float ts", case(timestamps=np.ones(20))
    yield "negative ts", case(timestamps=np.arange(20) - 5)
    yield "null ts", case(timestamps=pa.array([None] * 20, type=pa.uint64()))
    yield "str ts", case(timestamps="now")
    yield "float64 vectors", case(vectors={"v": x.astype(np.float64)})
    yield "kind mismatch", case(vectors={"v": (x, "int8")})
    yield "unknown kind", case(vectors={"v": (x, "float64")})
    yield "1-D vectors", case(vectors={"v": x[:, 0]})
    yield "zero dim", case(vectors={"v": x[:, :0]})
    yield "list vectors", case(vectors={"v": x.tolist()})
    yield "bad field name", case(vectors={"a-b": x})
    yield "path field name", case(vectors={"../x": x})
    yield "vectors not a dict", case(vectors=[x])
    yield "vector named like pk", case(vectors={"pk": x})
    yield "scalar named like vector", case(scalars={"f32": np.arange(20)})
    yield "scalar named like pk", case(scalars={"pk": np.arange(20)})
    yield "reserved scalar name", case(scalars={"$ts": np.arange(20)})
    yield "mixed scalar values", case(scalars={"a": [1, "x"] * 10})
    yield "2-D scalar", case(scalars={"a": np.ones((20, 2))})
    yield "scalars wrong type", case(scalars=[1, 2])
    yield "schema_version bool", case(schema_version=True)
    yield "schema_version negative", case(schema_version=-1)
    yield "schema_version str", case(schema_version="1")
    yield "bad pk_field", case(pk_field="a b")
    yield "bad fpr", case(bloom_fpr=0.0)
    yield "nan fpr", case(bloom_fpr=float("nan"))
    yield "bad compression", case(scalar_compression="gzip")


@pytest.mark.parametrize("name,kwargs", list(_bad_inputs()), ids=[n for n, _ in _bad_inputs()])
def test_bad_input_writes_nothing(store, name, kwargs):
    with pytest.raises(InvalidArgument):
        SegmentWriter(store, "s/bad").write(**kwargs)
    assert store.list("") == []


@pytest.mark.parametrize("prefix", ["", "/abs", "a/../b", "a//b", 5, None])
def test_bad_prefix(store, prefix):
    with pytest.raises(InvalidArgument):
        SegmentWriter(store, prefix)
    with pytest.raises(InvalidArgument):
        Segment.open(store, prefix)


def test_not_a_store(store):
    for bad in (None, "dir", {}):
        with pytest.raises(InvalidArgument, match="ObjectStore"):
            SegmentWriter(bad, "s/x")
        with pytest.raises(InvalidArgument, match="ObjectStore"):
            Segment.open(bad, "s/x")
        with pytest.raises(InvalidArgument, match="ObjectStore"):
            write_delete_log(bad, "s/x", [1], [1])


def test_existing_segment_is_never_replaced(bundle):
    store, prefix, columns, manifest = bundle
    before = {k: store.get(k) for k in store.list("")}
    with pytest.raises(InvalidArgument, match="already exists"):
        SegmentWriter(store, prefix).write(**make_columns(10, seed=9), schema_version=1)
    assert {k: store.get(k) for k in store.list("")} == before


def test_missing_segment_and_missing_file(bundle):
    store, prefix, _, _ = bundle
    with pytest.raises(NotFoundError, match="no segment"):
        Segment.open(store, "segments/c1/p1/other")
    store.delete(f"{prefix}/stats/pk")
    with pytest.raises(CorruptionError, match="missing"):
        Segment.open(store, prefix)


def test_failed_put_removes_written_files(store):
    class Failing:
        def __init__(self, inner, fail_at):
            self.inner, self.fail_at, self.puts = inner, fail_at, 0

        def put(self, key, data):
            self.puts += 1
            if self.puts == self.fail_at:
                raise StorageError(f"disk full writing {key}")
            self.inner.put(key, data)

        def put_parts(self, key, parts):  # vector files
            self.puts += 1
            if self.puts == self.fail_at:
                raise StorageError(f"disk full writing {key}")
            self.inner.put_parts(key, parts)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    columns = make_columns(30, seed=5)
    for fail_at in (1, 3, 7):
        with pytest.raises(StorageError, match="disk full"):
            SegmentWriter(Failing(store, fail_at), "s/f").write(**columns, schema_version=1)
        assert store.list("") == []
    SegmentWriter(store, "s/f").write(**columns, schema_version=1)
    Segment.open(store, "s/f", verify="eager").close()


def test_might_contain_rejects_wrong_key_type(bundle):
    store, prefix, _, _ = bundle
    with Segment.open(store, prefix) as seg:
        with pytest.raises(InvalidArgument):
            seg.might_contain(["a", "b"])
        with pytest.raises(InvalidArgument):
            seg.might_contain(np.ones(3))
        assert seg.might_contain(np.zeros(0, np.int64)).shape == (0,)


# -- timing (printed, not asserted) -----------------------------------------------------------


def test_open_time_200k_x_128_is_printed(store, capsys):
    n = 200_000
    x = make_rng(7).standard_normal((n, 128), dtype=np.float32)
    SegmentWriter(store, "s/big").write(
        np.arange(n), np.arange(n, dtype=np.uint64), {"v": x}, schema_version=1
    )
    lines = []
    for mode in MODES:
        best_open = best_ready = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            seg = Segment.open(store, "s/big", verify=mode)
            t1 = time.perf_counter()
            v = seg.vectors("v")
            t2 = time.perf_counter()
            best_open, best_ready = min(best_open, t1 - t0), min(best_ready, t2 - t0)
            seg.close()
        assert np.array_equal(v[::1000], x[::1000])
        lines.append(
            f"{mode}: open {best_open * 1e3:.2f} ms, vectors verified {best_ready * 1e3:.1f} ms"
        )
    with capsys.disabled():
        print(f"\nsegment {n} x 128 float32 (warm): " + "; ".join(lines))
