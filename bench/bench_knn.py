"""Batched exact k-NN: ``knn_nq`` queries x ``knn_n`` rows x 128 dims, k=10 (1,000 x 100k at 1.0).

Group ``knn-float32-L2`` puts side by side, each at 1 thread and at all cores:

- ``vecstore.knn`` (the packed, register-tiled path: 8 or more queries);
- numpy: ``d = (x*x).sum(1)[None, :] - 2 * q @ x.T`` then ``np.argpartition(d, k, axis=1)[:, :k]``,
  with numpy's BLAS pinned through ctypes (skipped where it cannot be pinned; ``extra_info`` records
  the BLAS thread setting, which OpenBLAS treats as a maximum);
- ``faiss.IndexFlatL2.search`` with ``faiss.omp_set_num_threads`` (skipped without faiss).

Groups ``knn-float16-L2``, ``knn-int8-L2``, ``knn-float32-IP`` and ``knn-float32-COSINE`` time
vecstore alone on the same shapes. Every benchmark asserts recall >= 0.99 against a float64 exact
top-k, and the baselines also against vecstore's own ids.

    python -m pytest bench/bench_knn.py --benchmark-group-by=group
"""

from __future__ import annotations

import numpy as np
import pytest

import benchutil
import vecstore

MIN_RECALL = 0.99
THREADS = [1, 0]  # 0 = every core
THREAD_IDS = ["threads=1", "threads=all"]


def _describe(benchmark, queries, base, sizes, *, kind, metric, threads, impl, **extra):
    benchmark.group = f"knn-{kind}-{metric}"
    benchutil.describe(
        benchmark,
        dim=base.shape[1],
        n=base.shape[0],
        nq=queries.shape[0],
        k=sizes.k,
        kind=kind,
        metric=metric,
        threads=threads or benchutil.hardware_threads(),
        impl=impl,
        **extra,
    )


def _finish(benchmark, queries, base):
    # "Rows" here are query x row distance evaluations, the unit brute-force search scales with.
    benchutil.add_throughput(benchmark, nbytes=base.nbytes, rows=queries.shape[0] * base.shape[0])


@pytest.fixture(scope="module")
def vecstore_ids(knn_data, sizes):
    """vecstore's float32 L2 ids, the answer the baselines are checked against."""
    queries, base = knn_data("float32")
    return vecstore.knn(queries, base, sizes.k, "L2")[0]


@pytest.mark.parametrize("threads", THREADS, ids=THREAD_IDS)
def test_knn_vecstore(benchmark, knn_data, knn_reference, sizes, threads):
    queries, base = knn_data("float32")
    _describe(
        benchmark,
        queries,
        base,
        sizes,
        kind="float32",
        metric="L2",
        threads=threads,
        impl="vecstore",
    )

    def run():
        return vecstore.knn(queries, base, sizes.k, "L2", threads=threads)

    run()
    ids, dist = benchmark(run)
    _finish(benchmark, queries, base)
    assert ids.shape == dist.shape == (queries.shape[0], sizes.k)
    assert benchutil.recall(ids, knn_reference("float32", "L2")) >= MIN_RECALL


@pytest.mark.parametrize("threads", THREADS, ids=THREAD_IDS)
def test_knn_numpy(benchmark, knn_data, knn_reference, vecstore_ids, sizes, pin_threads, threads):
    if threads == 1 and not benchutil.blas_pinnable():
        pytest.skip("numpy's BLAS is not an OpenBLAS this suite can pin to one thread")
    queries, base = knn_data("float32")
    k = sizes.k

    def run():
        d = (base * base).sum(1)[None, :] - 2 * queries @ base.T
        return np.argpartition(d, k, axis=1)[:, :k]

    with pin_threads(threads):
        _describe(
            benchmark,
            queries,
            base,
            sizes,
            kind="float32",
            metric="L2",
            threads=threads,
            impl="numpy",
            numpy_blas_threads=benchutil.blas_threads(),
            note="BLAS threads cap q @ x.T only; argpartition is single-threaded",
        )
        run()
        ids = benchmark(run)
    _finish(benchmark, queries, base)
    assert benchutil.recall(ids, knn_reference("float32", "L2")) >= MIN_RECALL
    assert benchutil.recall(ids, vecstore_ids) >= MIN_RECALL


@pytest.mark.parametrize("threads", THREADS, ids=THREAD_IDS)
def test_knn_faiss(benchmark, knn_data, knn_reference, vecstore_ids, sizes, pin_threads, threads):
    faiss = pytest.importorskip("faiss")
    queries, base = knn_data("float32")
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)

    with pin_threads(threads):
        _describe(
            benchmark,
            queries,
            base,
            sizes,
            kind="float32",
            metric="L2",
            threads=threads,
            impl="faiss",
            faiss_version=faiss.__version__,
            faiss_omp_threads=faiss.omp_get_max_threads(),
        )
        index.search(queries, sizes.k)
        dist, ids = benchmark(index.search, queries, sizes.k)
    _finish(benchmark, queries, base)
    assert benchutil.recall(ids, knn_reference("float32", "L2")) >= MIN_RECALL
    assert benchutil.recall(ids, vecstore_ids) >= MIN_RECALL


VARIANTS = [("float16", "L2"), ("int8", "L2"), ("float32", "IP"), ("float32", "COSINE")]


@pytest.mark.parametrize("threads", THREADS, ids=THREAD_IDS)
@pytest.mark.parametrize("kind,metric", VARIANTS, ids=[f"{k}-{m}" for k, m in VARIANTS])
def test_knn_vecstore_variant(benchmark, knn_data, knn_reference, sizes, kind, metric, threads):
    queries, base = knn_data(kind)
    _describe(
        benchmark,
        queries,
        base,
        sizes,
        kind=kind,
        metric=metric,
        threads=threads,
        impl="vecstore",
    )

    def run():
        return vecstore.knn(queries, base, sizes.k, metric, threads=threads)

    run()
    ids, dist = benchmark(run)
    _finish(benchmark, queries, base)
    assert ids.shape == dist.shape == (queries.shape[0], sizes.k)
    assert benchutil.recall(ids, knn_reference(kind, metric)) >= MIN_RECALL
