"""Fixtures for vecstore's pytest-benchmark suite.

Run from the repository root (the suite is outside the default ``tests`` run):

    python -m pytest bench/ --benchmark-group-by=group            # full size (minutes)
    VECSTORE_BENCH_SCALE=0.01 python -m pytest bench/ --benchmark-disable -q   # CI smoke run

``VECSTORE_BENCH_SCALE`` scales row and query counts (see ``benchutil.sizes``); ``VECSTORE_SEED``
changes the data. Data is built once per session, on first use, so running one file only builds
what that file needs. Compare runs with ``--benchmark-autosave`` / ``--benchmark-compare``.
"""

from __future__ import annotations

import fnmatch

import pytest

import benchutil
import vecstore
from vecstore import _core


def pytest_collect_file(file_path, parent):
    # bench_*.py must be collected whether or not the project's python_files lists it (older
    # configurations name only test_*.py). Files pytest collects anyway (a python_files match, or a
    # path named on the command line) are left to it: collecting them here too would run every
    # benchmark twice.
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if parent.session.isinitpath(file_path):
        return None
    if any(fnmatch.fnmatch(file_path.name, p) for p in parent.config.getini("python_files")):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_report_header(config):
    info = benchutil.machine_info()
    s = benchutil.sizes()
    return [
        "vecstore bench: " + ", ".join(f"{key}={value}" for key, value in info.items()),
        f"vecstore bench sizes: {s}",
    ]


@pytest.fixture(scope="session")
def sizes() -> benchutil.Sizes:
    return benchutil.sizes()


@pytest.fixture
def restore_simd():
    """Restores the process-wide SIMD level after a test that changes it."""
    before = _core.simd_level()
    yield before
    vecstore.set_simd_level(before)


@pytest.fixture(params=_core.available_simd_levels())
def simd(request, restore_simd) -> str:
    """Runs the test once per SIMD level this CPU supports."""
    vecstore.set_simd_level(request.param)
    return request.param


@pytest.fixture
def pin_threads():
    """``with pin_threads(n):`` pins numpy's BLAS and faiss's OpenMP to n threads (0 = all)."""
    return benchutil.pinned_threads


class _Lazy:
    """A session-wide cache of data sets built on first request, keyed by their arguments."""

    def __init__(self, build):
        self._build = build
        self._cache: dict = {}

    def __call__(self, *key):
        if key not in self._cache:
            self._cache[key] = self._build(*key)
        return self._cache[key]


@pytest.fixture(scope="session")
def distance_data(sizes):
    """``distance_data(kind) -> (query (1, dim), rows (dist_n, dim))``; binary dim counts bits."""
    return _Lazy(lambda kind: benchutil.distance_data(sizes, kind))


@pytest.fixture(scope="session")
def distance_reference(distance_data):
    """``distance_reference(kind, metric) -> (float64 distances, tolerance)`` for distance_data."""

    def build(kind, metric):
        query, rows = distance_data(kind)
        want = benchutil.ref_distances(query[0], rows, metric)
        return want, benchutil.distance_tolerance(query[0], rows, metric)

    return _Lazy(build)


@pytest.fixture(scope="session")
def scan_data(sizes):
    """``(query (1, dim), rows (scan_n, dim))`` float32: 512 MB of rows at full size."""
    return benchutil.scan_data(sizes)


@pytest.fixture(scope="session")
def knn_data(sizes):
    """``knn_data(kind) -> (queries (knn_nq, dim), base (knn_n, dim))`` for float32/float16/int8."""
    data = benchutil.knn_data(sizes)
    return lambda kind: data[kind]


@pytest.fixture(scope="session")
def knn_reference(knn_data, sizes):
    """``knn_reference(kind, metric) -> ids (knn_nq, k)``: float64 exact top-k of knn_data."""

    def build(kind, metric):
        queries, base = knn_data(kind)
        return benchutil.exact_topk(queries, base, sizes.k, metric)

    return _Lazy(build)
