"""Exact k-NN against a float64 brute-force oracle: results, ties, allow-sets, threads, paths."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import vecstore
from tests.reference import random_vectors, ranking_key, ref_cdist, tolerance

KIND_METRICS = [
    ("float32", "L2"),
    ("float32", "IP"),
    ("float32", "COSINE"),
    ("float16", "L2"),
    ("bfloat16", "IP"),
    ("int8", "L2"),
    ("int8", "COSINE"),
    ("binary", "HAMMING"),
    ("binary", "JACCARD"),
]


def check_knn(queries, base, k, metric, ids, dist, allow=None):
    """Returned values match the oracle for the returned ids, and no better row was missed."""
    want = ref_cdist(queries, base, metric)
    tol = tolerance(queries, base, metric)
    key = ranking_key(want, metric)
    if allow is not None:
        key = np.where(allow[None, :], key, np.inf)
    n_allowed = base.shape[0] if allow is None else int(allow.sum())
    for i in range(queries.shape[0]):
        got = ids[i][ids[i] >= 0]
        assert got.size == min(k, n_allowed)
        assert len(set(got.tolist())) == got.size, "duplicate ids"
        if allow is not None:
            assert allow[got].all(), "a row outside the allow-set was returned"
        np.testing.assert_array_less(np.abs(dist[i, : got.size] - want[i, got]), tol[i, got] + 1e-9)
        # The k-th returned row is no worse than the true k-th (up to rounding).
        kth_true = np.sort(key[i])[got.size - 1]
        assert ranking_key(dist[i, got.size - 1], metric) <= kth_true + tol[i].max()
        # Best first.
        assert (np.diff(ranking_key(dist[i, : got.size], metric)) >= 0).all()


@pytest.mark.parametrize("kind,metric", KIND_METRICS)
@pytest.mark.parametrize("nq", [1, 5, 40])
def test_knn_matches_brute_force(simd, rng, kind, metric, nq):
    dim = 256 if kind == "binary" else 33
    base = random_vectors(rng, kind, 3000, dim)
    queries = random_vectors(rng, kind, nq, dim)
    ids, dist = vecstore.knn(queries, base, 10, metric)
    assert ids.shape == dist.shape == (nq, 10)
    assert ids.dtype == np.int64 and dist.dtype == np.float32
    check_knn(queries, base, 10, metric, ids, dist)


def test_knn_returns_the_exact_neighbours_on_separated_data(rng):
    # Clustered data with clear gaps: the exact ids must match the oracle's argsort exactly.
    base = (rng.standard_normal((2000, 64)) * 10).astype(np.float32)
    queries = base[rng.choice(2000, 30, replace=False)] + 0.01
    ids, dist = vecstore.knn(queries.astype(np.float32), base, 5)
    want = np.argsort(ref_cdist(queries, base, "L2"), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, want)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("nq", [1, 16])
def test_ties_break_by_smaller_id(rng, metric, nq):
    # 50 distinct rows, each repeated 4 times: every distance appears 4 times.
    distinct = random_vectors(rng, "float32", 50, 24)
    base = np.repeat(distinct, 4, axis=0)
    queries = random_vectors(rng, "float32", nq, 24)
    ids, dist = vecstore.knn(queries, base, 12, metric)
    for i in range(nq):
        for j in range(1, 12):
            if dist[i, j] == dist[i, j - 1]:
                assert ids[i, j] > ids[i, j - 1]
        # Groups of equal rows are returned whole and in id order.
        assert (ids[i, :4] == ids[i, 0] + np.arange(4)).all()


@pytest.mark.parametrize("kind,metric", [("float32", "L2"), ("int8", "IP"), ("binary", "HAMMING")])
def test_results_do_not_depend_on_threads(rng, kind, metric):
    dim = 128 if kind == "binary" else 48
    base = random_vectors(rng, kind, 20_000, dim)
    queries = random_vectors(rng, kind, 100, dim)
    one = vecstore.knn(queries, base, 10, metric, threads=1)
    for threads in (2, 3, 0):
        other = vecstore.knn(queries, base, 10, metric, threads=threads)
        np.testing.assert_array_equal(one[0], other[0])
        np.testing.assert_array_equal(one[1], other[1])
    few = vecstore.knn(queries[:3], base, 10, metric, threads=1)
    for threads in (2, 0):
        other = vecstore.knn(queries[:3], base, 10, metric, threads=threads)
        np.testing.assert_array_equal(few[0], other[0])


@pytest.mark.parametrize("kind,metric", [("float32", "L2"), ("float16", "COSINE"),
                                         ("binary", "JACCARD")])
@pytest.mark.parametrize("nq", [1, 20])
@pytest.mark.parametrize("selectivity", [0.0005, 0.01, 0.3, 0.97])
def test_allow_set_is_honoured_exactly(rng, kind, metric, nq, selectivity):
    dim = 64 if kind == "binary" else 20
    n = 6001  # not a multiple of 8 or 64: the bitset tail matters
    base = random_vectors(rng, kind, n, dim)
    queries = random_vectors(rng, kind, nq, dim)
    allow = rng.random(n) < selectivity
    allow[-1] = True  # the very last row is reachable
    ids, dist = vecstore.knn(queries, base, 10, metric, allow=allow)
    check_knn(queries, base, 10, metric, ids, dist, allow=allow)


def test_fewer_allowed_rows_than_k_pads(rng):
    base = random_vectors(rng, "float32", 100, 8)
    allow = np.zeros(100, dtype=bool)
    allow[[3, 50, 99]] = True
    for metric, pad in (("L2", np.inf), ("IP", -np.inf)):
        ids, dist = vecstore.knn(base[:2], base, 5, metric, allow=allow)
        assert set(ids[0, :3].tolist()) == {3, 50, 99}
        assert (ids[:, 3:] == -1).all() and (dist[:, 3:] == pad).all()
    ids, dist = vecstore.knn(base[:2], base, 5, allow=np.zeros(100, dtype=bool))
    assert (ids == -1).all() and np.isinf(dist).all()


def test_disallowed_rows_are_not_read(rng):
    base = random_vectors(rng, "float32", 1000, 16)
    base[10] = np.nan  # excluded by the allow-set: must neither be returned nor raise
    allow = np.ones(1000, dtype=bool)
    allow[10] = False
    ids, _ = vecstore.knn(base[:2], base, 3, allow=allow)
    assert 10 not in ids


def test_knn_reads_strided_base_without_copy(rng):
    wide = random_vectors(rng, "float32", 500, 96)
    base = wide[:, 10:74]  # row stride 384 bytes, row 256 bytes
    queries = random_vectors(rng, "float32", 9, 64)
    ids, dist = vecstore.knn(queries, base, 7)
    check_knn(queries, base, 7, "L2", ids, dist)


def test_concurrent_calls_from_python_threads(rng):
    base = random_vectors(rng, "float32", 20_000, 32)
    queries = random_vectors(rng, "float32", 64, 32)
    want = vecstore.knn(queries, base, 5, threads=1)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(vecstore.knn(queries, base, 5, threads=2))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20
    for ids, dist in results:
        np.testing.assert_array_equal(ids, want[0])
        np.testing.assert_array_equal(dist, want[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process.*is multi-threaded:DeprecationWarning")
def test_search_works_in_a_forked_child(rng):
    base = random_vectors(rng, "float32", 30_000, 16)
    queries = random_vectors(rng, "float32", 50, 16)
    want = vecstore.knn(queries, base, 4, threads=0)  # the pool now has workers
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's workers do not exist here
        ok = 0
        try:
            ids, _ = vecstore.knn(queries, base, 4, threads=0)
            ok = int(np.array_equal(ids, want[0]))
        finally:
            os.write(write_fd, bytes([ok]))
            os._exit(0)
    os.close(write_fd)
    got = os.read(read_fd, 1)
    os.waitpid(pid, 0)
    assert got == b"\x01"


def test_large_batches_are_chunked_without_changing_results(rng, monkeypatch):
    from vecstore import compute

    base = random_vectors(rng, "float32", 3000, 40)
    queries = random_vectors(rng, "float32", 101, 40)
    whole = vecstore.knn(queries, base, 6)
    whole_d = vecstore.cdist(queries, base, "IP")
    monkeypatch.setattr(compute, "QUERY_CHUNK", 16)
    assert all(8 <= c.stop - c.start <= 16 for c in compute._chunks(101))
    chunked = vecstore.knn(queries, base, 6)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    np.testing.assert_array_equal(whole_d, vecstore.cdist(queries, base, "IP"))


def test_empty_inputs(rng):
    base = random_vectors(rng, "float32", 10, 8)
    ids, dist = vecstore.knn(base[:0], base, 3)
    assert ids.shape == dist.shape == (0, 3)
    assert vecstore.cdist(base, base[:0]).shape == (10, 0)
    assert vecstore.cdist(base[:0], base).shape == (0, 10)
