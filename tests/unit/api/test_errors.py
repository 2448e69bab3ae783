"""Bad input raises a VecstoreError subclass whose message names the problem and the fix."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import vecstore
from tests.reference import random_vectors
from vecstore import errors


@pytest.fixture
def base(rng):
    return random_vectors(rng, "float32", 50, 16)


def test_error_hierarchy_and_codes():
    assert issubclass(errors.InvalidArgument, vecstore.VecstoreError)
    assert issubclass(errors.InvalidArgument, ValueError)
    assert issubclass(errors.StorageError, OSError)
    assert issubclass(errors.CorruptionError, errors.StorageError)
    assert issubclass(errors.NotFoundError, LookupError)
    codes = [c.code for c in (errors.VecstoreError, errors.InvalidArgument, errors.NotFoundError,
                              errors.StorageError, errors.CorruptionError, errors.Cancelled,
                              errors.InternalError)]
    assert len(set(codes)) == len(codes)
    assert errors.InvalidArgument.code == 1100  # Milvus's "parameter invalid"
    e = errors.StorageError("disk full")
    assert e.message == "disk full" and str(e) == "disk full" and e.code == 2000


def raises(match):
    return pytest.raises(errors.InvalidArgument, match=match)


def test_wrong_dtype_names_the_conversion(base):
    with raises(r"float64.*np.asarray\(queries, dtype=np.float32\)"):
        vecstore.knn(base.astype(np.float64), base, 3)
    with raises("int32"):
        vecstore.cdist(base.astype(np.int32), base.astype(np.int32))


def test_not_an_array(base):
    with raises("must be a numpy.ndarray, got list"):
        vecstore.knn(base.tolist(), base, 3)


def test_mixed_kinds(base):
    with raises("float16 vectors but base holds float32"):
        vecstore.knn(base.astype(np.float16), base, 3)


def test_shape_errors(base):
    with raises(r"2-D.*reshape\(1, -1\)"):
        vecstore.knn(base[0], base, 3)
    with raises("2-D"):
        vecstore.cdist(base[None], base)
    with raises("zero dimensions"):
        vecstore.cdist(np.zeros((2, 0), np.float32), np.zeros((2, 0), np.float32))


def test_dimension_mismatch(base):
    with raises("dimension mismatch: queries has 8 columns but base has 16"):
        vecstore.knn(base[:, :8].copy(), base, 3)


def test_non_contiguous_rows(base):
    with raises(r"not row-contiguous.*np.ascontiguousarray\(base\)"):
        vecstore.knn(base[:2], base[:, ::2], 3)
    with raises("not row-contiguous"):
        vecstore.knn(base[:2], base[::-1], 3)
    with raises("not row-contiguous"):
        vecstore.cdist(np.asfortranarray(base), base)


def test_k_bounds(base):
    for k in (0, -1, 51):
        with raises("k must be between 1 and 50"):
            vecstore.knn(base[:2], base, k)
    for k in (2.0, True, "3", None):
        with raises("k must be an integer"):
            vecstore.knn(base[:2], base, k)
    with raises("base has no rows"):
        vecstore.knn(base[:2], base[:0], 1)


def test_unknown_metric(base):
    with raises("unknown metric 'EUCLID'.*L2, IP, COSINE"):
        vecstore.knn(base[:2], base, 3, metric="EUCLID")
    with raises("metric must be a string"):
        vecstore.cdist(base, base, metric=2)


def test_metric_and_kind_must_agree(rng, base):
    bits = random_vectors(rng, "binary", 10, 64)
    with raises("HAMMING or JACCARD"):
        vecstore.knn(bits, bits, 3, metric="L2")
    with raises("HAMMING needs binary vectors"):
        vecstore.knn(base, base, 3, metric="hamming")


def test_allow_must_be_boolean_per_row(base):
    with raises(r"allow must be a boolean numpy array of shape \(50,\)"):
        vecstore.knn(base[:2], base, 3, allow=np.ones(49, dtype=bool))
    with raises("allow must be a boolean"):
        vecstore.knn(base[:2], base, 3, allow=np.ones(50, dtype=np.uint8))
    with raises("allow must be a boolean"):
        vecstore.knn(base[:2], base, 3, allow=[True] * 50)


def test_threads_must_be_non_negative(base):
    with raises("threads must be at least 0"):
        vecstore.knn(base[:2], base, 3, threads=-1)
    with raises("threads must be an integer"):
        vecstore.cdist(base, base, threads=1.5)


@pytest.mark.parametrize("kind", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected(rng, kind, bad):
    base = random_vectors(rng, kind, 40, 16)
    queries = random_vectors(rng, kind, 10, 16)
    poisoned = base.copy()
    poisoned[17, 5] = bad
    with raises("base row 17 contains NaN or infinity"):
        vecstore.knn(queries, poisoned, 3)
    with raises("base row 17 contains NaN or infinity"):
        vecstore.knn(queries[:1], poisoned, 3, metric="IP")
    with raises("b row 17 contains NaN or infinity"):
        vecstore.cdist(queries, poisoned, metric="COSINE")
    q = queries.copy()
    q[2, 0] = bad
    with raises("queries row 2 contains NaN or infinity"):
        vecstore.knn(q, base, 3)


def test_overflow_is_reported_as_such():
    big = np.full((2, 4), 3e38, dtype=np.float32)
    with raises("overflowed float32"):
        vecstore.knn(big, -big, 1)


def test_native_core_raises_the_same_classes():
    from vecstore import _core

    with pytest.raises(errors.InvalidArgument, match="not available on this CPU|unknown SIMD"):
        _core.set_simd_level("neon" if "neon" not in _core.available_simd_levels() else "avx512")
    with pytest.raises(errors.InvalidArgument, match="unknown SIMD level"):
        vecstore.set_simd_level("sse9")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=60,
    )


def test_environment_variable_selects_the_level():
    r = run_python("import vecstore; print(vecstore.simd_level())", VECSTORE_SIMD="serial")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "serial"
    r = run_python("import vecstore", VECSTORE_SIMD="sse9")
    assert r.returncode != 0 and "unknown SIMD level 'sse9'" in r.stderr
