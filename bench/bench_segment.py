"""Immutable segments: write time, warm open time per verification mode, scans of mapped vectors.

Data: the ``scan_data`` rows (``scan_n`` x 128 float32, 1M rows / 512 MB at full size) with int64
primary keys and uint64 timestamps, written once per session into a local object store under a
temp dir; "warm" means its files are in the page cache (it was just written and read).

Groups:

- ``segment-write``: :meth:`SegmentWriter.write` of the whole segment, fsyncs included;
- ``segment-open``: :meth:`Segment.open` alone, per ``verify`` mode (the 10 ms budget at 1M x 128);
- ``segment-ready``: open until ``vectors()`` returns verified rows, per mode;
- ``segment-scan``: ``vecstore.knn(query, mapped, 10, threads=1)`` over the mapped rows next to
  numpy's ``mapped.sum()`` reading the same bytes (single-threaded).

``test_segment_verify_modes_report`` prints the three modes side by side (run with ``-s``).
Timings are never asserted; results are.

    python -m pytest bench/bench_segment.py -s --benchmark-group-by=group
"""

from __future__ import annotations

import gc
import shutil
import time

import numpy as np
import pytest

import benchutil
import vecstore
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import VERIFY_MODES, Segment, SegmentWriter

FIELD = "emb"


def _columns(rows: np.ndarray) -> dict:
    n = rows.shape[0]
    return {
        "pk": np.arange(n, dtype=np.int64),
        "timestamps": np.arange(n, dtype=np.uint64) + np.uint64(1 << 40),
        "vectors": {FIELD: rows},
        "schema_version": 1,
    }


@pytest.fixture(scope="module")
def segment(tmp_path_factory, scan_data):
    """(store, prefix) of the scan rows written as one segment, files in the page cache."""
    _, rows = scan_data
    store = LocalObjectStore(tmp_path_factory.mktemp("segments"))
    prefix = "segments/bench/p0/s0"
    SegmentWriter(store, prefix).write(**_columns(rows))
    with Segment.open(store, prefix, verify="eager") as seg:  # reads every byte once
        assert seg.rows == rows.shape[0]
    yield store, prefix
    shutil.rmtree(store.root, ignore_errors=True)


def _describe(benchmark, group, rows, impl="vecstore", **extra):
    benchmark.group = group
    benchutil.describe(
        benchmark,
        dim=rows.shape[1],
        n=rows.shape[0],
        nq=1 if group == "segment-scan" else 0,
        k=10 if impl == "vecstore" and group == "segment-scan" else None,
        kind="float32",
        metric="L2" if group == "segment-scan" and impl == "vecstore" else "-",
        threads=1,
        impl=impl,
        **extra,
    )


def test_segment_write(benchmark, tmp_path, scan_data):
    _, rows = scan_data
    store = LocalObjectStore(tmp_path / "w")
    _describe(benchmark, "segment-write", rows)
    count = iter(range(1_000_000))

    def setup():
        shutil.rmtree(tmp_path / "w", ignore_errors=True)  # keep one copy on disk at a time
        return (SegmentWriter(LocalObjectStore(tmp_path / "w"), f"s/{next(count)}"),), {}

    def write(writer):
        return writer.write(**_columns(rows))

    manifest = benchmark.pedantic(write, setup=setup, rounds=3, iterations=1)
    benchutil.add_throughput(benchmark, nbytes=rows.nbytes, rows=rows.shape[0])
    assert manifest.rows == rows.shape[0]
    assert store.root  # the folder is removed with tmp_path


@pytest.mark.parametrize("mode", VERIFY_MODES)
def test_segment_open_warm(benchmark, segment, scan_data, mode):
    store, prefix = segment
    _, rows = scan_data
    _describe(benchmark, "segment-open", rows, verify=mode)

    def open_close():
        seg = Segment.open(store, prefix, verify=mode)
        seg.close()  # stops the background check so rounds do not overlap
        return seg

    open_close()
    seg = benchmark(open_close)
    assert seg.rows == rows.shape[0]


@pytest.mark.parametrize("mode", VERIFY_MODES)
def test_segment_ready_warm(benchmark, segment, scan_data, mode):
    store, prefix = segment
    _, rows = scan_data
    _describe(benchmark, "segment-ready", rows, verify=mode)

    def ready():
        with Segment.open(store, prefix, verify=mode) as seg:
            return seg.vectors(FIELD)

    ready()
    mapped = benchmark.pedantic(ready, rounds=5, iterations=1, warmup_rounds=1)
    benchutil.add_throughput(benchmark, nbytes=rows.nbytes, rows=rows.shape[0])
    assert np.array_equal(
        mapped[:: max(1, rows.shape[0] // 1000)], rows[:: max(1, rows.shape[0] // 1000)]
    )


@pytest.fixture(scope="module")
def mapped(segment):
    store, prefix = segment
    seg = Segment.open(store, prefix, verify="eager")
    yield seg.vectors(FIELD)
    seg.close()


def test_segment_scan_knn(benchmark, mapped, scan_data, sizes):
    query, rows = scan_data
    _describe(benchmark, "segment-scan", rows, source="mapped segment file")

    def run():
        return vecstore.knn(query, mapped, sizes.k, threads=1)

    run()
    ids, dist = benchmark(run)
    benchutil.add_throughput(benchmark, nbytes=mapped.nbytes, rows=mapped.shape[0])
    want_ids, want_dist = vecstore.knn(query, rows, sizes.k, threads=1)
    assert np.array_equal(ids, want_ids) and np.array_equal(dist, want_dist)


def test_segment_scan_numpy_sum(benchmark, mapped, scan_data):
    _, rows = scan_data
    _describe(benchmark, "segment-scan", rows, impl="numpy-sum", source="mapped segment file")
    mapped.sum()
    total = benchmark(mapped.sum)
    benchutil.add_throughput(benchmark, nbytes=mapped.nbytes, rows=mapped.shape[0])
    assert total == rows.sum()


def test_segment_verify_modes_report(segment, scan_data):
    store, prefix = segment
    query, rows = scan_data
    repeat = 5
    lines = []
    for mode in VERIFY_MODES:
        opened, ready, verified = [], [], []
        for _ in range(repeat + 1):
            gc.collect()
            t0 = time.perf_counter()
            seg = Segment.open(store, prefix, verify=mode)
            t1 = time.perf_counter()
            seg.vectors(FIELD)
            t2 = time.perf_counter()
            seg.verify()
            t3 = time.perf_counter()
            seg.close()
            opened.append(t1 - t0)
            ready.append(t2 - t0)
            verified.append(t3 - t0)
        # The first round is the warm-up.
        lines.append(
            f"  {mode:10s} open {np.median(opened[1:]) * 1e3:7.2f} ms   vectors ready "
            f"{np.median(ready[1:]) * 1e3:7.1f} ms   all verified "
            f"{np.median(verified[1:]) * 1e3:7.1f} ms"
        )
    # A query node loading several segments, then searching each: background checks overlap with
    # the other opens and with each other (the same files stand in for 4 segments).
    for mode in VERIFY_MODES:
        loads = []
        for _ in range(3):
            gc.collect()
            t0 = time.perf_counter()
            segs = [Segment.open(store, prefix, verify=mode) for _ in range(4)]
            for seg in segs:
                vecstore.knn(query, seg.vectors(FIELD), 10, threads=1)
            loads.append(time.perf_counter() - t0)
            for seg in segs:
                seg.close()
        lines.append(
            f"  {mode:10s} open 4 segments, then one knn on each: {np.median(loads) * 1e3:7.1f} ms"
        )
    print(
        f"\nsegment {rows.shape[0]} x {rows.shape[1]} float32 ({rows.nbytes / 1e6:.0f} MB), warm, "
        f"median of {repeat}, {benchutil.cpu_model()} ({benchutil.hardware_threads()} threads):\n"
        + "\n".join(lines)
    )
