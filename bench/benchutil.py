"""Helpers shared by the pytest-benchmark suite (``bench/bench_*.py``) and ``bench/report.py``.

Sizes: every benchmark's data is sized by ``VECSTORE_BENCH_SCALE`` (float, default 1.0). At 1.0 the
shapes are the ones the suite is about (100k x 128 kernel rows, a 1M x 128 scan, 1,000 x 100k x 128
batched k-NN); smaller scales shrink the row and query counts but keep ``dim`` so that the same
kernels run, and keep at least ``vecstore``'s batched-path query count so that path is still hit.

Data is seeded (``VECSTORE_SEED``, default as in ``tests/conftest.py``); each data set draws from
its own stream so that adding one does not change the others.

Reference results are float64 numpy, computed in query chunks so that the full-scale oracle never
holds more than ~100 MB of distances at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

import vecstore
from vecstore import _core

SEED = int(os.environ.get("VECSTORE_SEED", "20261126"))
DIM = 128
BINARY_BITS = 1024
K = 10

FLOAT_METRICS = ("L2", "IP", "COSINE")
BINARY_METRICS = ("HAMMING", "JACCARD")
KINDS = ("float32", "float16", "bfloat16", "int8", "binary")
# vecstore switches to the packed (GEMM-like) path at this many queries; smoke runs must stay above
# it or they would benchmark the wrong code.
GEMM_MIN_QUERIES = 8


def metrics_for(kind: str) -> tuple[str, ...]:
    return BINARY_METRICS if kind == "binary" else FLOAT_METRICS


def env_scale() -> float:
    raw = os.environ.get("VECSTORE_BENCH_SCALE", "1.0")
    try:
        value = float(raw)
    except ValueError:
        msg = f"VECSTORE_BENCH_SCALE must be a number such as 0.01, got {raw!r}"
        raise ValueError(msg) from None
    if not value > 0:
        raise ValueError(f"VECSTORE_BENCH_SCALE must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Sizes:
    scale: float
    dist_n: int  # rows per kernel-throughput call (one query against them)
    scan_n: int  # rows of the single-query bandwidth scan
    knn_nq: int  # queries of the batched k-NN
    knn_n: int  # base rows of the batched k-NN
    dim: int = DIM
    binary_bits: int = BINARY_BITS
    k: int = K


def sizes(scale: float | None = None) -> Sizes:
    s = env_scale() if scale is None else scale
    return Sizes(
        scale=s,
        dist_n=max(1_000, round(100_000 * s)),
        scan_n=max(10 * K, round(1_000_000 * s)),
        knn_nq=max(2 * GEMM_MIN_QUERIES, round(1_000 * s)),
        knn_n=max(10 * K, round(100_000 * s)),
    )


def make_rng(*key: int | str) -> np.random.Generator:
    # Strings are hashed through their bytes, not hash(), which is salted per process.
    words = [SEED] + [
        int.from_bytes(k.encode(), "little") % (2**32) if isinstance(k, str) else k for k in key
    ]
    return np.random.default_rng(words)


def gaussian(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    # Generated in float32 directly: a float64 draw of the 1M x 128 scan matrix would need 1 GB.
    return rng.standard_normal((n, dim), dtype=np.float32)


def to_int8(x: np.ndarray) -> np.ndarray:
    """Scalar-quantised int8 version of a float32 matrix (as an embedding store would hold it)."""
    return np.clip(np.rint(x * 32.0), -127, 127).astype(np.int8)


def random_vectors(rng: np.random.Generator, kind: str, n: int, dim: int) -> np.ndarray:
    """n vectors of ``kind``; ``dim`` counts bits for binary."""
    if kind == "binary":
        return rng.integers(0, 256, size=(n, dim // 8), dtype=np.uint8)
    x = gaussian(rng, n, dim)
    if kind == "float32":
        return x
    if kind == "float16":
        return x.astype(np.float16)
    if kind == "bfloat16":
        import ml_dtypes

        return x.astype(ml_dtypes.bfloat16)
    if kind == "int8":
        return to_int8(x)
    raise ValueError(f"unknown kind {kind!r}")


def distance_data(s: Sizes, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(query (1, dim), rows (dist_n, dim)) of one kind; dim is in bits for binary."""
    rng = make_rng("distance", kind)
    dim = s.binary_bits if kind == "binary" else s.dim
    rows = random_vectors(rng, kind, s.dist_n, dim)
    return random_vectors(rng, kind, 1, dim), rows


def scan_data(s: Sizes) -> tuple[np.ndarray, np.ndarray]:
    """(query (1, dim), rows (scan_n, dim)), float32: 512 MB of rows at full size."""
    rng = make_rng("scan")
    rows = gaussian(rng, s.scan_n, s.dim)
    return gaussian(rng, 1, s.dim), rows


def knn_data(s: Sizes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """kind -> (queries (knn_nq, dim), base (knn_n, dim)) for float32, float16 and int8.

    float16 and int8 are conversions of the float32 data, so every kind ranks nearly the same rows.
    """
    rng = make_rng("knn")
    base = gaussian(rng, s.knn_n, s.dim)
    queries = gaussian(rng, s.knn_nq, s.dim)
    return {
        "float32": (queries, base),
        "float16": (queries.astype(np.float16), base.astype(np.float16)),
        "int8": (to_int8(queries), to_int8(base)),
    }


def row_bytes(x: np.ndarray) -> int:
    return x.shape[1] * x.dtype.itemsize


# --- float64 references ------------------------------------------------------------------------

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def ref_distances(q: np.ndarray, x: np.ndarray, metric: str, rows: int = 16_384) -> np.ndarray:
    """Exact metric between one query ``q`` (shape (dim,)) and every row of ``x``, float64."""
    out = np.empty(x.shape[0], dtype=np.float64)
    if metric in BINARY_METRICS:
        for s in range(0, x.shape[0], rows):
            blk = x[s : s + rows]
            inter = _POPCOUNT8[blk & q].sum(1)
            union = _POPCOUNT8[blk | q].sum(1)
            if metric == "HAMMING":
                out[s : s + rows] = union - inter
            else:
                out[s : s + rows] = np.where(union == 0, 0.0, 1.0 - inter / np.maximum(union, 1))
        return out
    q64 = np.asarray(q, dtype=np.float64)
    for s in range(0, x.shape[0], rows):
        blk = np.asarray(x[s : s + rows], dtype=np.float64)
        if metric == "L2":
            d = blk - q64
            out[s : s + rows] = np.einsum("ij,ij->i", d, d)
        elif metric == "IP":
            out[s : s + rows] = blk @ q64
        else:
            nq, nx = np.linalg.norm(q64), np.linalg.norm(blk, axis=1)
            dots = blk @ q64
            norms = nx * nq
            out[s : s + rows] = np.where(norms == 0, 0.0, dots / np.maximum(norms, 1e-300))
    return out


def distance_tolerance(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    """Per-row bound on float32 accumulation error (vecstore computes in float32)."""
    if metric in BINARY_METRICS:
        return np.full(x.shape[0], 1e-6)
    if metric == "COSINE":
        return np.full(x.shape[0], 2e-5)
    q64 = np.asarray(q, dtype=np.float64)
    nq = float(q64 @ q64)
    nx = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    scale = 2e-6 * x.shape[1] ** 0.5
    if metric == "L2":
        return scale * (nq + nx) + 1e-6
    return scale * np.sqrt(nq * nx) + 1e-6


def exact_topk(
    queries: np.ndarray, base: np.ndarray, k: int, metric: str, chunk: int = 100
) -> np.ndarray:
    """Ids of the k best rows per query in float64, best first (ids only: for recall)."""
    b64 = np.asarray(base, dtype=np.float64)
    if metric == "L2":
        # |q|^2 is the same for every row of a query, so it does not change the ranking.
        row_term = np.einsum("ij,ij->i", b64, b64)[None, :]
    elif metric == "COSINE":
        inv_norm = 1.0 / np.maximum(np.linalg.norm(b64, axis=1), 1e-300)
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    for s in range(0, queries.shape[0], chunk):
        q64 = np.asarray(queries[s : s + chunk], dtype=np.float64)
        dots = q64 @ b64.T
        if metric == "L2":
            key = row_term - 2.0 * dots
        elif metric == "IP":
            key = -dots
        else:
            key = -dots * inv_norm[None, :]
        part = np.argpartition(key, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(key, part, axis=1), axis=1, kind="stable")
        ids[s : s + chunk] = np.take_along_axis(part, order, axis=1)
    return ids


def recall(ids: np.ndarray, ref_ids: np.ndarray) -> float:
    """Mean fraction of each row of ``ref_ids`` found (in any order) in the same row of ``ids``."""
    assert ids.shape == ref_ids.shape, (ids.shape, ref_ids.shape)
    hits = (ids[:, :, None] == ref_ids[:, None, :]).any(axis=1)
    return float(hits.mean())


# --- thread pinning ----------------------------------------------------------------------------


def _openblas_libs() -> list[tuple[str, Callable[[], int], Callable[[int], None]]]:
    """(path, get_num_threads, set_num_threads) of every OpenBLAS loaded now, numpy's first.

    ctypes instead of threadpoolctl, which is not a dependency. faiss-cpu wheels bring their own
    OpenBLAS (an OpenMP build), so pinning must reach every copy, not only numpy's. Empty when
    nothing is found (MKL, Accelerate, non-Linux): callers then report BLAS threads as unknown.
    """
    paths: list[str] = []
    with contextlib.suppress(OSError):
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                path = fields[5].strip() if len(fields) == 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    paths.sort(key=lambda p: "numpy" not in p)
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (
            ("scipy_openblas_", "64_"),
            ("scipy_openblas_", ""),
            ("openblas_", "64_"),
            ("openblas_", ""),
        ):
            get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                found.append((path, get, put))
                break
    return found


def blas_threads() -> int | None:
    """Threads numpy's BLAS may use for a matmul now (an upper bound: OpenBLAS uses fewer on
    shapes it considers small), or None when it cannot be queried."""
    libs = _openblas_libs()
    if not libs or "numpy" not in libs[0][0]:
        return None
    return int(libs[0][1]())


def blas_pinnable() -> bool:
    return blas_threads() is not None


@contextlib.contextmanager
def pinned_threads(n: int) -> Iterator[int]:
    """Pins numpy's BLAS and faiss's OpenMP pool and BLAS to ``n`` threads (0 = all), then restores.

    vecstore itself takes ``threads=`` per call, so it needs no pinning; the baselines do, or a
    "1 thread" comparison would quietly give numpy and faiss every core. Import faiss first.
    """
    want = n or hardware_threads()
    faiss = sys.modules.get("faiss")
    libs = _openblas_libs()
    before = [(put, get()) for _, get, put in libs]
    omp_before = faiss.omp_get_max_threads() if faiss is not None else None
    for _, _, put in libs:
        put(want)
    if faiss is not None:
        faiss.omp_set_num_threads(want)
    try:
        yield want
    finally:
        for put, count in before:
            put(count)
        if faiss is not None and omp_before is not None:
            faiss.omp_set_num_threads(omp_before)


def hardware_threads() -> int:
    return int(_core.hardware_threads())


# --- reporting ---------------------------------------------------------------------------------


def describe(
    benchmark,
    *,
    dim: int,
    n: int,
    nq: int,
    k: int | None,
    kind: str,
    metric: str,
    threads: int,
    impl: str = "vecstore",
    **extra: object,
) -> None:
    """Fills the extra_info keys every benchmark of this suite reports."""
    benchmark.extra_info.update(
        impl=impl,
        dim=dim,
        n=n,
        nq=nq,
        k=k,
        kind=kind,
        metric=metric,
        simd=vecstore.simd_level(),
        threads=threads,
        scale=env_scale(),
        **extra,
    )


def add_throughput(benchmark, *, nbytes: int, rows: int) -> None:
    """Adds best-round GB/s and rows/s (absent with --benchmark-disable: nothing was timed)."""
    benchmark.extra_info["bytes"] = nbytes
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return
    best = stats.stats.min
    benchmark.extra_info["gb_per_s_best"] = nbytes / best / 1e9
    benchmark.extra_info["rows_per_s_best"] = rows / best


def best_of(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Smallest wall time of ``repeat`` calls after ``warmup`` untimed ones (page faults, cache)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    try:
        import faiss

        faiss_version = faiss.__version__
    except ImportError:
        faiss_version = "not installed"
    blas = blas_threads()
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} logical (vecstore hardware_threads={hardware_threads()})",
        "simd": f"{vecstore.simd_level()} (available: {', '.join(_core.available_simd_levels())})",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy BLAS threads": "unknown" if blas is None else str(blas),
        "faiss": faiss_version,
        "vecstore": f"{vecstore.__version__}, {_build_stamp()}",
    }


def _build_stamp() -> str:
    """When the imported native core was built and what the checkout held then, roughly.

    The .so's mtime, and the source checkout's HEAD (with "+changes" when the work tree differs),
    so a result can be tied to the code that produced it; the build may predate the checkout.
    """
    stamp = datetime.datetime.fromtimestamp(
        os.path.getmtime(_core.__file__), tz=datetime.timezone.utc
    ).strftime("_core built %Y-%m-%d %H:%M UTC")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        stamp += f"; checkout {head}{' +changes' if dirty else ''}"
    return stamp
