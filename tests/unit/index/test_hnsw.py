"""HnswIndex: recall against exact k-NN, filtered search, edge cases, serialisation, errors."""

from __future__ import annotations

import mmap
import os

import numpy as np
import pytest

import vecstore
from vecstore.errors import CorruptionError, InvalidArgument, VecstoreError
from vecstore.index.hnsw import HnswIndex

SEED = int(os.environ.get("VECSTORE_SEED", "20261126"))
METRICS = ["L2", "IP", "COSINE"]
K = 10
EF = 64


def clustered(rng: np.random.Generator, n: int, dim: int, clusters: int = 50) -> np.ndarray:
    """n points around `clusters` Gaussian centres; split one call into base and queries so
    that both come from the same clusters."""
    centers = rng.normal(size=(clusters, dim)).astype(np.float32) * 4
    labels = rng.integers(0, clusters, n)
    return (centers[labels] + rng.normal(size=(n, dim)).astype(np.float32)).astype(np.float32)


def recall(ids: np.ndarray, ref: np.ndarray) -> float:
    hits = sum(len(set(a[a >= 0]) & set(b[b >= 0])) for a, b in zip(ids, ref))
    return hits / max(1, int((ref >= 0).sum()))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(SEED)
    x = clustered(rng, 10_200, 32)
    return x[:10_000], x[10_000:]


@pytest.fixture(scope="module")
def indexes(data):
    base, _ = data
    # One thread: the graphs (and so every result below) are deterministic.
    return {
        m: HnswIndex.build(base, m, M=16, ef_construction=100, seed=1, threads=1)
        for m in METRICS
    }


def exact_values(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "L2":
        return ((q64 - x64) ** 2).sum(-1)
    ip = (q64 * x64).sum(-1)
    if metric == "IP":
        return ip
    return ip / (np.linalg.norm(q64, axis=-1) * np.linalg.norm(x64, axis=-1))


@pytest.mark.parametrize("metric", METRICS)
def test_recall_and_values(data, indexes, metric):
    base, queries = data
    index = indexes[metric]
    stats: dict = {}
    ids, dist = index.search(queries, K, ef=EF, stats=stats)
    assert ids.shape == dist.shape == (len(queries), K)
    assert ids.dtype == np.int64 and dist.dtype == np.float32
    assert stats["graph_queries"] == len(queries) and stats["exact_queries"] == 0
    ref_ids, _ = vecstore.knn(queries, base, K, metric)
    assert recall(ids, ref_ids) >= 0.95
    # The returned values are the metric's values of the returned rows, best first.
    want = exact_values(queries[:, None, :], base[ids], metric)
    np.testing.assert_allclose(dist, want, rtol=1e-4, atol=1e-3)
    order = dist if metric == "L2" else -dist
    assert (np.diff(order, axis=1) >= 0).all()
    assert len({tuple(r) for r in ids}) > 1
    assert all(len(set(r)) == K for r in ids)


@pytest.mark.parametrize("metric", METRICS)
def test_threads_and_single_query_agree(data, indexes, metric):
    _, queries = data
    index = indexes[metric]
    ids1, d1 = index.search(queries[:50], K, ef=EF, threads=1)
    ids2, d2 = index.search(queries[:50], K, ef=EF, threads=0)
    ids3 = np.concatenate([index.search(q[None], K, ef=EF)[0] for q in queries[:50]])
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(ids1, ids3)


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_filtered_recall(data, indexes, fraction, metric):
    base, queries = data
    rng = np.random.default_rng(SEED + int(fraction * 1000))
    allow = rng.random(len(base)) < fraction
    allow[rng.integers(0, len(base))] = True
    ids, dist = indexes[metric].search(queries, K, ef=EF, allow=allow)
    ref_ids, ref_dist = vecstore.knn(queries, base, K, metric, allow=allow)
    hit = ids[ids >= 0]
    assert allow[hit].all(), "a disallowed row was returned"
    assert recall(ids, ref_ids) >= 0.95
    # Padding exactly where fewer than K rows are allowed.
    np.testing.assert_array_equal(ids < 0, ref_ids < 0)


def test_filtered_graph_path_keeps_recall(data, indexes):
    """At 50% of 10k rows the traversal (not the scan) answers; disallowed rows never show."""
    base, queries = data
    rng = np.random.default_rng(SEED + 7)
    allow = rng.random(len(base)) < 0.5
    stats: dict = {}
    # A large-ish k forces the graph path by making the estimate favour it on half of the rows.
    ids, _ = indexes["L2"].search(queries, K, ef=EF, allow=np.packbits(allow, bitorder="little"),
                                  stats=stats)
    ref_ids, _ = vecstore.knn(queries, base, K, "L2", allow=allow)
    assert allow[ids[ids >= 0]].all()
    assert recall(ids, ref_ids) >= 0.95
    assert stats["graph_queries"] + stats["exact_queries"] == len(queries)


def test_filtered_traversal_on_a_larger_graph():
    rng = np.random.default_rng(SEED + 3)
    x = clustered(rng, 20_100, 16, clusters=40)
    base, queries = x[:20_000], x[20_000:]
    index = HnswIndex.build(base, "L2", M=12, ef_construction=80, seed=3, threads=1)
    for fraction in (0.4, 0.7):
        allow = rng.random(len(base)) < fraction
        stats: dict = {}
        ids, _ = index.search(queries, K, ef=32, allow=allow, stats=stats)
        assert stats["graph_queries"] == len(queries), stats
        ref_ids, _ = vecstore.knn(queries, base, K, "L2", allow=allow)
        assert allow[ids[ids >= 0]].all()
        assert recall(ids, ref_ids) >= 0.95


def test_nothing_allowed(indexes, data):
    base, queries = data
    ids, dist = indexes["IP"].search(queries[:3], K, allow=np.zeros(len(base), dtype=bool))
    assert (ids == -1).all() and (dist == -np.inf).all()


@pytest.mark.parametrize("metric", METRICS)
def test_tiny_indexes(metric):
    rng = np.random.default_rng(SEED)
    one = rng.normal(size=(1, 8)).astype(np.float32)
    index = HnswIndex.build(one, metric, M=4, threads=1)
    ids, dist = index.search(one, 3)
    assert ids.tolist() == [[0, -1, -1]]
    pad = np.inf if metric == "L2" else -np.inf
    assert dist[0, 1] == pad and dist[0, 2] == pad
    five = rng.normal(size=(5, 8)).astype(np.float32)
    index = HnswIndex.build(five, metric, M=2, ef_construction=1, threads=1)
    q = rng.normal(size=(4, 8)).astype(np.float32)
    ids, dist = index.search(q, 8)
    ref_ids, _ = vecstore.knn(q, five, 5, metric)
    np.testing.assert_array_equal(ids[:, :5], ref_ids)
    assert (ids[:, 5:] == -1).all()
    # n < k through the exact (filtered) path pads the same way.
    ids2, _ = index.search(q, 8, allow=np.ones(5, dtype=bool))
    np.testing.assert_array_equal(ids2, ids)


def test_duplicates_and_equal_vectors():
    rng = np.random.default_rng(SEED)
    equal = np.ones((500, 8), dtype=np.float32)
    index = HnswIndex.build(equal, "L2", M=4, ef_construction=20, threads=1)
    ids, dist = index.search(equal[:2], 10)
    assert (dist == 0).all() and len(set(ids[0])) == 10 and (ids >= 0).all()
    pts = rng.normal(size=(300, 8)).astype(np.float32)
    dup = np.repeat(pts, 4, axis=0)  # every vector four times
    index = HnswIndex.build(dup, "L2", M=8, ef_construction=40, threads=1)
    ids, dist = index.search(pts[:20], 4, ef=32)
    for i, row in enumerate(ids):
        assert sorted(row.tolist()) == [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]
    np.testing.assert_array_equal(dist, 0)


def test_zero_vectors_cosine():
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(100, 8)).astype(np.float32)
    x[::10] = 0
    index = HnswIndex.build(x, "COSINE", M=8, threads=1)
    ids, dist = index.search(np.zeros((1, 8), dtype=np.float32), 5)
    assert (dist == 0).all() and (ids >= 0).all()
    ids, dist = index.search(x[1:2], 100, ef=100)
    assert ids[0, 0] == 1 and np.isclose(dist[0, 0], 1.0)
    found = ids[0] >= 0
    assert found.sum() >= 90
    zero_rows = found & (ids[0] % 10 == 0)
    assert zero_rows.any() and (dist[0][zero_rows] == 0).all()


def test_strided_base(data):
    base, queries = data
    wide = np.zeros((2000, 48), dtype=np.float32)
    wide[:, :32] = base[:2000]
    view = wide[:, :32]
    assert not view.flags.c_contiguous
    index = HnswIndex.build(view, "L2", M=8, seed=2, threads=1)
    ids, _ = index.search(queries[:20], K)
    ref_ids, _ = vecstore.knn(queries[:20], np.ascontiguousarray(view), K)
    assert recall(ids, ref_ids) >= 0.95


def test_deterministic_single_thread(data):
    base, _ = data
    a = HnswIndex.build(base[:2000], "L2", M=8, ef_construction=40, seed=5, threads=1)
    b = HnswIndex.build(base[:2000], "L2", M=8, ef_construction=40, seed=5, threads=1)
    c = HnswIndex.build(base[:2000], "L2", M=8, ef_construction=40, seed=6, threads=1)
    assert a.to_bytes() == b.to_bytes()
    assert a.to_bytes() != c.to_bytes()


def test_multithreaded_build_recall(data, indexes):
    base, queries = data
    single = HnswIndex.build(base, "L2", M=16, ef_construction=100, seed=1, threads=1)
    multi = HnswIndex.build(base, "L2", M=16, ef_construction=100, seed=1, threads=4)
    ref_ids, _ = vecstore.knn(queries, base, K, "L2")
    r1 = recall(single.search(queries, K, ef=EF)[0], ref_ids)
    r2 = recall(multi.search(queries, K, ef=EF)[0], ref_ids)
    assert r1 >= 0.95 and r2 >= 0.95 and abs(r1 - r2) < 0.03


@pytest.mark.parametrize("metric", METRICS)
def test_round_trip(data, indexes, metric, tmp_path):
    base, queries = data
    index = indexes[metric]
    blob = index.to_bytes()
    assert len(blob) == index.nbytes
    loaded = HnswIndex.from_bytes(blob, base)
    assert (loaded.M, loaded.ef_construction, loaded.metric, loaded.rows, loaded.dim) == (
        16, 100, metric, len(base), 32)
    ids, dist = index.search(queries, K, ef=EF)
    ids2, dist2 = loaded.search(queries, K, ef=EF)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(dist, dist2)
    assert loaded.to_bytes() == blob
    # A memory-mapped file, read in place; and a misaligned copy.
    path = tmp_path / "index.hnsw"
    path.write_bytes(blob)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    mapped = HnswIndex.from_bytes(mm, base)
    np.testing.assert_array_equal(mapped.search(queries, K, ef=EF)[0], ids)
    del mapped
    mm.close()
    odd = np.frombuffer(b"\0" + blob, dtype=np.uint8)[1:]
    np.testing.assert_array_equal(HnswIndex.from_bytes(odd, base).search(queries, K, ef=EF)[0],
                                  ids)


def test_corrupt_buffers(data, indexes):
    base, _ = data
    blob = indexes["COSINE"].to_bytes()
    with pytest.raises(CorruptionError, match="truncated|size"):
        HnswIndex.from_bytes(blob[:-1], base)
    for cut in (0, 10, 127, 128, 1000, len(blob) // 2):
        with pytest.raises(VecstoreError):
            HnswIndex.from_bytes(blob[:cut], base)
    with pytest.raises(CorruptionError, match="magic"):
        HnswIndex.from_bytes(b"X" + blob[1:], base)
    rng = np.random.default_rng(SEED)
    for pos in rng.integers(0, len(blob), 40).tolist() + list(range(0, 128, 3)):
        bad = bytearray(blob)
        bad[pos] ^= 0x5A
        with pytest.raises(CorruptionError):
            HnswIndex.from_bytes(bytes(bad), base)
    with pytest.raises(InvalidArgument, match="same matrix"):
        HnswIndex.from_bytes(blob, base[:-1])


def _reseal(image: bytearray) -> bytes:
    """Recomputes both checksums, so that only the structural checks can catch a change."""
    from vecstore import _core

    image[184:188] = _core.crc32c(bytes(image[192:])).to_bytes(4, "little")
    image[188:192] = _core.crc32c(bytes(image[:188])).to_bytes(4, "little")
    return bytes(image)


def test_inconsistent_images_with_valid_checksums(data, indexes):
    base, queries = data
    blob = indexes["L2"].to_bytes()
    assert HnswIndex.from_bytes(_reseal(bytearray(blob)), base).rows == len(base)
    links0 = int.from_bytes(blob[96:104], "little")
    upper = int.from_bytes(blob[104:112], "little")
    levels = int.from_bytes(blob[80:88], "little")
    level0_row = int(np.argmin(np.frombuffer(blob, np.uint8, len(base), levels)))
    cases = {
        "links to row": [(links0, 1), (links0 + 4, len(base) + 5)],
        "neighbours, more than": [(links0, 999)],
        "not on that level": [(upper, 1), (upper + 4, level0_row)],
    }
    for message, writes in cases.items():
        bad = bytearray(blob)
        for offset, value in writes:
            bad[offset:offset + 4] = int(value).to_bytes(4, "little")
        with pytest.raises(CorruptionError, match=message):
            HnswIndex.from_bytes(_reseal(bad), base)
    bad = bytearray(blob)
    bad[levels] = 60  # above the top level
    with pytest.raises(CorruptionError):
        HnswIndex.from_bytes(_reseal(bad), base)
    bad = bytearray(blob)
    bad[8] = 9  # another major version
    with pytest.raises(CorruptionError, match="version 9"):
        HnswIndex.from_bytes(_reseal(bad), base)


def test_bad_inputs(data, indexes):
    base, queries = data
    index = indexes["L2"]
    with pytest.raises(InvalidArgument, match="float32"):
        HnswIndex.build(base.astype(np.float64), "L2")
    with pytest.raises(InvalidArgument, match="M must be"):
        HnswIndex.build(base, "L2", M=1)
    with pytest.raises(InvalidArgument, match="M must be"):
        HnswIndex.build(base, "L2", M=4096)
    with pytest.raises(InvalidArgument, match="ef_construction"):
        HnswIndex.build(base, "L2", ef_construction=0)
    with pytest.raises(InvalidArgument, match="HAMMING|metric"):
        HnswIndex.build(base, "HAMMING")
    with pytest.raises(InvalidArgument, match="no rows"):
        HnswIndex.build(base[:0], "L2")
    nan = base[:10].copy()
    nan[3, 1] = np.nan
    with pytest.raises(InvalidArgument, match="row 3"):
        HnswIndex.build(nan, "L2")
    bad_q = queries[:4].copy()
    bad_q[2, 5] = np.inf
    with pytest.raises(InvalidArgument, match="row 2"):
        index.search(bad_q, 10)
    with pytest.raises(InvalidArgument, match="ef must be at least k"):
        index.search(queries, 10, ef=5)
    with pytest.raises(InvalidArgument, match="k must be"):
        index.search(queries, 0)
    with pytest.raises(InvalidArgument, match="dimension mismatch"):
        index.search(queries[:, :8].copy(), 10)
    with pytest.raises(InvalidArgument, match="2-D"):
        index.search(queries[0], 10)
    with pytest.raises(InvalidArgument, match="allow"):
        index.search(queries, 10, allow=np.ones(5, dtype=bool))
    with pytest.raises(InvalidArgument, match="bytes-like"):
        HnswIndex.from_bytes(12, base)
    with pytest.raises(InvalidArgument, match="threads"):
        index.search(queries, 10, threads=-1)


# ---- HNSW_SQ (sq_type, refine, refine_k) ----------------------------------------------------

SQ_TYPES = ["SQ8", "FP16", "BF16"]
# Recall@10 at ef=64 from the codes alone, and the largest relative error of a reported value
# (against |value| + 1) on this data: the quantisers' resolution, with some margin.
SQ_RECALL = {"SQ8": 0.85, "FP16": 0.97, "BF16": 0.93}
SQ_VALUE_RTOL = {"SQ8": 0.05, "FP16": 2e-3, "BF16": 1.5e-2}
_SQ_CACHE: dict = {}


def sq_index(base: np.ndarray, metric: str, sq_type: str, refine: bool = False,
             refine_k: float = 1.0) -> HnswIndex:
    """One index per parameter set for the module (one thread: the graph is the same for every
    sq_type and refine, as the graph is built from the float32 rows)."""
    key = (metric, sq_type, refine, refine_k)
    if key not in _SQ_CACHE:
        _SQ_CACHE[key] = HnswIndex.build(base, metric, M=16, ef_construction=100, seed=1,
                                         threads=1, sq_type=sq_type, refine=refine,
                                         refine_k=refine_k)
    return _SQ_CACHE[key]


@pytest.mark.parametrize("sq_type", SQ_TYPES)
@pytest.mark.parametrize("metric", METRICS)
def test_sq_recall_and_quantised_values(data, metric, sq_type):
    base, queries = data
    index = sq_index(base, metric, sq_type)
    assert (index.sq_type, index.refine, index.refine_k) == (sq_type, False, 1.0)
    ids, dist = index.search(queries, K, ef=EF)
    ref_ids, _ = vecstore.knn(queries, base, K, metric)
    assert recall(ids, ref_ids) >= SQ_RECALL[sq_type]
    # refine=False: values come from the codes, close to (not equal to) the exact ones.
    want = exact_values(queries[:, None, :], base[ids], metric)
    err = np.abs(dist - want) / (np.abs(want) + 1.0)
    assert err.max() <= SQ_VALUE_RTOL[sq_type]
    order = dist if metric == "L2" else -dist
    assert (np.diff(order, axis=1) >= 0).all()


@pytest.mark.parametrize("sq_type", SQ_TYPES)
@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_sq_refine_gives_exact_values(data, metric, sq_type):
    base, queries = data
    ref_ids, _ = vecstore.knn(queries, base, K, metric)
    plain_ids, _ = sq_index(base, metric, sq_type).search(queries, K, ef=EF)
    index = sq_index(base, metric, sq_type, refine=True, refine_k=3.0)
    assert (index.refine, index.refine_k) == (True, 3.0)
    ids, dist = index.search(queries, K, ef=EF)
    want = exact_values(queries[:, None, :], base[ids], metric)
    np.testing.assert_allclose(dist, want, rtol=1e-4, atol=1e-3)
    order = dist if metric == "L2" else -dist
    assert (np.diff(order, axis=1) >= 0).all()
    assert recall(ids, ref_ids) >= max(0.95, recall(plain_ids, ref_ids))
    # refine_k=1 re-ranks exactly the k candidates the codes chose: the same rows as refine=False.
    ids1, dist1 = index.search(queries, K, ef=EF, refine_k=1)
    assert [set(a) for a in ids1] == [set(a) for a in plain_ids]
    np.testing.assert_allclose(dist1, exact_values(queries[:, None, :], base[ids1], metric),
                               rtol=1e-4, atol=1e-3)


def test_plain_hnsw_values_are_exact_and_kind_is_reported(data, indexes):
    index = indexes["L2"]
    assert (index.sq_type, index.refine, index.refine_k) == (None, False, 1.0)
    assert "sq_type=None" in repr(index)


@pytest.mark.parametrize("sq_type", [None, *SQ_TYPES])
def test_sq_round_trip(data, sq_type, tmp_path):
    base, queries = data
    index = sq_index(base, "IP", sq_type, refine=sq_type is not None,
                     refine_k=2.5 if sq_type else 1.0)
    blob = index.to_bytes()
    assert len(blob) == index.nbytes
    back = HnswIndex.from_bytes(blob, base)
    assert (back.sq_type, back.refine, back.refine_k) == (index.sq_type, index.refine,
                                                           index.refine_k)
    a, b = index.search(queries, K, ef=EF), back.search(queries, K, ef=EF)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_code_section_sizes(data):
    base, _ = data
    sizes = {t: sq_index(base, "IP", t).nbytes for t in SQ_TYPES}
    # FP16 / BF16 rows are 64 bytes for 32 dims, SQ8 rows 64 bytes too (whole cache lines), plus
    # SQ8's 2 x 32 float parameters.
    assert sizes["FP16"] == sizes["BF16"]
    assert sizes["SQ8"] == sizes["FP16"] + 256


@pytest.mark.parametrize("sq_type", ["SQ8", "FP16", "BF16", None])
def test_serial_kernels_match(data, sq_type):
    base, queries = data
    index = sq_index(base, "L2", sq_type)
    ids, dist = index.search(queries, K, ef=EF)
    before = vecstore.simd_level()
    try:
        vecstore.set_simd_level("serial")
        ids_s, dist_s = index.search(queries, K, ef=EF)
    finally:
        vecstore.set_simd_level(before)
    assert (ids == ids_s).mean() >= 0.99  # float rounding may swap near-ties
    same = ids == ids_s
    np.testing.assert_allclose(dist[same], dist_s[same], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("sq_type", SQ_TYPES)
def test_sq_filtered_recall(data, sq_type):
    base, queries = data
    index = sq_index(base, "L2", sq_type, refine=True, refine_k=2.0)
    rng = np.random.default_rng(SEED + 7)
    for fraction in (0.001, 0.05, 0.5):
        allow = rng.random(len(base)) < fraction
        ids, _ = index.search(queries, K, ef=EF, allow=allow)
        ref_ids, _ = vecstore.knn(queries, base, K, "L2", allow=allow)
        assert recall(ids, ref_ids) >= 0.95
        assert allow[ids[ids >= 0]].all()


def test_sq_corrupt_images(data):
    base, _ = data
    blob = sq_index(base, "L2", "SQ8", refine=True, refine_k=2.0).to_bytes()
    codes = int.from_bytes(blob[144:152], "little")
    params = int.from_bytes(blob[136:144], "little")
    assert 0 < params < codes < len(blob)
    rng = np.random.default_rng(SEED)
    for pos in rng.integers(codes, len(blob), 10).tolist() + [params + 5, 121, 130, 150, 170]:
        bad = bytearray(blob)
        bad[pos] ^= 0x21
        with pytest.raises(CorruptionError):
            HnswIndex.from_bytes(bytes(bad), base)
    cases = {
        "bad sq_type": [(120, (9).to_bytes(4, "little"))],
        "code row size": [(124, (32).to_bytes(4, "little"))],
        "refine": [(128, np.float64(0.5).tobytes()), (60, (0).to_bytes(4, "little"))],
        "reserved": [(160, b"\x01")],
        "section offsets": [(144, (codes + 64).to_bytes(8, "little"))],
        "SQ8 parameters": [(params, np.float32(np.nan).tobytes())],
    }
    for message, writes in cases.items():
        for offset, value in writes:
            bad = bytearray(blob)
            bad[offset:offset + len(value)] = value
            with pytest.raises(CorruptionError, match=message):
                HnswIndex.from_bytes(_reseal(bad), base)
    # A refine flag on a plain HNSW image.
    plain = bytearray(sq_index(base, "L2", None).to_bytes())
    plain[60] = 1
    with pytest.raises(CorruptionError, match="refine"):
        HnswIndex.from_bytes(_reseal(plain), base)


def test_sq_bad_params(data, indexes):
    base, queries = data
    small = base[:50]
    for bad in ("SQ4U", "SQ6", "fp32", "", 8):
        with pytest.raises(InvalidArgument, match="SQ8, FP16, BF16"):
            HnswIndex.build(small, "L2", sq_type=bad)
    assert HnswIndex.build(small, "L2", sq_type="fp16").sq_type == "FP16"
    with pytest.raises(InvalidArgument, match="refine applies to HNSW_SQ"):
        HnswIndex.build(small, "L2", refine=True)
    with pytest.raises(InvalidArgument, match="refine_k applies only with refine"):
        HnswIndex.build(small, "L2", sq_type="SQ8", refine_k=2.0)
    for rk in (0.5, 0, -1, float("nan"), float("inf"), "2", True):
        with pytest.raises(InvalidArgument, match="refine_k"):
            HnswIndex.build(small, "L2", sq_type="SQ8", refine=True, refine_k=rk)
    with pytest.raises(InvalidArgument, match="refine must be a bool"):
        HnswIndex.build(small, "L2", sq_type="SQ8", refine="yes")
    with pytest.raises(InvalidArgument, match="refine_k applies to HNSW_SQ"):
        indexes["L2"].search(queries, K, refine_k=2)
    with pytest.raises(InvalidArgument, match="refine_k applies to HNSW_SQ"):
        sq_index(base, "L2", "SQ8").search(queries, K, refine_k=2)
    refined = sq_index(base, "L2", "SQ8", refine=True, refine_k=2.0)
    with pytest.raises(InvalidArgument, match="refine_k"):
        refined.search(queries, K, refine_k=0.9)
