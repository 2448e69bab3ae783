"""BIN_IVF_FLAT: an IVF index over packed binary vectors (the C++ core's ``index/bin_ivf.h``).

Milvus's index type for ``BINARY_VECTOR`` fields, metrics ``HAMMING`` and ``JACCARD``; build
parameter ``nlist``, search parameter ``nprobe``. Vectors are ``uint8`` arrays of shape
``(n, dim / 8)``, bits packed as :func:`vecstore.knn` reads them
(``np.packbits(bits, axis=1, bitorder="little")``).

Training is binary k-means on at most ``256 * nlist`` rows (seeded, so a build is
deterministic): centroids start as distinct rows, and each round assigns rows to their closest
centroid under the index's metric and sets every centroid bit to its members' majority bit. The
lists keep the packed rows themselves, in list order, so the index needs no base array once
built and a probe reads contiguous memory.

Distances are exactly :func:`vecstore.knn`'s (the same popcount kernels): ``HAMMING`` the count
of differing bits as float32, ``JACCARD`` ``1 - |a & b| / |a | b|`` (0 for two all-zero
vectors). Smaller is closer; equal distances list the smaller row id first; missing slots hold
id -1 and distance +inf. ``nprobe == nlist`` gives exactly :func:`vecstore.knn`'s results.

``to_bytes`` gives a versioned, checksummed buffer; ``from_bytes`` opens it without copying (the
index keeps the buffer alive; it must not change) and raises
:class:`vecstore.errors.CorruptionError` for a damaged or truncated one.
"""

from __future__ import annotations

import numpy as np

from vecstore import _core
from vecstore.common.vectors import check_count
from vecstore.compute import in_chunks, joined
from vecstore.errors import InvalidArgument
from vecstore.index.common import byte_view, check_matrix, normalize_metric, packed_allow

__all__ = ["BinIvfIndex"]

MAX_NLIST = 65536
MAX_BYTES = 65536


def _binary_matrix(arr: object, name: str) -> np.ndarray:
    a, kind = check_matrix(arr, name)
    if kind != "binary":
        raise InvalidArgument(
            f"BIN_IVF_FLAT needs binary vectors packed into uint8, got {kind}; pack 0/1 bits "
            f"with np.packbits(bits, axis=1, bitorder='little')"
        )
    return a


class BinIvfIndex:
    """A BIN_IVF_FLAT index; build with :meth:`build` or open with :meth:`from_bytes`.
    Searches may run from several threads at once."""

    __slots__ = ("_impl",)

    def __init__(self, impl: _core.BinIvfIndex) -> None:
        self._impl = impl

    @classmethod
    def build(
        cls,
        base: np.ndarray,
        metric: str = "HAMMING",
        nlist: int = 128,
        seed: int = 0,
        threads: int = 0,
        *,
        niter: int = 10,
    ) -> BinIvfIndex:
        """Trains and fills an index over ``base`` ((n, dim / 8) uint8, packed bits).

        Args:
            metric: ``HAMMING`` or ``JACCARD`` (case-insensitive).
            nlist: inverted lists, 1..65536 and at most n.
            seed: k-means seed (same seed, same index).
            threads: build threads, 0 for all cores.
            niter: binary k-means rounds.
        """
        arr = _binary_matrix(base, "base")
        n, nbytes = arr.shape
        met = normalize_metric(metric, "binary")
        if n == 0:
            raise InvalidArgument(
                "base has no rows; a BIN_IVF_FLAT index needs at least nlist rows"
            )
        if nbytes > MAX_BYTES:
            raise InvalidArgument(
                f"BIN_IVF_FLAT supports up to {MAX_BYTES * 8} bits, got {nbytes * 8}"
            )
        nl = check_count(nlist, "nlist", 1, MAX_NLIST)
        if nl > n:
            raise InvalidArgument(
                f"nlist={nl} exceeds the number of rows ({n}); every list needs a row to train "
                f"its centroid: use nlist <= {n} (Milvus suggests about 4 * sqrt(n))"
            )
        s = check_count(seed, "seed", 0, 2**64 - 1)
        it = check_count(niter, "niter", 0, 1000)
        t = check_count(threads, "threads", 0)
        return cls(_core.BinIvfIndex.build(arr, met, nl, s, it, t))

    @classmethod
    def from_bytes(cls, buffer: object) -> BinIvfIndex:
        """Opens a buffer written by :meth:`to_bytes` without copying it (bytes, bytearray,
        memoryview or mmap; it must not change while the index lives). CorruptionError for a
        damaged buffer."""
        return cls(_core.BinIvfIndex.load(byte_view(buffer)))

    def to_bytes(self) -> bytes:
        """The index's serialised form (see cpp/index/bin_ivf.h for the layout)."""
        return self._impl.to_bytes()

    def search(
        self,
        queries: np.ndarray,
        k: int,
        nprobe: int = 8,
        allow: np.ndarray | None = None,
        threads: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best rows for each query among the ``nprobe`` closest lists.

        Args:
            queries: (m, dim / 8) uint8, packed like ``base``.
            k: results per query, at least 1.
            nprobe: lists scanned per query, 1..nlist.
            allow: optional boolean array of shape (rows,) (or its packed form); rows where it
                is False are never returned.
            threads: threads, 0 for all cores.

        Returns:
            ``(ids, distances)``: int64 and float32 of shape (m, k), best first; missing slots
            hold id -1 and +inf.
        """
        q = queries
        nbytes = self.dim // 8
        if not (type(q) is np.ndarray and q.dtype == np.uint8 and q.ndim == 2
                and q.flags.c_contiguous and q.shape[1] == nbytes):
            q = _binary_matrix(queries, "queries")
            if q.shape[1] != nbytes:
                raise InvalidArgument(
                    f"dimension mismatch: queries have {q.shape[1]} bytes per vector "
                    f"({q.shape[1] * 8} bits) but the index has {nbytes} ({self.dim} bits)"
                )
        kk = k if type(k) is int and k >= 1 else check_count(k, "k", 1)
        nlist = self._impl.nlist
        npr = (
            nprobe
            if type(nprobe) is int and 1 <= nprobe <= nlist
            else check_count(nprobe, "nprobe", 1, nlist)
        )
        t = threads if type(threads) is int and threads >= 0 else check_count(threads, "threads", 0)
        packed = packed_allow(allow, self.rows)
        impl = self._impl
        return joined(in_chunks(lambda c: impl.search(c, kk, npr, packed, t), q))

    @property
    def metric(self) -> str:
        return self._impl.metric

    @property
    def rows(self) -> int:
        return int(self._impl.rows)

    @property
    def dim(self) -> int:
        """Bits per vector."""
        return int(self._impl.dim)

    @property
    def nlist(self) -> int:
        return int(self._impl.nlist)

    @property
    def memory_bytes(self) -> int:
        """Bytes the index holds (its image: centroids, lists, packed rows)."""
        return int(self._impl.memory_bytes)

    @property
    def centroids(self) -> np.ndarray:
        """(nlist, dim / 8) uint8 copy of the packed centroids."""
        return self._impl.centroids()

    @property
    def list_sizes(self) -> np.ndarray:
        """Rows per inverted list, int64 of shape (nlist,)."""
        return self._impl.list_sizes()
