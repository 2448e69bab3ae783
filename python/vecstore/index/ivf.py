"""IVF indexes: IVF_FLAT, IVF_SQ8 and IVF_PQ over a float32 matrix (the C++ core's ``index/ivf.h``).

A coarse quantiser of ``nlist`` centroids (k-means on at most ``256 * nlist`` rows, seeded, so a
build is deterministic) splits the rows into inverted lists; a search scans the lists of each
query's ``nprobe`` closest centroids.

- ``IVF_FLAT`` keeps a copy of the float32 rows in inverted-list order (``rows * dim * 4`` bytes
  in its image), so a probe streams each list contiguously: its distances equal
  :func:`vecstore.knn`'s for the same query (one query per call), and ``nprobe == nlist`` is exact.
- ``IVF_SQ8`` stores one byte per dimension (per-dimension min/step scalar quantisation).
- ``IVF_PQ`` stores ``m`` bytes per row (product quantisation of the residual to the row's
  centroid, 256 codewords per sub-space) and searches with per-query lookup tables.

Distances are Milvus's: ``L2`` squared distance, ``IP`` inner product, ``COSINE`` similarity. For
IVF_SQ8 and IVF_PQ, ``rerank`` (on by default: ``16 * k`` exact distances per query cost little
next to a list scan and lift recall close to IVF_FLAT's) re-scores the best ``16 * k``
approximate candidates exactly against ``base``, so the reported distances are the exact
kernel's; without it they are the quantised approximation.

``base`` is referenced, never copied (IVF_FLAT's list-ordered copy aside): it must stay alive and
unchanged while the index lives (a sealed segment or a read-only memory map); IVF_SQ8 and IVF_PQ
re-rank against it. ``to_bytes`` gives a versioned, checksummed buffer;
``from_bytes`` opens it without copying (the index keeps the buffer alive) and raises
:class:`vecstore.errors.CorruptionError` for a damaged or truncated one, or for an image of another
major format version (version 1 images, whose IVF_FLAT lists held ids only, must be rebuilt).

Small inputs: ``nlist`` larger than the number of rows is refused (not clamped), so the index
always has the shape it was asked for; IVF_PQ needs at least 256 rows (one per codeword).
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

__all__ = ["IVF_KINDS", "IvfIndex", "kmeans"]

IVF_KINDS = ("IVF_FLAT", "IVF_SQ8", "IVF_PQ")
MAX_NLIST = 65536
RERANK_FACTOR = 16


def _float_matrix(arr: object, name: str) -> np.ndarray:
    return float_matrix(arr, name, "IVF indexes")


def _metric(metric: object) -> str:
    return float_metric(metric, "IVF indexes")


def kmeans(
    data: np.ndarray, k: int, *, niter: int = 10, seed: int = 0, threads: int = 0
) -> tuple[np.ndarray, float]:
    """Squared-L2 k-means: ``(centroids (k, dim) float32, inertia)``.

    Random init (k distinct rows picked with ``seed``), ``niter`` Lloyd iterations, empty
    clusters re-seeded by splitting a large one; deterministic for a given seed. ``inertia`` is
    the sum of squared distances of the rows to their closest returned centroid.
    """
    x = _float_matrix(data, "data")
    reject_nonfinite(x, "float32", "data")
    kk = check_count(k, "k", 1, x.shape[0])
    it = check_count(niter, "niter", 0, 1000)
    s = check_count(seed, "seed", 0, 2**64 - 1)
    t = check_count(threads, "threads", 0)
    centroids, inertia, _ = _core.kmeans(x, kk, it, s, t)
    return centroids, float(inertia)


class IvfIndex:
    """An IVF index over a float32 matrix; build with :meth:`build` or open with
    :meth:`from_bytes`. Searches may run from several threads at once."""

    __slots__ = ("_base", "_impl")

    def __init__(self, impl: _core.IvfIndex, base: np.ndarray) -> None:
        self._impl = impl
        self._base = base

    @classmethod
    def build(
        cls,
        base: np.ndarray,
        kind: str = "IVF_FLAT",
        metric: str = "L2",
        nlist: int = 128,
        m: int | None = None,
        nbits: int = 8,
        seed: int = 0,
        threads: int = 0,
        *,
        niter: int = 10,
    ) -> IvfIndex:
        """Trains and fills an index over ``base`` ((n, dim) float32, finite).

        Args:
            kind: ``IVF_FLAT``, ``IVF_SQ8`` or ``IVF_PQ`` (case-insensitive).
            metric: ``L2``, ``IP`` or ``COSINE``.
            nlist: inverted lists, 1..65536 and at most n.
            m: IVF_PQ sub-quantisers (must divide dim; required for IVF_PQ, refused otherwise).
            nbits: bits per PQ code; only 8 is supported.
            seed: k-means seed (same seed, same index).
            threads: build threads, 0 for all cores.
            niter: Lloyd iterations of the coarse and PQ k-means.
        """
        arr = _float_matrix(base, "base")
        n, dim = arr.shape
        if not isinstance(kind, str) or kind.upper() not in IVF_KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(IVF_KINDS)}, got {kind!r}")
        kd = kind.upper()
        met = _metric(metric)
        if n == 0:
            raise InvalidArgument("base has no rows; an IVF index needs at least nlist rows")
        nl = check_count(nlist, "nlist", 1, MAX_NLIST)
        if nl > n:
            raise InvalidArgument(
                f"nlist={nl} exceeds the number of rows ({n}); every list needs a row to train "
                f"its centroid: use nlist <= {n} (Milvus suggests about 4 * sqrt(n))"
            )
        if isinstance(nbits, bool) or nbits != 8:
            raise InvalidArgument(
                f"nbits={nbits!r} is not supported: vecstore's IVF_PQ uses 8-bit codes; "
                "pass nbits=8"
            )
        mm = 0
        if kd == "IVF_PQ":
            if m is None:
                raise InvalidArgument(
                    f"IVF_PQ needs m, the number of sub-quantisers, a divisor of dim={dim} "
                    "(e.g. m=dim // 8 or dim // 4)"
                )
            mm = check_count(m, "m", 1, dim)
            if dim % mm:
                divisors = [d for d in range(1, dim + 1) if dim % d == 0]
                raise InvalidArgument(
                    f"m={mm} does not divide dim={dim}; pick one of {divisors}"
                )
            if n < 256:
                raise InvalidArgument(
                    f"IVF_PQ with nbits=8 trains 256 codewords per sub-space and needs at least "
                    f"256 rows, got {n}; use IVF_FLAT or IVF_SQ8 for so few rows"
                )
        elif m is not None:
            raise InvalidArgument(f"m applies to IVF_PQ only; drop it for {kd}")
        s = check_count(seed, "seed", 0, 2**64 - 1)
        it = check_count(niter, "niter", 0, 1000)
        t = check_count(threads, "threads", 0)
        reject_nonfinite(arr, "float32", "base")
        return cls(_core.IvfIndex.build(arr, kd, met, nl, mm, 8, s, it, t), arr)

    @classmethod
    def from_bytes(cls, buffer: object, base: np.ndarray) -> IvfIndex:
        """Opens a buffer written by :meth:`to_bytes` over the same ``base``, without copying
        the buffer (bytes, bytearray, memoryview or mmap; it must not change while the index
        lives). CorruptionError for a damaged buffer, InvalidArgument for a mismatched base."""
        arr = _float_matrix(base, "base")
        view = byte_view(buffer)
        return cls(_core.IvfIndex.load(view, arr), arr)

    def to_bytes(self) -> bytes:
        """The index's serialised form (see cpp/index/ivf.h for the layout)."""
        return self._impl.to_bytes()

    def search(
        self,
        queries: np.ndarray,
        k: int,
        nprobe: int = 8,
        allow: np.ndarray | None = None,
        threads: int = 0,
        *,
        rerank: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best rows for each query among the ``nprobe`` closest lists.

        Args:
            queries: (m, dim) float32.
            k: results per query, at least 1.
            nprobe: lists scanned per query, 1..nlist.
            allow: optional boolean array of shape (rows,); rows where it is False are never
                returned.
            threads: threads, 0 for all cores.
            rerank: IVF_SQ8 / IVF_PQ: re-score the best 16 * k candidates exactly, so that the
                distances are exact (default on; False reports the quantised approximation;
                IVF_FLAT is always exact).

        Returns:
            ``(ids, distances)`` as :func:`vecstore.knn`: int64 and float32 of shape (m, k), best
            first; missing slots hold id -1 and +inf (L2) or -inf (IP, COSINE).
        """
        # Plain ints skip check_count: a one-query search takes ~10 us in the core.
        q = float_queries(queries, self.dim, "IVF indexes")
        kk = k if type(k) is int and k >= 1 else check_count(k, "k", 1)
        nlist = self._impl.nlist
        npr = (
            nprobe
            if type(nprobe) is int and 1 <= nprobe <= nlist
            else check_count(nprobe, "nprobe", 1, nlist)
        )
        t = threads if type(threads) is int and threads >= 0 else check_count(threads, "threads", 0)
        packed = packed_allow(allow, self.rows)
        if rerank is None:
            rr = True
        elif isinstance(rerank, bool):
            rr = rerank
        else:
            raise InvalidArgument(f"rerank must be True, False or None, got {rerank!r}")
        impl = self._impl
        try:
            parts = in_chunks(lambda c: impl.search(c, kk, npr, packed, t, rr, RERANK_FACTOR), q)
        except InvalidArgument:
            # The core reports non-finite queries without naming them; name the row.
            reject_nonfinite(q, "float32", "queries")
            raise
        return joined(parts)

    @property
    def kind(self) -> str:
        return self._impl.kind

    @property
    def metric(self) -> str:
        return self._impl.metric

    @property
    def rows(self) -> int:
        return int(self._impl.rows)

    @property
    def dim(self) -> int:
        return int(self._impl.dim)

    @property
    def nlist(self) -> int:
        return int(self._impl.nlist)

    @property
    def m(self) -> int | None:
        """IVF_PQ sub-quantisers (None for the other kinds)."""
        return int(self._impl.m) if self.kind == "IVF_PQ" else None

    @property
    def nbits(self) -> int:
        return 8

    @property
    def base(self) -> np.ndarray:
        return self._base

    @property
    def memory_bytes(self) -> int:
        """Bytes the index holds besides ``base`` (lists, codes, centroids, tables; for
        IVF_FLAT that includes its list-ordered copy of the rows)."""
        return int(self._impl.memory_bytes)

    @property
    def centroids(self) -> np.ndarray:
        """(nlist, dim) float32 copy of the coarse centroids."""
        return self._impl.centroids()

    @property
    def list_sizes(self) -> np.ndarray:
        """Rows per inverted list, int64 of shape (nlist,)."""
        return self._impl.list_sizes()
