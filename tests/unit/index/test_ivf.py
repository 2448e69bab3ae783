"""IVF_FLAT / IVF_SQ8 / IVF_PQ (vecstore.index.ivf) against exact search."""

from __future__ import annotations

import numpy as np
import pytest

import vecstore
from vecstore.errors import CorruptionError, InvalidArgument, VecstoreError
from vecstore.index.ivf import IvfIndex, kmeans

N, DIM, NLIST, K = 20_000, 32, 128, 10
METRICS = ("L2", "IP", "COSINE")
KINDS = ("IVF_FLAT", "IVF_SQ8", "IVF_PQ")


def _clustered(seed: int, n: int, dim: int, centres: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim), dtype=np.float32) * 3
    noise = rng.standard_normal((n, dim), dtype=np.float32)
    return (c[rng.integers(0, centres, n)] + noise).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    base = _clustered(11, N, DIM)
    rng = np.random.default_rng(12)
    q = base[rng.integers(0, N, 100)] + 0.5 * rng.standard_normal((100, DIM), dtype=np.float32)
    return base, q.astype(np.float32)


_CACHE: dict = {}


def _index(base: np.ndarray, kind: str, metric: str) -> IvfIndex:
    key = (id(base), kind, metric)
    if key not in _CACHE:
        m = 8 if kind == "IVF_PQ" else None
        _CACHE[key] = IvfIndex.build(base, kind, metric, nlist=NLIST, m=m, seed=3)
    return _CACHE[key]


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(ids, truth)]))


# ---- k-means ------------------------------------------------------------------------------------


def _inertia(x: np.ndarray, c: np.ndarray) -> float:
    return float(vecstore.knn(x, c, 1, "L2")[1].astype(np.float64).sum())


def test_kmeans_beats_random_centroids_and_is_deterministic():
    x = _clustered(1, 5000, 16, centres=20)
    c1, inertia = kmeans(x, 20, niter=10, seed=7)
    c2, _ = kmeans(x, 20, niter=10, seed=7, threads=1)
    np.testing.assert_array_equal(c1, c2)
    rng = np.random.default_rng(0)
    random_c = x[rng.choice(len(x), 20, replace=False)]
    assert _inertia(x, c1) < 0.8 * _inertia(x, random_c)
    assert inertia == pytest.approx(_inertia(x, c1), rel=1e-4)
    c0, _ = kmeans(x, 20, niter=0, seed=7)
    assert _inertia(x, c1) <= _inertia(x, c0)
    c3, _ = kmeans(x, 20, niter=10, seed=8)
    assert not np.array_equal(c1, c3)


def test_kmeans_reseeds_empty_clusters():
    # 40 distinct points (each repeated) and k=40: every cluster must end up populated.
    rng = np.random.default_rng(3)
    pts = rng.standard_normal((40, 4), dtype=np.float32) * 10
    x = np.repeat(pts, 5, axis=0)
    c, inertia = kmeans(x, 40, niter=20, seed=1)
    ids = vecstore.knn(x, c, 1, "L2")[0].ravel()
    assert len(np.unique(ids)) >= 36
    assert np.isfinite(inertia)


def test_build_is_deterministic(data):
    base, _ = data
    a = IvfIndex.build(base[:4000], "IVF_PQ", "L2", nlist=32, m=8, seed=5)
    b = IvfIndex.build(base[:4000], "IVF_PQ", "L2", nlist=32, m=8, seed=5, threads=1)
    assert a.to_bytes() == b.to_bytes()


# ---- exactness and recall -----------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_ivf_flat_full_probe_equals_knn(data, metric):
    base, q = data
    ix = _index(base, "IVF_FLAT", metric)
    ids, dist = ix.search(q[:20], K, nprobe=NLIST)
    for i in range(20):
        e_ids, e_dist = vecstore.knn(q[i : i + 1], base, K, metric)
        np.testing.assert_array_equal(ids[i], e_ids[0])
        np.testing.assert_array_equal(dist[i], e_dist[0])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_recall_at_moderate_nprobe(data, kind, metric):
    base, q = data
    ix = _index(base, kind, metric)
    truth = vecstore.knn(q, base, K, metric)[0]
    ids, dist = ix.search(q, K, nprobe=16)
    assert _recall(ids, truth) >= 0.95
    # Exact (FLAT, or re-ranked) distances: those of the returned rows, recomputed.
    for i in range(0, len(q), 25):
        e = vecstore.cdist(q[i : i + 1], base[ids[i]], metric)[0]
        np.testing.assert_allclose(dist[i], e, rtol=1e-5, atol=1e-4)
    order = dist if metric == "L2" else -dist
    assert np.all(np.diff(order, axis=1) >= 0)


@pytest.mark.parametrize("kind", ("IVF_SQ8", "IVF_PQ"))
def test_without_rerank_reports_approximate_values(data, kind):
    base, q = data
    ix = _index(base, kind, "L2")
    ids, dist = ix.search(q, K, nprobe=16, rerank=False)
    exact = np.array([vecstore.cdist(q[i : i + 1], base[ids[i]], "L2")[0] for i in range(len(q))])
    assert np.all(ids >= 0)
    assert np.median(np.abs(dist - exact) / np.maximum(exact, 1e-3)) < 0.2
    assert _recall(ids, vecstore.knn(q, base, K, "L2")[0]) >= 0.5


def test_threads_do_not_change_results(data):
    base, q = data
    for kind in KINDS:
        ix = _index(base, kind, "L2")
        a = ix.search(q, K, nprobe=8, threads=1)
        b = ix.search(q, K, nprobe=8, threads=0)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_ivf_flat_scans_its_own_list_ordered_copy(data):
    base, q = data
    ix = _index(base, "IVF_FLAT", "L2")
    # The image holds every row's float32 vector (list order) besides ids and centroids.
    assert ix.memory_bytes >= N * DIM * 4 + N * 8 + NLIST * DIM * 4
    want = ix.search(q, K, nprobe=8)
    # Opened over a different matrix of the same shape, IVF_FLAT still answers from its copy.
    back = IvfIndex.from_bytes(ix.to_bytes(), np.zeros_like(base))
    got = back.search(q, K, nprobe=8)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("metric", METRICS)
def test_ivf_flat_ties_list_smaller_id_first(metric):
    # Duplicated rows spread over lists: equal values must come back in id order, as knn's.
    rng = np.random.default_rng(9)
    pts = rng.standard_normal((25, 8), dtype=np.float32)
    base = np.ascontiguousarray(np.repeat(pts, 20, axis=0)[rng.permutation(500)])
    ix = IvfIndex.build(base, "IVF_FLAT", metric, nlist=16, seed=1)
    ids, dist = ix.search(pts[:4], 30, nprobe=16)
    for i in range(4):
        e_ids, e_dist = vecstore.knn(pts[i : i + 1], base, 30, metric)
        np.testing.assert_array_equal(ids[i], e_ids[0])
        np.testing.assert_array_equal(dist[i], e_dist[0])


# ---- allow masks --------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("kind", KINDS)
def test_allow_mask_is_honoured(data, kind, fraction):
    base, q = data
    rng = np.random.default_rng(int(fraction * 1000))
    allow = rng.random(N) < fraction
    ix = _index(base, kind, "L2")
    ids, dist = ix.search(q[:30], K, nprobe=16, allow=allow)
    got = ids[ids >= 0]
    assert allow[got].all()
    assert np.all(np.isinf(dist[ids < 0]))
    # With every list probed, the allowed rows are all reachable: as many results as allowed.
    ids_all, _ = ix.search(q[:30], K, nprobe=NLIST, allow=allow)
    assert np.all((ids_all >= 0).sum(axis=1) == min(K, int(allow.sum())))
    if kind == "IVF_FLAT":
        e_ids = np.stack([vecstore.knn(q[i : i + 1], base, K, "L2", allow=allow)[0][0]
                          for i in range(30)])
        np.testing.assert_array_equal(ids_all, e_ids)


def test_missing_slots_padded(data):
    base, q = data
    for metric, pad in (("L2", np.inf), ("IP", -np.inf)):
        ix = _index(base, "IVF_FLAT", metric)
        allow = np.zeros(N, dtype=bool)
        allow[[5, 17, 900]] = True
        ids, dist = ix.search(q[:3], K, nprobe=NLIST, allow=allow)
        assert np.all(ids[:, 3:] == -1) and np.all(dist[:, 3:] == pad)
        assert set(ids[0, :3]) == {5, 17, 900}


# ---- serialisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(data, kind):
    base, q = data
    ix = _index(base, kind, "COSINE")
    buf = ix.to_bytes()
    want = ix.search(q, K, nprobe=8)
    for wrapped in (buf, bytearray(buf), memoryview(buf), memoryview(b"x" + buf)[1:]):
        back = IvfIndex.from_bytes(wrapped, base)
        assert (back.kind, back.metric, back.nlist, back.rows, back.dim) == (
            kind, "COSINE", NLIST, N, DIM)
        got = back.search(q, K, nprobe=8)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert back.to_bytes() == buf
    assert ix.m == (8 if kind == "IVF_PQ" else None)


def test_corrupt_buffers_raise(data):
    base, _ = data
    small = base[:2000]
    ix = IvfIndex.build(small, "IVF_PQ", "L2", nlist=16, m=8)
    buf = ix.to_bytes()
    for cut in (0, 1, 63, 64, 67, 100, len(buf) // 2, len(buf) - 1):
        with pytest.raises(CorruptionError):
            IvfIndex.from_bytes(buf[:cut], small)
    with pytest.raises(CorruptionError):
        IvfIndex.from_bytes(buf + b"\0", small)
    rng = np.random.default_rng(4)
    for pos in list(range(0, 64, 3)) + list(rng.integers(64, len(buf), 40)):
        bad = bytearray(buf)
        bad[pos] ^= 0x5A
        with pytest.raises(VecstoreError):
            IvfIndex.from_bytes(bytes(bad), small)
    with pytest.raises(CorruptionError):
        IvfIndex.from_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), small)
    old = bytearray(buf)
    old[8:10] = (1).to_bytes(2, "little")  # a version-1 image (IVF_FLAT lists held ids only)
    with pytest.raises(CorruptionError, match="format version 1 is not supported"):
        IvfIndex.from_bytes(bytes(old), small)
    with pytest.raises(InvalidArgument, match="does not match"):
        IvfIndex.from_bytes(buf, base[:1999])
    with pytest.raises(InvalidArgument, match="bytes-like"):
        IvfIndex.from_bytes("not bytes", small)


# ---- parameters ---------------------------------------------------------------------------------


def test_tiny_inputs_are_refused_clearly():
    x = _clustered(2, 50, 8)
    with pytest.raises(InvalidArgument, match="nlist=64 exceeds the number of rows"):
        IvfIndex.build(x, "IVF_FLAT", nlist=64)
    ix = IvfIndex.build(x, "IVF_SQ8", nlist=50)
    ids, _ = ix.search(x[:2], 60, nprobe=50)
    assert (ids[0] >= 0).sum() == 50 and ids[0, 0] == 0
    with pytest.raises(InvalidArgument, match="at least 256 rows"):
        IvfIndex.build(x, "IVF_PQ", nlist=4, m=4)
    one = IvfIndex.build(x[:1], "IVF_FLAT", nlist=1)
    assert one.search(x[:1], 1, nprobe=1)[0][0, 0] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nlist": 0}, "nlist must be between 1 and 65536"),
        ({"nlist": 65537}, "nlist must be between 1 and 65536"),
        ({"kind": "IVF_PQ", "m": 5}, "does not divide dim"),
        ({"kind": "IVF_PQ"}, "IVF_PQ needs m"),
        ({"kind": "IVF_PQ", "m": 4, "nbits": 4}, "nbits=4 is not supported"),
        ({"kind": "IVF_FLAT", "m": 4}, "m applies to IVF_PQ only"),
        ({"kind": "HNSW"}, "kind must be one of"),
        ({"metric": "HAMMING"}, "HAMMING needs binary"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_build_params(data, kwargs, match):
    base, _ = data
    args = {"kind": "IVF_FLAT", "nlist": 16, **kwargs}
    with pytest.raises(InvalidArgument, match=match):
        IvfIndex.build(base[:1000], **args)


def test_bad_inputs(data):
    base, q = data
    with pytest.raises(InvalidArgument, match="float32"):
        IvfIndex.build(base[:1000].astype(np.float64), nlist=8)
    bad = base[:1000].copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidArgument, match="row 3"):
        IvfIndex.build(bad, nlist=8)
    ix = _index(base, "IVF_FLAT", "L2")
    with pytest.raises(InvalidArgument, match="nprobe must be between 1 and 128"):
        ix.search(q, K, nprobe=129)
    with pytest.raises(InvalidArgument, match="nprobe"):
        ix.search(q, K, nprobe=0)
    with pytest.raises(InvalidArgument, match="k must be"):
        ix.search(q, 0)
    with pytest.raises(InvalidArgument, match="dimension mismatch"):
        ix.search(q[:, :16].copy(), K)
    with pytest.raises(InvalidArgument, match="allow must be a boolean"):
        ix.search(q, K, allow=np.ones(10, dtype=bool))


def test_nonfinite_query_is_named(data):
    base, q = data
    ix = _index(base, "IVF_SQ8", "L2")
    bad = q[:5].copy()
    bad[2, 7] = np.inf
    with pytest.raises(InvalidArgument, match="queries row 2"):
        ix.search(bad, K)
