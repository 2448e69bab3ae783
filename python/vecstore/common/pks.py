"""Primary keys as numpy arrays, the one form every role compares them in: int64 keys as int64,
VARCHAR keys as a numpy ``str`` array (what ``np.searchsorted``, ``np.isin`` and ``np.unique``
need). Conversion is vectorised (no per-row Python objects kept)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def pks_to_numpy(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow int64 or string primary-key column as numpy (see the module docstring)."""
    values = arr.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(arr.type):
        return values.astype(np.int64, copy=False)
    return values.astype(str)
