"""One sealed segment's index on one vector field: built from an :class:`IndexSpec`, saved as an
image, reopened over the segment's mapped vectors, and searched with a per-call choice between
the index and exact search.

The engines: HNSW and HNSW_SQ (:mod:`vecstore.index.hnsw`), IVF_FLAT / IVF_SQ8 / IVF_PQ
(:mod:`vecstore.index.ivf`), BIN_IVF_FLAT (:mod:`vecstore.index.bin_ivf`). Each image holds the
index structure only; the vectors stay in the segment's mapped file, which the index reads in
place.

Choosing per call (:meth:`SegmentIndex.search` returns None when exact search should answer):

- HNSW honours the allow-set inside its traversal and switches to an exact scan of the allowed
  rows by its own cost estimate when few are allowed, so it always answers.
- IVF scans ``nprobe`` of ``nlist`` lists. With an allow-set, the allowed rows expected in those
  lists (allowed * nprobe / nlist) must comfortably exceed k for recall to hold (a list's allowed
  rows are as close as its others), and an exact scan of the allowed rows is also cheaper when
  there are fewer of them than rows the lists hold. Below either bound, exact search answers.

Small segments: IVF's ``nlist`` is lowered to ``rows // 39`` (at least 1) where the segment is too
small for it (k-means needs ~39 rows per centroid to place them), and ``nprobe`` to that nlist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecstore.index.spec import IndexSpec

# IVF with an allow-set: exact search answers when fewer than this many allowed rows per result
# slot are expected in the probed lists.
IVF_ALLOWED_PER_SLOT = 10
ROWS_PER_CENTROID = 39
DEFAULT_NPROBE = 8  # Milvus's (knowhere's) default


def _engine_nlist(spec: IndexSpec, rows: int) -> int:
    return max(1, min(int(spec.param("nlist")), rows // ROWS_PER_CENTROID))


def build_image(spec: IndexSpec, base: np.ndarray, threads: int = 0,
                cancel: Any = None) -> bytes:
    """The index image of ``spec`` over ``base`` (the segment's vectors, read in place).
    ``cancel``: a ``_core.CancelFlag`` that stops an HNSW build (raising Cancelled) when set;
    the other engines build in seconds and run to the end."""
    t = spec.index_type
    if t in ("HNSW", "HNSW_SQ"):
        from vecstore.index.hnsw import HnswIndex

        extra: dict[str, Any] = {}
        if t == "HNSW_SQ":
            extra = {"sq_type": spec.param("sq_type"), "refine": spec.param("refine"),
                     "refine_k": spec.param("refine_k")}
        return HnswIndex.build(base, spec.metric, M=int(spec.param("M")),
                               ef_construction=int(spec.param("efConstruction")),
                               threads=threads, cancel=cancel, **extra).to_bytes()
    if t in ("IVF_FLAT", "IVF_SQ8", "IVF_PQ"):
        from vecstore.index.ivf import IvfIndex

        m = int(spec.param("m")) if t == "IVF_PQ" else None
        return IvfIndex.build(base, t, spec.metric, _engine_nlist(spec, base.shape[0]), m=m,
                              threads=threads).to_bytes()
    if t == "BIN_IVF_FLAT":
        from vecstore.index.bin_ivf import BinIvfIndex

        return BinIvfIndex.build(base, spec.metric, _engine_nlist(spec, base.shape[0]),
                                 threads=threads).to_bytes()
    raise AssertionError(f"{t} has no build")  # exact types never reach here


class SegmentIndex:
    """An opened index over a segment's vectors, with the spec it was built for."""

    __slots__ = ("engine", "nbytes", "rows", "spec")

    def __init__(self, spec: IndexSpec, buffer: Any, base: np.ndarray) -> None:
        """Opens an image written by :func:`build_image` for ``spec`` over ``base``; the engine
        checks the image (CorruptionError when damaged) and keeps ``buffer`` alive."""
        self.spec = spec
        self.rows = int(base.shape[0])
        t = spec.index_type
        if t in ("HNSW", "HNSW_SQ"):
            from vecstore.index.hnsw import HnswIndex

            self.engine: Any = HnswIndex.from_bytes(buffer, base)
        elif t == "BIN_IVF_FLAT":
            from vecstore.index.bin_ivf import BinIvfIndex

            self.engine = BinIvfIndex.from_bytes(buffer)  # holds its rows (packed, list order)
        else:
            from vecstore.index.ivf import IvfIndex

            self.engine = IvfIndex.from_bytes(buffer, base)
        self.nbytes = len(memoryview(buffer))

    def search(self, queries: np.ndarray, k: int, allow: np.ndarray | None,
               params: dict[str, int] | None, threads: int = 0, *,
               packed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(row numbers, distances) of the index's top-k among ``allow`` (a complete mask or
        None), or None when exact search over the allowed rows is the better plan. ``packed``:
        the same mask already packed, passed to the engine instead of packing it again."""
        params = params or {}
        k = min(k, self.rows)
        t = self.spec.index_type
        if t in ("HNSW", "HNSW_SQ"):
            ef = params.get("ef")
            return self.engine.search(queries, k, ef=max(ef, k) if ef else None,
                                      allow=allow if packed is None else packed,
                                      threads=threads)
        nlist = self.engine.nlist
        nprobe = min(params.get("nprobe", DEFAULT_NPROBE), nlist)
        if allow is not None:
            allowed = int(np.count_nonzero(allow))
            scanned = self.rows * nprobe / nlist
            if allowed * nprobe / nlist < IVF_ALLOWED_PER_SLOT * k or allowed <= scanned:
                return None
        bits = allow if packed is None else packed
        if t == "BIN_IVF_FLAT":
            return self.engine.search(queries, k, nprobe, allow=bits, threads=threads)
        return self.engine.search(queries, k, nprobe, allow=bits, threads=threads, rerank=False)
