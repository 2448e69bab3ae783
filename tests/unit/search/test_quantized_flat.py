"""QuantizedFlat (int8 scan + exact float32 re-rank) against vecstore.knn: bit-identical results.

Every case compares ids and float32 values with ``vecstore.knn`` on the same float32 matrix, same
k, metric, allow-set and query batch (so the batch takes knn's scan or gemm rounding path), and
where the data permits checks that the two-stage path was really taken (``stats``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import vecstore
from vecstore.compute import QuantizedFlat
from vecstore.errors import InvalidArgument

SEED = int(os.environ.get("VECSTORE_SEED", "20261126"))
METRICS = ["L2", "IP", "COSINE"]


def rng(offset: int = 0) -> np.random.Generator:
    return np.random.default_rng(SEED + offset)


def check_same(qf: QuantizedFlat, queries, k, allow=None, *, expect_two_stage=None):
    stats: dict = {}
    ids, dist = qf.search(queries, k, allow=allow, stats=stats)
    ref_ids, ref_dist = vecstore.knn(queries, qf.base, k, qf.metric, allow=allow)
    assert ids.dtype == np.int64 and dist.dtype == np.float32
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(dist.view(np.uint32), ref_dist.view(np.uint32))
    if expect_two_stage is not None:
        assert stats["two_stage_queries"] == expect_two_stage, stats
    return stats


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    g = rng(seed)
    centres = g.standard_normal((clusters, dim)).astype(np.float32) * 4
    labels = g.integers(0, clusters, n)
    return (centres[labels] + 0.3 * g.standard_normal((n, dim))).astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("nq", [1, 3, 8, 17])  # 8 and 17 take knn's batched (gemm) rounding
def test_gaussian(metric, nq):
    g = rng(1)
    x = g.standard_normal((20000, 64)).astype(np.float32)
    qf = QuantizedFlat(x, metric)
    q = g.standard_normal((nq, 64)).astype(np.float32)
    stats = check_same(qf, q, 10, expect_two_stage=nq)
    assert stats["candidates"] < nq * 2000  # the bounds really prune


@pytest.mark.parametrize("metric", METRICS)
def test_clustered_and_queries_from_base(metric):
    x = clustered(30000, 96, 50, 2)
    qf = QuantizedFlat(x, metric)
    q = np.concatenate([x[:3], x[100:101] + 0.01, rng(3).standard_normal((2, 96))]).astype(
        np.float32
    )
    check_same(qf, q, 10, expect_two_stage=len(q))
    check_same(qf, q[:1], 1, expect_two_stage=1)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dim", [1, 5, 31, 33, 300])  # padding; 300 > the gemm chunk (256)
def test_dims(metric, dim):
    g = rng(4)
    x = (g.standard_normal((3000, dim)) + 0.5).astype(np.float32)
    qf = QuantizedFlat(x, metric)
    for nq in (1, 9):
        check_same(qf, g.standard_normal((nq, dim)).astype(np.float32), 7)


@pytest.mark.parametrize("metric", METRICS)
def test_duplicates_and_ties(metric):
    g = rng(5)
    base = g.integers(-3, 4, (40, 16)).astype(np.float32)
    x = base[g.integers(0, 40, 5000)]  # many exact duplicates: equal values, ties by row id
    qf = QuantizedFlat(x, metric)
    q = np.concatenate([base[:2], g.integers(-3, 4, (3, 16))]).astype(np.float32)
    check_same(qf, q, 50)
    check_same(qf, q[:1], 200)


@pytest.mark.parametrize("metric", METRICS)
def test_outliers(metric):
    g = rng(6)
    x = g.standard_normal((20000, 32)).astype(np.float32)
    x[[5, 700, 19999], [0, 3, 31]] = [1e6, -3e5, 2e4]
    x[1234] = 5e3
    qf = QuantizedFlat(x, metric)
    q = g.standard_normal((4, 32)).astype(np.float32)
    q[1, 0] = 1e4
    check_same(qf, q, 10)
    check_same(qf, q[:1], 10, expect_two_stage=1)  # outliers cost only their own rows


@pytest.mark.parametrize("metric", METRICS)
def test_offset_and_scale(metric):
    g = rng(7)
    for scale, offset in ((1e-20, 0.0), (1e-3, 100.0), (1e15, 0.0), (1.0, -1e4)):
        x = (g.standard_normal((5000, 24)) * scale + offset).astype(np.float32)
        qf = QuantizedFlat(x, metric)
        q = (g.standard_normal((3, 24)) * scale + offset).astype(np.float32)
        check_same(qf, q, 10)
        check_same(qf, q[:1], 5)


@pytest.mark.parametrize("metric", METRICS)
def test_tiny_n_and_large_k(metric):
    g = rng(8)
    x = g.standard_normal((5, 8)).astype(np.float32)
    qf = QuantizedFlat(x, metric)
    q = g.standard_normal((2, 8)).astype(np.float32)
    check_same(qf, q, 5)
    check_same(qf, q, 1)
    with pytest.raises(InvalidArgument):
        qf.search(q, 6)
    with pytest.raises(InvalidArgument):
        qf.search(q, 0)
    one = QuantizedFlat(x[:1], metric)
    check_same(one, q, 1)
    big = QuantizedFlat(g.standard_normal((5000, 16)).astype(np.float32), metric)
    check_same(big, g.standard_normal((3, 16)).astype(np.float32), 1000)
    check_same(big, g.standard_normal((9, 16)).astype(np.float32), 1000)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("density", [0.0, 0.0005, 0.02, 0.5, 0.98])
def test_allow_masks(metric, density):
    g = rng(9)
    x = g.standard_normal((40000, 32)).astype(np.float32)
    qf = QuantizedFlat(x, metric)
    allow = g.random(40000) < density
    allow[1000:1100] = density > 0.1  # a dense run, or a hole
    q = g.standard_normal((3, 32)).astype(np.float32)
    check_same(qf, q, 10, allow=allow)  # fewer than k allowed rows: -1 / inf padding
    check_same(qf, q[:1], 10, allow=allow)
    check_same(qf, np.repeat(q, 3, axis=0), 10, allow=allow)
    ids, _ = qf.search(q, 10, allow=allow)
    assert np.all((ids == -1) | allow[np.maximum(ids, 0)])


def test_allow_excludes_nonfinite_rows():
    g = rng(10)
    x = g.standard_normal((2000, 16)).astype(np.float32)
    x[7, 3] = np.nan
    qf = QuantizedFlat(x, "L2")
    allow = np.ones(2000, dtype=bool)
    allow[7] = False
    q = g.standard_normal((2, 16)).astype(np.float32)
    check_same(qf, q, 10, allow=allow)
    with pytest.raises(InvalidArgument, match="row 7"):
        qf.search(q, 10)


def test_overflow_reported_like_knn():
    x = np.full((100, 4), 3e19, dtype=np.float32)
    x[::2] *= -1
    qf = QuantizedFlat(x, "L2")
    q = np.ones((1, 4), dtype=np.float32)
    with pytest.raises(InvalidArgument, match="overflowed"):
        vecstore.knn(q, x, 3, "L2")
    with pytest.raises(InvalidArgument, match="overflowed"):
        qf.search(q, 3)


@pytest.mark.parametrize("metric", METRICS)
def test_many_queries_delegate(metric):
    g = rng(11)
    x = g.standard_normal((3000, 16)).astype(np.float32)
    qf = QuantizedFlat(x, metric)
    q = g.standard_normal((40, 16)).astype(np.float32)
    stats = check_same(qf, q, 10)
    assert stats["exact_queries"] == 40


@pytest.mark.parametrize("metric", METRICS)
def test_row_strided_views(metric):
    g = rng(12)
    wide = g.standard_normal((8000, 80)).astype(np.float32)
    x = wide[::2, 10:74]  # row stride 640 bytes, 64 columns
    assert not x.flags.c_contiguous
    qf = QuantizedFlat(x, metric)
    q = g.standard_normal((6, 80)).astype(np.float32)[:, 10:74]
    check_same(qf, q, 10, expect_two_stage=6)
    check_same(qf, np.ascontiguousarray(q), 10, expect_two_stage=6)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("value", [0.0, 1.5])
def test_all_rows_equal(metric, value):
    x = np.full((3000, 12), value, dtype=np.float32)
    qf = QuantizedFlat(x, metric)
    g = rng(13)
    q = g.standard_normal((2, 12)).astype(np.float32)
    check_same(qf, q, 10)
    check_same(qf, np.zeros((1, 12), dtype=np.float32), 10)
    check_same(qf, np.zeros((9, 12), dtype=np.float32), 10)


@pytest.mark.parametrize("metric", METRICS)
def test_zero_rows_and_queries(metric):
    g = rng(14)
    x = g.standard_normal((4000, 20)).astype(np.float32)
    x[::50] = 0.0
    qf = QuantizedFlat(x, metric)
    q = g.standard_normal((3, 20)).astype(np.float32)
    q[1] = 0.0
    check_same(qf, q, 15)
    check_same(qf, q[:1], 15)


def test_threads_do_not_change_results():
    g = rng(15)
    x = g.standard_normal((70000, 32)).astype(np.float32)
    qf = QuantizedFlat(x, "L2", threads=1)
    q = g.standard_normal((2, 32)).astype(np.float32)
    a = qf.search(q, 10, threads=1)
    b = qf.search(q, 10, threads=0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    check_same(qf, q, 10, expect_two_stage=2)


def test_serial_simd_level_matches():
    g = rng(16)
    x = g.standard_normal((5000, 40)).astype(np.float32)
    q = g.standard_normal((2, 40)).astype(np.float32)
    before = vecstore.simd_level()
    try:
        vecstore.set_simd_level("serial")
        qf = QuantizedFlat(x, "L2")
        check_same(qf, q, 10, expect_two_stage=2)
    finally:
        vecstore.set_simd_level(before)
    check_same(qf, q, 10, expect_two_stage=2)


def test_validation():
    x = np.zeros((10, 4), dtype=np.float32)
    with pytest.raises(InvalidArgument, match="float32"):
        QuantizedFlat(x.astype(np.float16))
    with pytest.raises(InvalidArgument):
        QuantizedFlat(x, "HAMMING")
    with pytest.raises(InvalidArgument):
        QuantizedFlat(np.zeros((0, 4), dtype=np.float32))
    with pytest.raises(InvalidArgument):
        QuantizedFlat(x.T)
    qf = QuantizedFlat(x)
    with pytest.raises(InvalidArgument, match="dimension"):
        qf.search(np.zeros((1, 5), dtype=np.float32), 1)
    with pytest.raises(InvalidArgument):
        qf.search(np.zeros((1, 4), dtype=np.float16), 1)
    with pytest.raises(InvalidArgument, match="allow"):
        qf.search(np.zeros((1, 4), dtype=np.float32), 1, allow=np.ones(9, dtype=bool))
    with pytest.raises(InvalidArgument, match="NaN"):
        qf.search(np.full((1, 4), np.nan, dtype=np.float32), 1)
    assert qf.memory_bytes > 10 * 4
