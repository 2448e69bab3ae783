"""Every kernel at every SIMD level against the float64 numpy reference.

Dimensions are the awkward ones (around every vector width); rows are read from unaligned offsets
and with row strides larger than the row, through both execution paths: the per-query scan (few
queries) and the packed, register-tiled batch path (many queries).
"""

from __future__ import annotations

import numpy as np
import pytest

import vecstore
from tests.reference import random_vectors, ref_cdist, tolerance

DIMS = [*range(1, 18), 31, 32, 33, 63, 64, 65, 127, 128, 129, 768, 1536]
BIN_DIMS = [8, 16, 24, 56, 64, 72, 120, 128, 136, 248, 256, 264, 512, 1024, 1536, 2048]
FLOAT_KINDS = ["float32", "float16", "bfloat16", "int8"]


def strided_copy(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same values, viewed at an odd element offset inside wider rows (unaligned, strided)."""
    pad_cols = 3
    wide = np.zeros((x.shape[0] + 1, x.shape[1] + pad_cols), dtype=x.dtype)
    wide[1:, 1 : 1 + x.shape[1]] = x
    view = wide[1:, 1 : 1 + x.shape[1]]
    assert view.strides[0] > x.shape[1] * x.dtype.itemsize
    return view


def check_close(got: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str) -> None:
    want = ref_cdist(a, b, metric)
    tol = tolerance(a, b, metric)
    err = np.abs(got.astype(np.float64) - want)
    worst = np.unravel_index(np.argmax(err - tol), err.shape)
    assert (err <= tol).all(), (
        f"{metric}: max excess at {worst}: got {got[worst]}, want {want[worst]}, tol {tol[worst]}"
    )


@pytest.mark.parametrize("kind", FLOAT_KINDS)
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_float_kernels_match_reference(simd, rng, kind, metric):
    for dim in DIMS:
        queries = random_vectors(rng, kind, 12, dim)  # >= 8 queries: the batched path
        base = strided_copy(random_vectors(rng, kind, 37, dim), rng)
        check_close(vecstore.cdist(queries, base, metric), queries, base, metric)
        few = queries[:3]  # < 8 queries: the scan path
        check_close(vecstore.cdist(few, base, metric), few, base, metric)


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_kernels_match_reference(simd, rng, metric):
    for dim in BIN_DIMS:
        queries = random_vectors(rng, "binary", 9, dim)
        base = strided_copy(random_vectors(rng, "binary", 41, dim), rng)
        got = vecstore.cdist(queries, base, metric)
        want = ref_cdist(queries, base, metric)
        if metric == "HAMMING":
            np.testing.assert_array_equal(got, want.astype(np.float32))
        else:
            np.testing.assert_allclose(got, want, atol=1e-6)


def test_int8_scan_is_exact(simd, rng):
    a = random_vectors(rng, "int8", 2, 1536)
    b = random_vectors(rng, "int8", 20, 1536)
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    np.testing.assert_array_equal(vecstore.cdist(a, b, "IP"), (a64 @ b64.T).astype(np.float32))
    l2 = ((a64[:, None] - b64[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(vecstore.cdist(a, b, "L2"), l2.astype(np.float32))


def test_cosine_of_zero_vector_is_zero(simd):
    a = np.zeros((1, 16), dtype=np.float32)
    b = np.ones((3, 16), dtype=np.float32)
    assert (vecstore.cdist(a, b, "COSINE") == 0).all()
    assert (vecstore.cdist(b, a, "cosine") == 0).all()
    # The batched path (>= 8 queries) derives cosine from norms: zero rows on either side give 0.
    many = np.ones((10, 16), dtype=np.float32)
    many[3] = 0
    rows = np.ones((5, 16), dtype=np.float32)
    rows[2] = 0
    d = vecstore.cdist(many, rows, "COSINE")
    assert (d[3] == 0).all() and (d[:, 2] == 0).all()
    np.testing.assert_allclose(np.delete(np.delete(d, 3, 0), 2, 1), 1.0, rtol=1e-6)


def test_jaccard_of_empty_sets_is_zero(simd):
    z = np.zeros((2, 4), dtype=np.uint8)
    assert (vecstore.cdist(z, z, "JACCARD") == 0).all()


def test_special_half_values(simd):
    # Subnormal and extreme float16 values are widened exactly.
    vals = np.array([[6e-8, -6e-8, 65504.0, -65504.0, 1e-4, 0.0, 1.0, -2.0]], dtype=np.float16)
    ones = np.ones((1, 8), dtype=np.float16)
    want = float(vals.astype(np.float64).sum())
    assert vecstore.cdist(vals, ones, "IP")[0, 0] == pytest.approx(want, abs=1e-3)


def test_metric_names_are_case_insensitive(rng):
    a = random_vectors(rng, "float32", 2, 8)
    np.testing.assert_array_equal(vecstore.cdist(a, a, "l2"), vecstore.cdist(a, a, "L2"))
    np.testing.assert_array_equal(vecstore.cdist(a, a, "Cosine"), vecstore.cdist(a, a, "COSINE"))


def test_simd_level_is_reported_and_switchable():
    levels = vecstore._core.available_simd_levels()
    assert "serial" in levels
    best = vecstore.simd_level()
    assert best == vecstore._core.best_simd_level()
    try:
        vecstore.set_simd_level("SERIAL")
        assert vecstore.simd_level() == "serial"
    finally:
        vecstore.set_simd_level(best)
