"""The low-level compute API: exact distances and k-nearest-neighbour search over numpy arrays.

These functions are thin, validating wrappers over the native core (``vecstore._core``): they check
every argument first (raising :class:`vecstore.InvalidArgument` with the fix), then hand the arrays
to C++ without copying; the computation releases the GIL and runs on vecstore's thread pool.

Values are in Milvus's units: ``L2`` is the *squared* Euclidean distance, ``IP`` the inner product,
``COSINE`` the cosine similarity (0 for an all-zero vector), ``HAMMING`` the number of differing
bits, ``JACCARD`` the Jaccard distance. ``IP`` and ``COSINE`` rank larger values first, the others
smaller values first; equal values rank the smaller row id first.

Non-finite inputs: a NaN or infinity in a query, or in a base row the call reads, raises
:class:`vecstore.InvalidArgument` naming the row. Base rows excluded by ``allow`` are not read.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vecstore import _core
from vecstore.common.vectors import (
    check_count,
    check_matrix,
    normalize_metric,
    packed_allow,
    reject_nonfinite,
)
from vecstore.errors import InvalidArgument

__all__ = ["QuantizedFlat", "cdist", "knn", "simd_level", "set_simd_level"]

# Large batches go to the core in chunks of at most this many queries, so that Ctrl-C (checked by
# Python between chunks) interrupts a long call within about a chunk's time. Each chunk re-packs the
# base once, which costs under 1% at this size.
QUERY_CHUNK = 2048


def _chunks(n: int) -> list[slice]:
    """Near-equal slices of at most QUERY_CHUNK rows. Equal sizes keep every chunk on the batched
    path (a short tail chunk would take the scan path and round differently)."""
    count = -(-n // QUERY_CHUNK)
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(count)]


def in_chunks(call: Callable[[np.ndarray], tuple], queries: np.ndarray) -> list[tuple]:
    """``call`` on chunks of at most QUERY_CHUNK queries (so that Ctrl-C is seen between them),
    its results in order; one call when the queries fit in one chunk."""
    if queries.shape[0] <= QUERY_CHUNK:
        return [call(queries)]
    return [call(queries[c]) for c in _chunks(queries.shape[0])]


def joined(parts: list[tuple], arrays: int = 2) -> tuple:
    """The first ``arrays`` results of :func:`in_chunks` parts, concatenated."""
    if len(parts) == 1:
        return tuple(parts[0][:arrays])
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(arrays))


def _in_chunks(call: Callable[[np.ndarray], tuple], queries: np.ndarray) -> tuple:
    """``call(queries) -> (*arrays, nonfinite)``, run on chunks of at most QUERY_CHUNK queries
    and joined: the arrays concatenated, the flags or-ed."""
    parts = in_chunks(call, queries)
    return (*joined(parts, len(parts[0]) - 1), any(p[-1] for p in parts))


def _pair(a: object, b: object, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, str]:
    a_arr, a_kind = check_matrix(a, names[0])
    b_arr, b_kind = check_matrix(b, names[1])
    if a_kind != b_kind:
        raise InvalidArgument(
            f"{names[0]} holds {a_kind} vectors but {names[1]} holds {b_kind}; "
            f"convert one, e.g. {names[0]}.astype({names[1]}.dtype)"
        )
    if a_arr.shape[1] != b_arr.shape[1]:
        raise InvalidArgument(
            f"dimension mismatch: {names[0]} has {a_arr.shape[1]} columns but {names[1]} has "
            f"{b_arr.shape[1]}; both must have the same vector dimension"
        )
    return a_arr, b_arr, a_kind


def _check_threads(threads: object) -> int:
    return check_count(threads, "threads", 0)


def _raise_nonfinite(
    a: np.ndarray, b: np.ndarray, kind: str, names: tuple[str, str], rows: np.ndarray | None
) -> None:
    reject_nonfinite(a, kind, names[0])
    reject_nonfinite(b, kind, names[1], rows)
    raise InvalidArgument(
        "a distance overflowed float32 (inputs are finite but too large, e.g. above 1e19); "
        "scale the vectors down"
    )


def cdist(a: np.ndarray, b: np.ndarray, metric: str = "L2", *, threads: int = 0) -> np.ndarray:
    """Distance matrix between the rows of ``a`` and ``b``.

    Args:
        a: (m, dim) vectors; float32, float16, bfloat16, int8, or uint8 packed binary.
        b: (n, dim) vectors of the same kind and dimension.
        metric: ``L2``, ``IP``, ``COSINE`` (float/int8) or ``HAMMING``, ``JACCARD`` (binary),
            case-insensitive.
        threads: threads to use, 0 for all cores.

    Returns:
        float32 array of shape (m, n): ``out[i, j] = metric(a[i], b[j])``.
    """
    names = ("a", "b")
    a_arr, b_arr, kind = _pair(a, b, names)
    m = normalize_metric(metric, kind)
    t = _check_threads(threads)
    reject_nonfinite(a_arr, kind, "a")
    out, nonfinite = _in_chunks(lambda q: _core.cdist(q, b_arr, kind, m, t), a_arr)
    if nonfinite:
        _raise_nonfinite(a_arr, b_arr, kind, names, None)
    return out


def knn(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    metric: str = "L2",
    allow: np.ndarray | None = None,
    threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of each query among the rows of ``base``.

    Args:
        queries: (m, dim) query vectors.
        base: (n, dim) vectors of the same kind and dimension; read in place, never copied.
        k: neighbours per query, 1 <= k <= n.
        metric: as for :func:`cdist`.
        allow: optional boolean array of shape (n,), or its packed form
            (``np.packbits(mask, bitorder="little")``): only rows where it is True are candidates
            (the filter hook). Rows where it is False are never returned and never read.
        threads: threads to use, 0 for all cores.

    Returns:
        ``(ids, distances)``: int64 and float32 arrays of shape (m, k), best first. Equal distances
        list the smaller id first. If fewer than k rows are allowed, the remaining slots hold id
        -1 and distance +inf (L2, HAMMING, JACCARD) or -inf (IP, COSINE).
    """
    names = ("queries", "base")
    q_arr, b_arr, kind = _pair(queries, base, names)
    m = normalize_metric(metric, kind)
    n = b_arr.shape[0]
    if n == 0:
        raise InvalidArgument("base has no rows; k-NN needs at least k rows to search")
    kk = check_count(k, "k", 1, n)
    t = _check_threads(threads)
    packed = packed_allow(allow, n)
    allowed_rows = None
    reject_nonfinite(q_arr, kind, "queries")
    ids, dist, nonfinite = _in_chunks(lambda q: _core.knn(q, b_arr, kind, m, kk, packed, t),
                                      q_arr)
    if nonfinite:
        if allow is not None:
            allowed_rows = np.flatnonzero(allow)
        _raise_nonfinite(q_arr, b_arr, kind, names, allowed_rows)
    return ids, dist


class QuantizedFlat:
    """Exact k-NN over a fixed float32 matrix, faster for single queries and small batches.

    Built once (O(rows * dim)) from ``base``, it keeps a uint8 copy of every row (about
    ``rows * (dim + 12)`` bytes) plus a reference to ``base`` itself. A search scans the uint8 copy,
    derives for every row a rigorous interval around its exact distance, and re-ranks in float32
    only the rows that could still be among the k best. The results are identical to
    :func:`knn` on ``base`` with the same arguments: the same ids, the same float32 values, the same
    tie order (equal values list the smaller id first) and the same errors. Batches of 32 or more
    queries, and inputs where the bounds cannot prune (non-finite rows, values large enough to
    overflow float32), are answered by :func:`knn` itself.

    ``base`` is read in place and must not be modified while this object lives (a sealed segment
    or a read-only memory map); the object holds a reference to it. Searches may run from several
    threads at once.
    """

    __slots__ = ("_base", "_impl", "_metric")

    def __init__(self, base: np.ndarray, metric: str = "L2", *, threads: int = 0) -> None:
        """Args:
        base: (n, dim) float32 matrix, n >= 1; rows must be contiguous (a row-strided view is
            fine).
        metric: ``L2``, ``IP`` or ``COSINE``, case-insensitive.
        threads: threads for the build, 0 for all cores.
        """
        arr, kind = check_matrix(base, "base")
        if kind != "float32":
            raise InvalidArgument(
                f"QuantizedFlat needs float32 vectors, got {kind}; "
                "pass np.ascontiguousarray(base, dtype=np.float32)"
            )
        m = normalize_metric(metric, kind)
        if m not in ("L2", "IP", "COSINE"):
            raise InvalidArgument(f"QuantizedFlat supports L2, IP and COSINE, got {m}")
        if arr.shape[0] == 0:
            raise InvalidArgument("base has no rows; QuantizedFlat needs at least one")
        if arr.shape[1] > 65536:
            raise InvalidArgument(
                f"QuantizedFlat supports up to 65536 dimensions, got {arr.shape[1]}"
            )
        t = _check_threads(threads)
        self._base = arr
        self._metric = m
        self._impl = _core.QuantizedFlat(arr, m, t)

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def base(self) -> np.ndarray:
        return self._base

    @property
    def memory_bytes(self) -> int:
        """Bytes the quantised copy and its per-row data take (``base`` not included)."""
        return int(self._impl.memory_bytes)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allow: np.ndarray | None = None,
        threads: int = 0,
        *,
        stats: dict | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exactly ``knn(queries, self.base, k, self.metric, allow, threads)``; see :func:`knn`.

        ``stats``, if given, is a dict that receives counters of what the call did:
        ``two_stage_queries``, ``exact_queries`` (answered by the plain scan) and ``candidates``
        (rows re-ranked in float32), added to any values already there.
        """
        names = ("queries", "base")
        q_arr, b_arr, kind = _pair(queries, self._base, names)
        n = b_arr.shape[0]
        kk = check_count(k, "k", 1, n)
        t = _check_threads(threads)
        packed = packed_allow(allow, n)
        reject_nonfinite(q_arr, kind, "queries")
        impl = self._impl

        def call(q: np.ndarray) -> tuple:
            ids, dist, nonfinite, st = impl.search(q, kk, packed, t)
            if stats is not None:
                for key, value in st.items():
                    stats[key] = stats.get(key, 0) + value
            return ids, dist, nonfinite

        ids, dist, nonfinite = _in_chunks(call, q_arr)
        if nonfinite:
            rows = np.flatnonzero(allow) if allow is not None else None
            _raise_nonfinite(q_arr, b_arr, kind, names, rows)
        return ids, dist


def simd_level() -> str:
    """The SIMD level the kernels use: ``serial``, ``avx2``, ``avx512`` or ``neon``."""
    return _core.simd_level()


def set_simd_level(level: str) -> None:
    """Switches every kernel of this process to ``level`` (one of
    ``vecstore._core.available_simd_levels()``); the ``VECSTORE_SIMD`` environment variable does
    the same at import."""
    if not isinstance(level, str):
        raise InvalidArgument(f"level must be a string such as 'avx2', got {type(level).__name__}")
    _core.set_simd_level(level.lower())
