"""BIN_IVF_FLAT (vecstore.index.bin_ivf) against a numpy brute-force oracle and vecstore.knn."""

from __future__ import annotations

import numpy as np
import pytest

import vecstore
from vecstore.errors import CorruptionError, InvalidArgument, VecstoreError
from vecstore.index.bin_ivf import BinIvfIndex

N, BITS, NLIST, K = 6_000, 256, 64, 10
METRICS = ("HAMMING", "JACCARD")


def _clustered_bits(seed: int, n: int, bits: int, centres: int = 48, flip: float = 0.15):
    """Packed rows: random centre bit patterns with each bit flipped with probability `flip`."""
    rng = np.random.default_rng(seed)
    c = rng.random((centres, bits)) < rng.uniform(0.2, 0.6, (centres, 1))
    x = c[rng.integers(0, centres, n)] ^ (rng.random((n, bits)) < flip)
    return np.packbits(x.astype(np.uint8), axis=1, bitorder="little")


def _oracle(q: np.ndarray, base: np.ndarray, metric: str) -> np.ndarray:
    """(len(q), len(base)) float64 distances from unpacked bits."""
    a = np.unpackbits(q, axis=1, bitorder="little").astype(np.int64)
    b = np.unpackbits(base, axis=1, bitorder="little").astype(np.int64)
    inter = a @ b.T
    na, nb = a.sum(1)[:, None], b.sum(1)[None, :]
    if metric == "HAMMING":
        return (na + nb - 2 * inter).astype(np.float64)
    union = na + nb - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union == 0, 0.0, 1.0 - inter / np.maximum(union, 1))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    base = _clustered_bits(21, N, BITS)
    q = _clustered_bits(21, N + 40, BITS)[N:]  # same centres, held-out rows
    return base, q


_CACHE: dict = {}


def _index(base: np.ndarray, metric: str) -> BinIvfIndex:
    key = (id(base), metric)
    if key not in _CACHE:
        _CACHE[key] = BinIvfIndex.build(base, metric, nlist=NLIST, seed=2)
    return _CACHE[key]


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(ids, truth)]))


@pytest.mark.parametrize("metric", METRICS)
def test_full_probe_equals_knn_and_numpy(data, metric):
    base, q = data
    ix = _index(base, metric)
    ids, dist = ix.search(q, K, nprobe=NLIST)
    e_ids, e_dist = vecstore.knn(q, base, K, metric)
    np.testing.assert_array_equal(ids, e_ids)
    np.testing.assert_array_equal(dist, e_dist)
    assert dist.dtype == np.float32 and ids.dtype == np.int64
    full = _oracle(q, base, metric)
    for i in range(len(q)):
        np.testing.assert_allclose(dist[i], full[i, ids[i]], rtol=1e-6, atol=1e-6)
        # The k-th best value matches numpy's (tie order aside).
        np.testing.assert_allclose(dist[i, -1], np.sort(full[i])[K - 1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_recall_and_order_at_small_nprobe(data, metric):
    base, q = data
    ix = _index(base, metric)
    truth = vecstore.knn(q, base, K, metric)[0]
    ids, dist = ix.search(q, K, nprobe=8)
    assert _recall(ids, truth) >= 0.9
    assert np.all(np.diff(dist, axis=1) >= 0)
    assert np.all(ids >= 0)
    full = _oracle(q, base, metric)
    for i in range(len(q)):
        np.testing.assert_allclose(dist[i], full[i, ids[i]], rtol=1e-6, atol=1e-6)


def test_every_row_in_one_list_and_deterministic(data):
    base, q = data
    ix = _index(base, "HAMMING")
    sizes = ix.list_sizes
    assert sizes.sum() == N and sizes.shape == (NLIST,)
    assert ix.centroids.shape == (NLIST, BITS // 8) and ix.centroids.dtype == np.uint8
    again = BinIvfIndex.build(base, "HAMMING", nlist=NLIST, seed=2, threads=1)
    assert again.to_bytes() == ix.to_bytes()
    other = BinIvfIndex.build(base, "HAMMING", nlist=NLIST, seed=3)
    assert other.to_bytes() != ix.to_bytes()
    a = ix.search(q, K, nprobe=4, threads=1)
    b = ix.search(q, K, nprobe=4, threads=0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_hamming_ties_list_smaller_id_first():
    # Many duplicate rows: equal distances everywhere, spread over several lists.
    rng = np.random.default_rng(5)
    pts = np.packbits(rng.random((20, 64)) < 0.5, axis=1, bitorder="little")
    base = np.repeat(pts, 30, axis=0)[rng.permutation(600)]
    ix = BinIvfIndex.build(base, "HAMMING", nlist=16, seed=1)
    q = pts[:5]
    ids, dist = ix.search(q, 40, nprobe=16)
    e_ids, e_dist = vecstore.knn(q, base, 40, "HAMMING")
    np.testing.assert_array_equal(ids, e_ids)
    np.testing.assert_array_equal(dist, e_dist)


@pytest.mark.parametrize("fraction", [0.0, 0.005, 0.1, 1.0])
def test_allow_mask(data, fraction):
    base, q = data
    rng = np.random.default_rng(int(fraction * 1000) + 1)
    allow = rng.random(N) < fraction
    ix = _index(base, "JACCARD")
    ids, dist = ix.search(q[:10], K, nprobe=NLIST, allow=allow)
    assert allow[ids[ids >= 0]].all()
    assert np.all(np.isinf(dist[ids < 0]))
    e_ids, e_dist = vecstore.knn(q[:10], base, K, "JACCARD", allow=allow)
    np.testing.assert_array_equal(ids, e_ids)
    np.testing.assert_array_equal(dist, e_dist)
    packed = np.packbits(allow, bitorder="little")
    np.testing.assert_array_equal(ix.search(q[:10], K, nprobe=4, allow=packed)[0],
                                  ix.search(q[:10], K, nprobe=4, allow=allow)[0])


def test_all_zero_vectors_jaccard():
    rng = np.random.default_rng(8)
    base = np.packbits(rng.random((300, 32)) < 0.3, axis=1, bitorder="little")
    base[:5] = 0
    ix = BinIvfIndex.build(base, "JACCARD", nlist=8)
    ids, dist = ix.search(np.zeros((1, 4), dtype=np.uint8), 7, nprobe=8)
    assert set(ids[0, :5]) == {0, 1, 2, 3, 4} and np.all(dist[0, :5] == 0)
    assert np.all(dist[0, 5:] == 1.0)


def test_round_trip_zero_copy(data):
    base, q = data
    ix = _index(base, "JACCARD")
    buf = ix.to_bytes()
    want = ix.search(q, K, nprobe=6)
    for wrapped in (buf, bytearray(buf), memoryview(buf), memoryview(b"x" + buf)[1:]):
        back = BinIvfIndex.from_bytes(wrapped)
        assert (back.metric, back.nlist, back.rows, back.dim) == ("JACCARD", NLIST, N, BITS)
        got = back.search(q, K, nprobe=6)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert back.to_bytes() == buf
    assert ix.memory_bytes == len(buf)


def test_corrupt_buffers_raise():
    base = _clustered_bits(3, 500, 64)
    buf = BinIvfIndex.build(base, "HAMMING", nlist=8).to_bytes()
    for cut in (0, 1, 63, 64, 67, len(buf) // 2, len(buf) - 1):
        with pytest.raises(CorruptionError):
            BinIvfIndex.from_bytes(buf[:cut])
    with pytest.raises(CorruptionError):
        BinIvfIndex.from_bytes(buf + b"\0")
    rng = np.random.default_rng(4)
    for pos in list(range(0, 64, 3)) + list(rng.integers(64, len(buf), 40)):
        bad = bytearray(buf)
        bad[pos] ^= 0x5A
        with pytest.raises(VecstoreError):
            BinIvfIndex.from_bytes(bytes(bad))
    with pytest.raises(CorruptionError, match="format version"):
        bad = bytearray(buf)
        bad[8] = 9
        BinIvfIndex.from_bytes(bytes(bad))
    with pytest.raises(CorruptionError, match="bad magic"):
        BinIvfIndex.from_bytes(b"VSIVF\0\0\1" + buf[8:])
    with pytest.raises(InvalidArgument, match="bytes-like"):
        BinIvfIndex.from_bytes("not bytes")


def test_bad_arguments(data):
    base, q = data
    with pytest.raises(InvalidArgument, match="binary vectors packed into uint8"):
        BinIvfIndex.build(base.astype(np.float32), nlist=8)
    with pytest.raises(InvalidArgument, match="metric L2 needs float"):
        BinIvfIndex.build(base, "L2", nlist=8)
    with pytest.raises(InvalidArgument, match="nlist=7000 exceeds"):
        BinIvfIndex.build(base, nlist=7000)
    with pytest.raises(InvalidArgument, match="nlist must be"):
        BinIvfIndex.build(base, nlist=0)
    ix = _index(base, "HAMMING")
    with pytest.raises(InvalidArgument, match="nprobe must be between 1 and 64"):
        ix.search(q, K, nprobe=65)
    with pytest.raises(InvalidArgument, match="k must be"):
        ix.search(q, 0)
    with pytest.raises(InvalidArgument, match="dimension mismatch"):
        ix.search(q[:, :8].copy(), K)
    with pytest.raises(InvalidArgument, match="allow must be a boolean"):
        ix.search(q, K, allow=np.ones(10, dtype=bool))
    one = BinIvfIndex.build(base[:1], nlist=1)
    assert one.search(base[:1], 3, nprobe=1)[0].tolist() == [[0, -1, -1]]
