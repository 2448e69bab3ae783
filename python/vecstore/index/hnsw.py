"""HNSW graph index over a float32 matrix (the C++ engine in ``cpp/index/hnsw.{h,cc}``).

The index holds the graph and a quantised copy of the vectors; the float32 vectors stay in the
caller's matrix (a sealed segment's mapped rows), which the index reads in place and which must
not change while the index lives. Values are Milvus's: ``L2`` the squared distance, ``IP`` the
inner product, ``COSINE`` the cosine similarity; ``IP`` and ``COSINE`` list larger values first.
Results are shaped like :func:`vecstore.knn`'s; slots without a hit hold id -1 and +inf (L2) or
-inf (IP, COSINE).

Kinds (Milvus's ``HNSW`` and ``HNSW_SQ``):

- ``sq_type=None`` (HNSW): the search walks the graph on 8-bit scalar-quantised codes and re-ranks
  all ``ef`` candidates with exact float32 distances, so the reported values are exact.
- ``sq_type`` ``"SQ8"``, ``"FP16"`` or ``"BF16"`` (HNSW_SQ): the walk uses codes of that type.
  With ``refine=False`` (Milvus's default) the values are computed from the codes (approximate);
  with ``refine=True`` the best ``ceil(refine_k * k)`` candidates are re-ranked with exact float32
  distances (``refine_k`` >= 1, default 1; ``search(refine_k=...)`` overrides it per call).

The graph is always built from the float32 rows; for COSINE the codes encode the unit rows.

Filtered search: ``allow`` restricts the results to allowed rows inside the graph traversal
(disallowed rows are walked through, never returned); when few rows are allowed the engine scans
the allowed rows exactly instead, chosen per call by a cost estimate, so recall stays high at any
selectivity. ``search(..., stats=d)`` reports which path answered. The exact scan reports exact
values for every kind.

Serialisation: :meth:`HnswIndex.to_bytes` gives a versioned, checksummed flat image (layout in
``cpp/index/hnsw.h``); :meth:`HnswIndex.from_bytes` opens one over the same matrix, reading the
buffer in place (a ``bytes``, ``mmap`` or numpy buffer, kept alive by the index) after checking
its checksums and every size, offset and link; damage raises :class:`vecstore.CorruptionError`.

Threads: build and multi-query search run on the core's thread pool (``threads=0``: all cores)
with the GIL released; one object may be searched from several Python threads at once.
"""

from __future__ import annotations

import numpy as np

from vecstore import _core
from vecstore.common.vectors import check_count, reject_nonfinite
from vecstore.compute import in_chunks, joined
from vecstore.errors import InvalidArgument
from vecstore.index.common import (
    byte_view,
    float_matrix,
    float_metric,
    float_queries,
    packed_allow,
)

__all__ = ["HnswIndex"]

MAX_ROWS = 0xFFFFFFFE
DEFAULT_EF = 64
MAX_K = 1 << 31
SQ_TYPES = ("SQ8", "FP16", "BF16")
MAX_REFINE_K = 1e6


def _check_sq(sq_type: object, refine: object, refine_k: object) -> tuple[str, bool, float]:
    """Validates HNSW_SQ's build options; returns (sq_type name or "", refine, refine_k)."""
    if sq_type is None:
        name = ""
    elif isinstance(sq_type, str) and sq_type.upper() in SQ_TYPES:
        name = sq_type.upper()
    else:
        raise InvalidArgument(
            f"sq_type {sq_type!r} is not supported; use one of {', '.join(SQ_TYPES)} "
            "(or None for plain HNSW)"
        )
    if not isinstance(refine, (bool, np.bool_)):
        raise InvalidArgument(f"refine must be a bool, got {refine!r}")
    rk = _check_refine_k(refine_k)
    if refine and not name:
        raise InvalidArgument(
            "refine applies to HNSW_SQ (pass an sq_type); plain HNSW always re-ranks exactly"
        )
    if not refine and rk != 1.0:
        raise InvalidArgument(f"refine_k applies only with refine=True, got {refine_k!r}")
    return name, bool(refine), rk


def _check_refine_k(refine_k: object) -> float:
    if isinstance(refine_k, bool) or not isinstance(refine_k, (int, float, np.integer,
                                                                np.floating)):
        raise InvalidArgument(f"refine_k must be a number >= 1, got {refine_k!r}")
    rk = float(refine_k)
    if not 1.0 <= rk <= MAX_REFINE_K:
        raise InvalidArgument(f"refine_k must be between 1 and {MAX_REFINE_K:g}, got {refine_k!r}")
    return rk


def _check_base(base: object) -> np.ndarray:
    arr = float_matrix(base, "base", "HnswIndex")
    if arr.shape[0] == 0:
        raise InvalidArgument("base has no rows; an HNSW index needs at least one")
    if arr.shape[0] > MAX_ROWS:
        raise InvalidArgument(
            f"base has {arr.shape[0]} rows, an HNSW index holds at most {MAX_ROWS}; "
            "split the data into segments"
        )
    return arr


class HnswIndex:
    """An HNSW graph over the rows of a float32 matrix; build with :meth:`build`, reopen with
    :meth:`from_bytes`."""

    __slots__ = ("_base", "_impl", "_metric")

    def __init__(self, impl: _core.HnswIndex, base: np.ndarray, metric: str) -> None:
        """Internal: use :meth:`build` or :meth:`from_bytes`."""
        self._impl = impl
        self._base = base
        self._metric = metric

    @classmethod
    def build(
        cls,
        base: np.ndarray,
        metric: str = "L2",
        M: int = 16,  # noqa: N803 (Milvus's parameter name)
        ef_construction: int = 200,
        seed: int = 0,
        threads: int = 0,
        *,
        sq_type: str | None = None,
        refine: bool = False,
        refine_k: float = 1.0,
        cancel: _core.CancelFlag | None = None,
    ) -> HnswIndex:
        """Builds the graph over ``base`` (and its quantised codes).

        Args:
            base: (n, dim) float32 matrix, n >= 1, finite; rows must be contiguous (a row-strided
                view is fine). Read in place and referenced by the index: do not modify it.
            metric: ``L2``, ``IP`` or ``COSINE``, case-insensitive.
            M: neighbours per node on the upper levels (2 * M on level 0), 2..2048.
            ef_construction: candidate list size while inserting (>= 1; values below M act as M).
            seed: seeds the level assignment. With ``threads=1`` the graph is a deterministic
                function of the data, the parameters and the seed.
            threads: threads for the build, 0 for all cores.
            sq_type: None for HNSW (exact values), or HNSW_SQ's ``"SQ8"``, ``"FP16"``,
                ``"BF16"`` (case-insensitive; others, e.g. ``"SQ4U"``, raise InvalidArgument).
            refine: HNSW_SQ only: re-rank the best candidates with exact float32 distances.
            refine_k: with ``refine``, how many candidates to re-rank, as a multiple of k (>= 1).
            cancel: a ``_core.CancelFlag``; setting it from another thread stops the build, which
                then raises :class:`vecstore.errors.Cancelled`.
        """
        arr = _check_base(base)
        m = float_metric(metric, "HnswIndex")
        mm = check_count(M, "M", 2, 2048)
        efc = check_count(ef_construction, "ef_construction", 1, 0xFFFFFFFF)
        sd = check_count(seed, "seed", 0, 2**64 - 1)
        t = check_count(threads, "threads", 0)
        name, rf, rk = _check_sq(sq_type, refine, refine_k)
        reject_nonfinite(arr, "float32", "base")
        return cls(_core.HnswIndex.build(arr, m, mm, efc, sd, t, name, rf, rk, cancel), arr, m)

    @classmethod
    def from_bytes(cls, buffer: object, base: np.ndarray) -> HnswIndex:
        """Opens an image written by :meth:`to_bytes` over ``base``, the matrix it was built from.

        ``buffer`` is any contiguous bytes-like object (``bytes``, ``mmap.mmap``, a uint8 numpy
        array); it is read in place when 8-byte aligned (else copied) and kept alive by the
        index. Raises :class:`vecstore.CorruptionError` for a damaged or truncated image and
        :class:`vecstore.InvalidArgument` when ``base``'s shape differs from the index's.
        """
        view = byte_view(buffer)
        arr = _check_base(base)
        impl = _core.HnswIndex.load(view, arr)
        return cls(impl, arr, impl.metric)

    def to_bytes(self) -> bytes:
        """The index image (graph, levels, codes and, for COSINE, inverse row norms; not the
        float32 vectors)."""
        return self._impl.to_bytes()

    def search(
        self,
        queries: np.ndarray,
        k: int,
        ef: int | None = None,
        allow: np.ndarray | None = None,
        threads: int = 0,
        *,
        stats: dict | None = None,
        refine_k: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The (approximately) k nearest allowed rows of each query.

        Args:
            queries: (m, dim) float32 vectors, finite.
            k: results per query, >= 1 (beyond the number of rows the tail is padded).
            ef: candidate list size, >= k; larger is slower and more accurate. Default
                max(k, 64).
            allow: optional boolean array of shape (rows,), or its packed uint8 form; only
                allowed rows are returned.
            threads: threads to use across queries, 0 for all cores.
            stats: optional dict receiving counters (``graph_queries``, ``exact_queries``,
                ``distances``), added to any values already there.
            refine_k: for an index built with ``refine=True``, this call's re-rank multiple
                (>= 1) instead of the index's; InvalidArgument for other indexes.

        Returns:
            ``(ids, distances)``: int64 and float32 arrays of shape (m, k), best first.
        """
        q_arr = float_queries(queries, self._base.shape[1], "HnswIndex")
        # Plain ints skip check_count: at ~25 us per single query, argument checks show.
        kk = k if type(k) is int and 1 <= k <= MAX_K else check_count(k, "k", 1, MAX_K)
        if ef is None:
            e = max(kk, DEFAULT_EF)
        else:
            e = ef if type(ef) is int and 1 <= ef <= MAX_K else check_count(ef, "ef", 1, MAX_K)
            if e < kk:
                raise InvalidArgument(f"ef must be at least k ({kk}), got {e}; pass ef >= k")
        t = threads if type(threads) is int and threads >= 0 else check_count(threads, "threads", 0)
        packed = None if allow is None else packed_allow(allow, self._base.shape[0])
        impl = self._impl
        want = stats is not None
        rk = 0.0
        if refine_k is not None:
            if not impl.refine:
                raise InvalidArgument(
                    "refine_k applies to HNSW_SQ indexes built with refine=True"
                )
            rk = _check_refine_k(refine_k)
        # Non-finite queries are refused by the core (InvalidArgument naming the row).
        parts = in_chunks(lambda q: impl.search(q, kk, e, packed, t, want, rk), q_arr)
        if want:
            for p in parts:
                for key, value in p[2].items():
                    stats[key] = stats.get(key, 0) + value
        return joined(parts)

    @property
    def M(self) -> int:  # noqa: N802 (Milvus's parameter name)
        return int(self._impl.M)

    @property
    def ef_construction(self) -> int:
        return int(self._impl.ef_construction)

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def sq_type(self) -> str | None:
        """``"SQ8"``, ``"FP16"`` or ``"BF16"`` for HNSW_SQ, None for plain HNSW."""
        return self._impl.sq_type or None

    @property
    def refine(self) -> bool:
        return bool(self._impl.refine)

    @property
    def refine_k(self) -> float:
        return float(self._impl.refine_k)

    @property
    def rows(self) -> int:
        return int(self._impl.rows)

    @property
    def dim(self) -> int:
        return int(self._impl.dim)

    @property
    def seed(self) -> int:
        return int(self._impl.seed)

    @property
    def nbytes(self) -> int:
        """Bytes of the index image (what :meth:`to_bytes` returns; the vectors not included)."""
        return int(self._impl.nbytes)

    @property
    def base(self) -> np.ndarray:
        return self._base

    def __repr__(self) -> str:
        return (
            f"HnswIndex(rows={self.rows}, dim={self.dim}, metric={self._metric!r}, M={self.M}, "
            f"ef_construction={self.ef_construction}, sq_type={self.sq_type!r}, "
            f"refine={self.refine}, refine_k={self.refine_k})"
        )
