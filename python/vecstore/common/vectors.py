"""Validation of vector arrays and metric names before they reach the native core.

Everything here is vectorised numpy (no per-row Python) and raises :class:`InvalidArgument` with a
message that names the fix. Accepted vector kinds and their numpy dtypes:

=========  ==========================================================
kind       numpy dtype
=========  ==========================================================
float32    ``np.float32``
float16    ``np.float16``
bfloat16   ``ml_dtypes.bfloat16`` (any dtype whose name is bfloat16)
int8       ``np.int8``
binary     ``np.uint8``, bits packed 8 per byte (``np.packbits(bits, axis=1, bitorder="little")``)
=========  ==========================================================

Conversions are never implicit: a float64 array is refused with the ``np.asarray(...)`` to write,
so that a caller sees (and pays for) every copy.
"""

from __future__ import annotations

import numbers

import numpy as np

from vecstore.errors import InvalidArgument

FLOAT_METRICS = ("L2", "IP", "COSINE")
BINARY_METRICS = ("HAMMING", "JACCARD")
ALL_METRICS = FLOAT_METRICS + BINARY_METRICS

_KINDS = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float16): "float16",
    np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "binary",
}

# Exponent masks of the 16-bit float formats: all ones means inf or NaN.
_EXP_MASK16 = {"float16": 0x7C00, "bfloat16": 0x7F80}


def vector_kind(arr: np.ndarray, name: str) -> str:
    """The vecstore vector kind of ``arr``'s dtype, or InvalidArgument naming the conversion."""
    kind = _KINDS.get(arr.dtype)
    if kind is None and arr.dtype.name == "bfloat16" and arr.dtype.itemsize == 2:
        kind = "bfloat16"
    if kind is None:
        raise InvalidArgument(
            f"{name} has dtype {arr.dtype}, which vecstore does not compute with; supported: "
            "float32, float16, bfloat16 (ml_dtypes), int8, and uint8 for packed binary vectors. "
            f"Convert explicitly, e.g. np.asarray({name}, dtype=np.float32)"
        )
    return kind


def normalize_metric(metric: object, kind: str) -> str:
    """Upper-cased Milvus metric name valid for vectors of ``kind``."""
    if not isinstance(metric, str):
        raise InvalidArgument(
            f"metric must be a string such as 'L2', got {type(metric).__name__}"
        )
    m = metric.upper()
    if m not in ALL_METRICS:
        raise InvalidArgument(
            f"unknown metric {metric!r}: use one of L2, IP, COSINE (float and int8 vectors) "
            "or HAMMING, JACCARD (binary vectors), in any case"
        )
    if kind == "binary" and m not in BINARY_METRICS:
        raise InvalidArgument(
            f"metric {m} needs float or int8 vectors, but the vectors are uint8 (packed binary); "
            "use HAMMING or JACCARD, or pass float vectors"
        )
    if kind != "binary" and m in BINARY_METRICS:
        raise InvalidArgument(
            f"metric {m} needs binary vectors packed into uint8 "
            "(np.packbits(bits, axis=1, bitorder='little')), got {kind} vectors"
        )
    return m


def check_matrix(arr: object, name: str) -> tuple[np.ndarray, str]:
    """Checks that ``arr`` is a 2-D vector matrix the core can read without a copy."""
    if not isinstance(arr, np.ndarray):
        raise InvalidArgument(
            f"{name} must be a numpy.ndarray, got {type(arr).__name__}; "
            f"wrap it with np.asarray({name}, dtype=np.float32)"
        )
    kind = vector_kind(arr, name)
    if arr.ndim != 2:
        hint = f"{name}.reshape(1, -1)" if arr.ndim == 1 else f"{name}.reshape(-1, dim)"
        raise InvalidArgument(
            f"{name} must be 2-D (rows x dimensions), got shape {arr.shape}; use {hint}"
        )
    if arr.shape[1] == 0:
        raise InvalidArgument(f"{name} has zero dimensions; vectors need at least one")
    item = arr.dtype.itemsize
    rows_ok = arr.shape[0] <= 1 or arr.strides[0] >= arr.shape[1] * item
    cols_ok = arr.shape[1] <= 1 or arr.strides[1] == item
    if not (rows_ok and cols_ok):
        raise InvalidArgument(
            f"{name} is not row-contiguous (strides {arr.strides}); "
            f"pass np.ascontiguousarray({name})"
        )
    if not arr.flags.aligned:
        raise InvalidArgument(
            f"{name} is not aligned to its element size; pass np.require({name}, requirements='A')"
        )
    return arr, kind


def nonfinite_rows(arr: np.ndarray, kind: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Indices of the rows of ``arr`` (restricted to ``rows`` if given) holding NaN or infinity."""
    if kind in ("int8", "binary"):
        return np.empty(0, dtype=np.int64)
    sub = arr if rows is None else arr[rows]
    if kind in _EXP_MASK16:
        mask = _EXP_MASK16[kind]
        bad = ((sub.view(np.uint16) & mask) == mask).any(axis=1)
    else:
        bad = ~np.isfinite(sub).all(axis=1)
    idx = np.flatnonzero(bad)
    return idx if rows is None else rows[idx]


def reject_nonfinite(arr: np.ndarray, kind: str, name: str, rows: np.ndarray | None = None) -> None:
    """InvalidArgument naming the first row of ``arr`` that holds NaN or infinity, if any."""
    bad = nonfinite_rows(arr, kind, rows)
    if bad.size:
        raise InvalidArgument(
            f"{name} row {int(bad[0])} contains NaN or infinity ({bad.size} such rows); "
            "vecstore rejects non-finite vectors: drop or repair them (e.g. np.nan_to_num)"
        )


def check_count(value: object, name: str, low: int, high: int | None = None) -> int:
    """An int in [low, high]; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < low or (high is not None and v > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgument(f"{name} must be {bound}, got {v}")
    return v


def packed_allow(allow: object, n: int) -> np.ndarray | None:
    """A bool mask of shape (n,) is packed; a packed uint8 bitset of ceil(n / 8) bytes (as
    ``np.packbits(mask, bitorder="little")`` writes it) is used as is."""
    if allow is None:
        return None
    if isinstance(allow, np.ndarray) and allow.dtype == np.bool_ and allow.shape == (n,):
        return np.packbits(allow, bitorder="little")
    nbytes = (n + 7) // 8
    if isinstance(allow, np.ndarray) and allow.dtype == np.uint8 and allow.shape == (nbytes,):
        return np.ascontiguousarray(allow)
    got = (
        f"{allow.dtype} array of shape {allow.shape}"
        if isinstance(allow, np.ndarray)
        else type(allow).__name__
    )
    raise InvalidArgument(
        f"allow must be a boolean numpy array of shape ({n},) (one flag per base row) or its "
        f"packed form, a uint8 array of shape ({nbytes},) from np.packbits(mask, "
        f"bitorder='little'); got {got}"
    )
