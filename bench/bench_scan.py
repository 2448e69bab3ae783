"""Single-query scan bandwidth: is one k-NN query memory-bound at numpy's read bandwidth?

One float32 query against ``scan_n`` x 128 float32 rows (1M rows, 512 MB at full size), k=10,
``threads=1`` — the per-query scan path, which should stream the matrix once. The reference is numpy
reading the same matrix with ``x.sum()`` (single-threaded in numpy): both benchmarks sit in the
group ``scan`` and record the bytes read and best-round GB/s in ``extra_info``.

``test_scan_bandwidth_ratio`` is a plain test that times both with ``time.perf_counter`` and prints
vecstore's bandwidth as a fraction of numpy's (run with ``-s`` to see it). It asserts results only:
no assertion anywhere in this suite depends on timing.

    python -m pytest bench/bench_scan.py -s --benchmark-group-by=group
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import benchutil
import vecstore


@pytest.fixture(scope="module")
def scan_reference(scan_data, sizes):
    """Float64 distances of the scan query to every row, and the ids of the k smallest."""
    query, rows = scan_data
    dist = benchutil.ref_distances(query[0], rows, "L2")
    top = np.argpartition(dist, sizes.k - 1)[: sizes.k]
    return dist, top[np.argsort(dist[top], kind="stable")]


def _describe(benchmark, rows, sizes, impl, **extra):
    benchmark.group = "scan"
    benchutil.describe(
        benchmark,
        dim=rows.shape[1],
        n=rows.shape[0],
        nq=1,
        k=sizes.k if impl == "vecstore" else None,
        kind="float32",
        metric="L2" if impl == "vecstore" else "sum",
        threads=1,
        impl=impl,
        **extra,
    )


def test_scan_vecstore(benchmark, scan_data, scan_reference, sizes):
    query, rows = scan_data
    _describe(benchmark, rows, sizes, "vecstore")

    def run():
        return vecstore.knn(query, rows, sizes.k, "L2", threads=1)

    run()
    ids, dist = benchmark(run)
    benchutil.add_throughput(benchmark, nbytes=rows.nbytes, rows=rows.shape[0])

    want_dist, want_ids = scan_reference
    assert set(ids[0].tolist()) == set(want_ids.tolist())
    np.testing.assert_allclose(dist[0], want_dist[ids[0]], rtol=1e-4)
    assert (np.diff(dist[0]) >= 0).all()


def test_scan_numpy_sum(benchmark, scan_data, sizes):
    _, rows = scan_data
    # numpy's reductions never use BLAS or extra threads, so this is a single-thread read of the
    # same bytes: the bandwidth one scanning core can get out of this machine's memory.
    _describe(benchmark, rows, sizes, "numpy-sum", reference="x.sum(), single-threaded")
    rows.sum()
    total = benchmark(rows.sum)
    benchutil.add_throughput(benchmark, nbytes=rows.nbytes, rows=rows.shape[0])
    # Pairwise float32 summation of ~1e8 standard normals is far from exact; only a sanity bound.
    assert abs(float(total) - float(rows.sum(dtype=np.float64))) < 1e-3 * rows.size


def test_scan_bandwidth_ratio(scan_data, sizes):
    query, rows = scan_data
    repeat = 5

    def vec():
        return vecstore.knn(query, rows, sizes.k, "L2", threads=1)

    t_vec = benchutil.best_of(vec, repeat)
    t_np = benchutil.best_of(rows.sum, repeat)
    gbps_vec = rows.nbytes / t_vec / 1e9
    gbps_np = rows.nbytes / t_np / 1e9
    print(
        f"\nscan {rows.shape[0]}x{rows.shape[1]} float32 ({rows.nbytes / 1e6:.0f} MB), 1 thread, "
        f"SIMD {vecstore.simd_level()}, best of {repeat} at {time.strftime('%Y-%m-%d')}:\n"
        f"  vecstore.knn k={sizes.k}: {t_vec * 1e3:8.2f} ms  {gbps_vec:6.2f} GB/s\n"
        f"  numpy x.sum():    {t_np * 1e3:8.2f} ms  {gbps_np:6.2f} GB/s\n"
        f"  vecstore_bandwidth / numpy_bandwidth = {gbps_vec / gbps_np:.3f}"
    )

    # The result checks that keep the timing honest: the scan found the right rows.
    ids, dist = vec()
    small = rows[: max(sizes.k, rows.shape[0] // 10)]
    d_small = vecstore.cdist(query, small, "L2", threads=1)[0]
    ids1, dist1 = vecstore.knn(query, small, 1, "L2", threads=1)
    assert ids1[0, 0] == int(np.argmin(d_small))
    assert dist1[0, 0] == d_small[ids1[0, 0]]
    ref = benchutil.ref_distances(query[0], small, "L2")
    ids_small, _ = vecstore.knn(query, small, sizes.k, "L2", threads=1)
    want = np.argpartition(ref, sizes.k - 1)[: sizes.k]
    assert set(ids_small[0].tolist()) == set(want.tolist())
    assert ids.shape == (1, sizes.k) and np.isfinite(dist).all()
