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
