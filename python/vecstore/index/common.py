"""Argument checks the index engines share: float32 matrices, the three float metrics, allow
masks (``packed_allow``, from common.vectors) and serialised-image buffers. Messages name the
problem and the fix, as in :mod:`vecstore.compute`."""

from __future__ import annotations

import numpy as np

from vecstore.common.vectors import check_matrix, normalize_metric, packed_allow  # noqa: F401
from vecstore.errors import InvalidArgument


def float_matrix(arr: object, name: str, engine: str) -> np.ndarray:
    """``arr`` as a float32 (rows, dim) matrix the core reads in place."""
    a, kind = check_matrix(arr, name)
    if kind != "float32":
        raise InvalidArgument(
            f"{engine} needs float32 vectors, got {kind}; "
            f"pass np.ascontiguousarray({name}, dtype=np.float32)"
        )
    return a


def float_queries(queries: object, dim: int, engine: str) -> np.ndarray:
    """``queries`` as a float32 (m, dim) matrix matching an index of dimension ``dim``. A
    C-contiguous float32 matrix of the right width passes without the general checks: a
    one-query search takes ~10-25 us in the core, so per-call Python must stay cheap."""
    q = queries
    if type(q) is np.ndarray and q.dtype == np.float32 and q.ndim == 2 and \
            q.flags.c_contiguous and q.shape[1] == dim:
        return q
    q = float_matrix(queries, "queries", engine)
    if q.shape[1] != dim:
        raise InvalidArgument(
            f"dimension mismatch: queries have {q.shape[1]} columns but the index has {dim}; "
            "both must have the same vector dimension"
        )
    return q


def float_metric(metric: object, engine: str) -> str:
    m = normalize_metric(metric, "float32")
    if m not in ("L2", "IP", "COSINE"):
        raise InvalidArgument(f"{engine} supports the L2, IP and COSINE metrics, got {m}")
    return m


def byte_view(buffer: object) -> memoryview:
    """A flat byte view of a serialised image (bytes, bytearray, memoryview, mmap, uint8 array),
    read in place."""
    try:
        view = memoryview(buffer)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgument(
            f"buffer must be a bytes-like object (bytes, bytearray, mmap, numpy uint8 array), "
            f"got {type(buffer).__name__}"
        ) from None
    if not view.c_contiguous:
        raise InvalidArgument("buffer must be contiguous; pass bytes(buffer)")
    return view.cast("B") if view.ndim != 1 or view.format != "B" else view
