"""Validation and normalisation of the columns a segment is written from (no I/O here).

Every function either returns the column in the one form the writer stores or raises
:class:`~vecstore.errors.InvalidArgument` naming the column and the fix; all checks are vectorised.

- primary keys: int64 or UTF-8 string, no nulls; accepted as numpy integer arrays (any width;
  uint64 values must fit int64), numpy ``str`` or object-of-``str`` arrays, pyarrow integer or
  string arrays (chunked too), or lists. Returned as a pyarrow ``int64`` or ``string`` /
  ``large_string`` array. Uniqueness is *not* required: Milvus allows a key to be inserted twice
  and an upsert leaves the old row (deleted) and the new one in the same segment; readers resolve
  duplicates by timestamp.
- timestamps: non-negative integers (numpy, pyarrow or list), returned as a uint64 numpy array.
- vectors: ``array`` or ``(array, kind)`` with kind one of float32, float16, bfloat16, int8,
  binary; returned C-contiguous and little-endian (a copy only where that needs one).
- scalars: a pyarrow Table, a dict of column name -> array-like, or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.errors import InvalidArgument
from vecstore.storage.segment.manifest import TS_COLUMN, VECTOR_KINDS, valid_field_name

MAX_STRING_PK_BYTES = 65_535  # Milvus's VarChar limit
_KIND_OF = {("f", 4): "float32", ("f", 2): "float16", ("i", 1): "int8", ("u", 1): "binary"}


def _arrow(values: object, name: str) -> pa.Array:
    """``values`` as one pyarrow Array (chunks combined), or InvalidArgument."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, (str, bytes, Mapping)) or values is None:
        raise InvalidArgument(f"{name} must be an array of values, got {type(values).__name__}")
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise InvalidArgument(f"{name} must be 1-D, got shape {values.shape}")
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as e:
        raise InvalidArgument(f"{name} cannot be converted to an Arrow array: {e}") from None


def as_pk_array(values: object, name: str = "pk") -> tuple[pa.Array, str]:
    """(keys as an Arrow int64 or string array, "int64" | "string")."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "iu":
            if values.ndim != 1:
                raise InvalidArgument(f"{name} must be 1-D, got shape {values.shape}")
            if values.dtype.kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
                raise InvalidArgument(f"{name} has values above the int64 maximum; keys are int64")
            return pa.array(values.astype(np.int64, copy=False)), "int64"
        if values.dtype.kind not in "UO":
            raise InvalidArgument(
                f"{name} has dtype {values.dtype}; primary keys are int64 or str "
                f"(np.asarray({name}, dtype=np.int64), or an array of str)"
            )
    arr = _arrow(values, name)
    t = arr.type
    if pa.types.is_integer(t):
        try:
            arr = arr.cast(pa.int64())
        except pa.ArrowInvalid:
            raise InvalidArgument(f"{name} has values outside int64; keys are int64") from None
        kind = "int64"
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        if pa.types.is_string_view(t):
            arr = arr.cast(pa.string())
        kind = "string"
    elif pa.types.is_null(t) and len(arr) == 0:
        raise InvalidArgument(f"{name} is empty; a segment needs at least one row")
    else:
        raise InvalidArgument(f"{name} has type {t}; primary keys are int64 or string (VarChar)")
    if arr.null_count:
        raise InvalidArgument(
            f"{name} has {arr.null_count} null values; primary keys cannot be null"
        )
    if kind == "string" and len(arr):
        longest = pc.max(pc.binary_length(arr)).as_py()
        if longest > MAX_STRING_PK_BYTES:
            raise InvalidArgument(
                f"{name} has a key of {longest} bytes; string keys are at most "
                f"{MAX_STRING_PK_BYTES} bytes in UTF-8"
            )
    return arr, kind


def as_timestamps(values: object, name: str = "timestamps") -> np.ndarray:
    """Timestamps as a uint64 numpy array (non-negative integers only)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = _arrow(values, name)
        if arr.null_count:
            raise InvalidArgument(f"{name} has {arr.null_count} nulls; every row needs one")
        values = arr.to_numpy(zero_copy_only=False)
    elif not isinstance(values, np.ndarray):
        if isinstance(values, (str, bytes, Mapping)) or values is None:
            raise InvalidArgument(
                f"{name} must be an array of integers, got {type(values).__name__}"
            )
        try:
            values = np.asarray(values)
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidArgument(f"{name} cannot be read as integers: {e}") from None
    if values.dtype.kind not in "iu" or values.ndim != 1:
        raise InvalidArgument(
            f"{name} must be a 1-D array of non-negative integers (uint64), got dtype "
            f"{values.dtype} and shape {values.shape}"
        )
    if values.dtype.kind == "i" and values.size and values.min() < 0:
        raise InvalidArgument(f"{name} has negative values; timestamps are uint64")
    return values.astype(np.uint64, copy=False)


def as_vectors(field: str, value: object, rows: int) -> tuple[np.ndarray, str, int]:
    """(C-contiguous little-endian 2-D array in the stored dtype, kind, dim) of one field."""
    if not valid_field_name(field):
        raise InvalidArgument(
            f"vector field name {field!r} is not valid: use letters, digits and '_' "
            "(not starting with a digit), at most 255 characters"
        )
    kind = None
    if isinstance(value, tuple):
        if len(value) != 2 or not isinstance(value[1], str):
            raise InvalidArgument(f"vectors[{field!r}] must be an array or (array, kind)")
        value, kind = value
        if kind not in VECTOR_KINDS:
            raise InvalidArgument(
                f"vectors[{field!r}]: unknown kind {kind!r}; use one of {sorted(VECTOR_KINDS)}"
            )
    if not isinstance(value, np.ndarray):
        raise InvalidArgument(
            f"vectors[{field!r}] must be a numpy array, got {type(value).__name__}"
        )
    found = _KIND_OF.get((value.dtype.kind, value.dtype.itemsize))
    if value.dtype.name == "bfloat16" and value.dtype.itemsize == 2:
        found = "bfloat16"
        value = value.view(np.uint16)  # the raw bits; the stored form
    elif kind == "bfloat16" and (value.dtype.kind, value.dtype.itemsize) == ("u", 2):
        found = "bfloat16"  # raw bfloat16 bits given as uint16
    if found is None or (kind is not None and found != kind):
        raise InvalidArgument(
            f"vectors[{field!r}] has dtype {value.dtype}, which does not hold "
            f"{kind or 'a vector kind'}; stored kinds: float32, float16, bfloat16 (ml_dtypes, or "
            "uint16 bits with kind 'bfloat16'), int8, binary (uint8, 8 bits per byte)"
        )
    descr, _, bits = VECTOR_KINDS[found]
    if value.ndim != 2 or value.shape[1] == 0:
        raise InvalidArgument(
            f"vectors[{field!r}] must be 2-D (rows x dim) with dim > 0, got shape {value.shape}"
        )
    if value.shape[0] != rows:
        raise InvalidArgument(
            f"vectors[{field!r}] has {value.shape[0]} rows but pk has {rows}; every column needs "
            "one value per row"
        )
    # astype(copy=False) converts big-endian input and is free for the usual native arrays.
    stored = np.ascontiguousarray(value.astype(np.dtype(descr), copy=False))
    return stored, found, value.shape[1] * bits


def as_scalar_table(scalars: object, rows: int, reserved: set[str]) -> pa.Table | None:
    """The extra scalar columns as a Table (names checked against ``reserved``), or None."""
    if scalars is None:
        return None
    if isinstance(scalars, pa.Table):
        table = scalars
    elif isinstance(scalars, Mapping):
        columns: dict[str, Any] = {}
        for key, values in scalars.items():
            if not isinstance(key, str):
                raise InvalidArgument(f"scalar column names must be str, got {key!r}")
            columns[key] = _arrow(values, f"scalars[{key!r}]")
        try:
            table = pa.table(columns) if columns else None
        except (pa.ArrowInvalid, ValueError) as e:
            raise InvalidArgument(f"scalar columns do not form a table: {e}") from None
        if table is None:
            return None
    else:
        raise InvalidArgument(
            f"scalars must be a pyarrow.Table, a dict of column -> values, or None; "
            f"got {type(scalars).__name__}"
        )
    names = table.column_names
    if len(set(names)) != len(names):
        raise InvalidArgument(f"scalar columns have duplicate names: {names}")
    for name in names:
        if not name or name.startswith("$") or name in reserved:
            raise InvalidArgument(
                f"scalar column name {name!r} is empty, starts with '$' (reserved, e.g. "
                f"{TS_COLUMN}) or repeats the primary key or a vector field"
            )
    if table.num_rows != rows:
        raise InvalidArgument(
            f"scalar columns have {table.num_rows} rows but pk has {rows}; every column needs "
            "one value per row"
        )
    return table
