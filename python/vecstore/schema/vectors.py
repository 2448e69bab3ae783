"""Vector column conversion: dense vectors to FixedSizeList arrays, sparse rows to maps.

Called by :func:`vecstore.schema.columns.convert_column` with the non-null rows of one vector
field; raises :class:`~vecstore.schema.columns.RowError` (turned into a DataError naming the field
and row there). Accepted inputs, for ``n`` rows of a field of dimension ``dim``:

- a 2-D numpy array ``(n, dim)`` (``(n, dim / 8)`` uint8 for binary vectors);
- a pyarrow FixedSizeList or List column (the canonical layout included, so validated tables pass
  again), or a binary column of raw little-endian rows;
- a sequence of rows, each a list/tuple/numpy array of numbers, or ``bytes`` of the raw row
  (pymilvus's form for binary, float16 and bfloat16 vectors).

Element types: FLOAT_VECTOR takes any real dtype (float64/float16/bfloat16/ints converted to
float32); FLOAT16_VECTOR takes float16, or reals converted to float16; BFLOAT16_VECTOR takes
``ml_dtypes.bfloat16`` arrays, uint16 arrays of raw bfloat16 bits, or reals rounded to nearest
even; INT8_VECTOR takes integers in [-128, 127]; BINARY_VECTOR takes packed uint8 bytes
(``np.packbits(bits, axis=-1)``; bool arrays are refused rather than packed in a guessed bit
order). Float kinds refuse NaN and infinity, including values that overflow the target width
(Milvus's ``VerifyFloats32``/``VerifyFloats16``/``VerifyBFloats16``). Every row must have exactly
``dim`` values (Milvus: "the dim (%d) of field data(%s) is not equal to schema dim (%d)").

SPARSE_FLOAT_VECTOR rows are ``{index: value}`` dicts, sequences of ``(index, value)`` pairs,
one-row scipy sparse matrices, or the whole column as one scipy sparse matrix or Arrow
``map<uint32, float32>``. Indices must be integers in [0, 2**32 - 1) and unique within a row
(Milvus: "invalid index in sparse float vector: must be less than 2^32-1", "unsorted or same
indices in sparse float vector"); rows come back sorted by index. Values must be finite. Empty rows
are allowed (pymilvus allows them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.schema.arrow import VECTOR_VALUE_TYPE
from vecstore.schema.columns import RowError, as_arrow, first_row, type_name
from vecstore.schema.field import FieldSchema
from vecstore.schema.limits import MAX_SPARSE_INDEX
from vecstore.schema.types import DataType

_RAW_DTYPE = {
    DataType.FLOAT_VECTOR: np.dtype("<f4"),
    DataType.FLOAT16_VECTOR: np.dtype("<f2"),
    DataType.BFLOAT16_VECTOR: np.dtype("<u2"),
    DataType.INT8_VECTOR: np.dtype("i1"),
    DataType.BINARY_VECTOR: np.dtype("u1"),
}
_BYTES_TYPES = (bytes, bytearray, memoryview)


def _dim_error(field: FieldSchema, data_dim: int, row: int) -> RowError:
    dim = field.param_int("dim")
    return RowError(
        f"the dim ({data_dim}) of field data({field.name}) is not equal to schema dim ({dim}); "
        f"give every vector exactly {dim} "
        + (
            "bits (packed into dim / 8 bytes)"
            if field.dtype == DataType.BINARY_VECTOR
            else "values"
        ),
        row,
    )


def _data_dim(field: FieldSchema, width: int) -> int:
    return width * 8 if field.dtype == DataType.BINARY_VECTOR else width


def _from_bytes(field: FieldSchema, rows: list, width: int) -> np.ndarray:
    raw = _RAW_DTYPE[field.dtype]
    lengths = np.fromiter((len(r) for r in rows), np.int64, count=len(rows))
    bad = lengths != width * raw.itemsize
    if bad.any():
        i = first_row(bad)
        raise _dim_error(field, _data_dim(field, int(lengths[i]) // raw.itemsize), i)
    return np.frombuffer(b"".join(bytes(r) for r in rows), dtype=raw).reshape(len(rows), width)


def _from_arrow(field: FieldSchema, arr: pa.Array, width: int) -> np.ndarray:
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return _from_bytes(field, arr.to_pylist(), width)
    if pa.types.is_fixed_size_list(t):
        if t.list_size != width:
            raise _dim_error(field, _data_dim(field, t.list_size), 0)
        child = arr.values.slice(arr.offset * width, len(arr) * width)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        bad = lengths != width
        if bad.any():
            i = first_row(bad)
            raise _dim_error(field, _data_dim(field, int(lengths[i])), i)
        offsets = arr.offsets.to_numpy()
        child = arr.values.slice(offsets[0], offsets[-1] - offsets[0])
    else:
        raise RowError(f"a vector column must hold lists of numbers, got Arrow type {t}", 0)
    if child.null_count:
        i = int(np.flatnonzero(child.is_null().to_numpy(zero_copy_only=False))[0]) // width
        raise RowError("vector elements cannot be None; fill them or drop the row", i)
    if not (pa.types.is_integer(child.type) or pa.types.is_floating(child.type)):
        raise RowError(f"vector elements must be numbers, got Arrow type {child.type}", 0)
    return child.to_numpy(zero_copy_only=False).reshape(len(arr), width)


def _from_rows(field: FieldSchema, rows: list, width: int) -> np.ndarray:
    if rows and all(isinstance(r, _BYTES_TYPES) for r in rows):
        return _from_bytes(field, rows, width)
    try:
        mat = np.asarray(rows)
    except ValueError:  # ragged rows: numpy refuses an inhomogeneous shape
        mat = None
    if mat is not None and mat.ndim == 2 and mat.dtype == object:
        try:  # e.g. a 2-D object array of numbers: let numpy find their common type
            mat = np.array(mat.tolist())
        except ValueError:
            mat = None
    if mat is not None and mat.ndim == 2 and _numeric(mat.dtype):
        return mat
    # The error path: find the first row that is not a vector of ``width`` numbers.
    for i, r in enumerate(rows):
        if isinstance(r, (str, Mapping, *_BYTES_TYPES)) or np.ndim(r) != 1:
            raise RowError(
                f"a vector must be a list or 1-D array of {field.param_int('dim')} numbers, got "
                f"{type_name(r)}",
                i,
            )
        if len(r) != width:
            raise _dim_error(field, _data_dim(field, len(r)), i)
        kind = np.asarray(r).dtype
        if not _numeric(kind):
            raise RowError(f"vector elements must be numbers, got {kind}", i)
    raise RowError("the vectors cannot be combined into one array (mixed element types)", 0)


def _numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "iufb" or dtype.name == "bfloat16"


def _nonfinite(values: np.ndarray, raw: np.ndarray, what: str) -> None:
    # A row sum is NaN or infinite whenever an element is, and is 3x cheaper than isfinite over
    # every element (no n x dim temporary); finite rows whose sum overflows are re-checked exactly.
    with np.errstate(over="ignore", invalid="ignore"):
        suspect = np.flatnonzero(~np.isfinite(values.sum(axis=1, dtype=np.float32)))
    if suspect.size:
        bad_rows = suspect[~np.isfinite(values[suspect]).all(axis=1)]
        if not bad_rows.size:
            return
        i = int(bad_rows[0])
        j = int(np.flatnonzero(~np.isfinite(values[i]))[0])
        original = raw[i, j]
        extra = f" ({what} overflows)" if np.isfinite(np.float64(original)) else ""
        raise RowError(
            f"value '{original}' is not a number or infinity{extra}; drop the row or repair it "
            "(e.g. np.nan_to_num)",
            i,
        )


def _real(field: FieldSchema, mat: np.ndarray) -> None:
    if mat.dtype.kind not in "iuf" and mat.dtype.name != "bfloat16":
        raise RowError(
            f"{field.dtype.name} values must be real numbers, got dtype {mat.dtype}; convert "
            "explicitly, e.g. np.asarray(x, dtype=np.float32)",
            0,
        )


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), rounding to nearest even, as ml_dtypes does."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():  # keep NaN a NaN (rounding could carry it into infinity)
        out[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def _typed(field: FieldSchema, mat: np.ndarray) -> np.ndarray:
    dtype = field.dtype
    if dtype == DataType.FLOAT_VECTOR:
        _real(field, mat)
        with np.errstate(over="ignore", invalid="ignore"):
            out = mat.astype(np.float32, copy=False)
        _nonfinite(out, mat, "float32")
        return out
    if dtype == DataType.FLOAT16_VECTOR:
        _real(field, mat)
        with np.errstate(over="ignore", invalid="ignore"):
            out = mat.astype(np.float16, copy=False)
        _nonfinite(out, mat, "float16")
        return out
    if dtype == DataType.BFLOAT16_VECTOR:
        if mat.dtype.name == "bfloat16" or mat.dtype == np.uint16:
            out = mat.view(np.uint16) if mat.dtype.itemsize == 2 else mat.astype(np.uint16)
        else:
            _real(field, mat)
            with np.errstate(over="ignore", invalid="ignore"):
                f32 = mat.astype(np.float32)
            out = f32_to_bf16_bits(f32)
        bad = ((out & 0x7F80) == 0x7F80).any(axis=1)
        if bad.any():
            i = first_row(bad)
            raise RowError(
                "value is not a number or infinity (NaN, infinity, or a value that overflows "
                "bfloat16); drop the row or repair it",
                i,
            )
        return out
    if dtype == DataType.INT8_VECTOR:
        if mat.dtype.kind not in "iu":
            raise RowError(
                f"int8 vector values must be integers in [-128, 127], got dtype {mat.dtype}; "
                "quantise first, e.g. np.clip(np.rint(x), -128, 127).astype(np.int8)",
                0,
            )
        bad = ((mat < -128) | (mat > 127)).any(axis=1) if mat.dtype != np.int8 else None
        if bad is not None and bad.any():
            i = first_row(bad)
            raise RowError("int8 vector values must be in [-128, 127]", i)
        return mat.astype(np.int8, copy=False)
    # BINARY_VECTOR
    if mat.dtype.kind not in "iu":
        raise RowError(
            f"binary vectors are packed bytes (uint8, dim / 8 per row), got dtype {mat.dtype}; "
            "pack bits with np.packbits(bits, axis=-1)",
            0,
        )
    if mat.dtype != np.uint8:
        bad = ((mat < 0) | (mat > 255)).any(axis=1)
        if bad.any():
            raise RowError("binary vector bytes must be in [0, 255]", first_row(bad))
    return mat.astype(np.uint8, copy=False)


def _dense(field: FieldSchema, values: Any) -> pa.Array:
    value_type, per = VECTOR_VALUE_TYPE[field.dtype]
    width = (field.param_int("dim") or 0) // per
    arr = as_arrow(values)
    if arr is not None:
        mat = _from_arrow(field, arr, width)
    elif isinstance(values, np.ndarray) and values.dtype != object:
        if values.ndim != 2:
            raise RowError(
                f"a vector column must be 2-D (rows x {width}), got shape {values.shape}; "
                "use x.reshape(-1, dim)",
                0,
            )
        mat = values
    else:
        mat = _from_rows(field, list(values), width)
    if mat.dtype == np.bool_:
        raise RowError(
            f"{field.dtype.name} values must be numbers, got bools"
            + (
                "; pack bits with np.packbits(bits, axis=-1)"
                if field.dtype == DataType.BINARY_VECTOR
                else ""
            ),
            0,
        )
    if mat.shape[1] != width:
        raise _dim_error(field, _data_dim(field, mat.shape[1]), 0)
    out = np.ascontiguousarray(_typed(field, mat))
    return pa.FixedSizeListArray.from_arrays(pa.array(out.reshape(-1), value_type), width)


def _sparse_parts(values: Any) -> tuple[np.ndarray, Any, Any]:
    """(row lengths, indices, values) of the sparse rows, before any check."""
    if hasattr(values, "tocsr"):
        csr = values.tocsr()
        return np.diff(csr.indptr), np.asarray(csr.indices), np.asarray(csr.data)
    arr = as_arrow(values)
    if arr is not None:
        if not pa.types.is_map(arr.type):
            raise RowError(
                f"a sparse vector column must be map<uint32, float32>, got {arr.type}", 0
            )
        offsets = arr.offsets.to_numpy()
        keys = arr.keys.slice(offsets[0], offsets[-1] - offsets[0])
        items = arr.items.slice(offsets[0], offsets[-1] - offsets[0])
        if items.null_count:
            raise RowError("sparse vector values cannot be None", 0)
        return (
            np.diff(offsets),
            keys.to_numpy(zero_copy_only=False),
            items.to_numpy(zero_copy_only=False),
        )
    lengths, keys, vals = [], [], []
    for i, row in enumerate(values):
        if isinstance(row, Mapping):
            keys.extend(row.keys())
            vals.extend(row.values())
            lengths.append(len(row))
        elif hasattr(row, "tocsr"):
            r = row.tocsr()
            if r.shape[0] != 1:
                raise RowError("invalid input for sparse float vector: expect 1 row", i)
            keys.extend(r.indices.tolist())
            vals.extend(r.data.tolist())
            lengths.append(len(r.indices))
        elif isinstance(row, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in row
        ):
            keys.extend(p[0] for p in row)
            vals.extend(p[1] for p in row)
            lengths.append(len(row))
        else:
            raise RowError(
                f"a sparse vector is a dict {{index: value}} or a list of (index, value) pairs, "
                f"got {type_name(row)}",
                i,
            )
    return np.asarray(lengths, dtype=np.int64), keys, vals


def _sparse(field: FieldSchema, values: Any) -> pa.Array:
    lengths, keys, vals = _sparse_parts(values)
    m = len(lengths)
    row_of = np.repeat(np.arange(m), lengths)
    indices = np.asarray(keys)
    weights = np.asarray(vals)
    if indices.size and (indices.dtype.kind not in "iu" or indices.ndim != 1):
        bad = [not isinstance(k, (int, np.integer)) or isinstance(k, bool) for k in keys]
        i = int(row_of[int(np.argmax(bad))]) if any(bad) else 0
        raise RowError("sparse vector indices must be integers", i)
    if weights.size and (weights.dtype.kind not in "iuf" or weights.ndim != 1):
        raise RowError("sparse vector values must be real numbers", int(row_of[0]))
    indices = indices.astype(np.int64) if indices.size else np.empty(0, np.int64)
    if indices.dtype == np.uint64 or (indices.size and indices.max() >= MAX_SPARSE_INDEX):
        bad = indices.astype(np.float64) >= MAX_SPARSE_INDEX
        raise RowError(
            "invalid index in sparse float vector: must be less than 2^32-1",
            int(row_of[first_row(bad)]),
        )
    if indices.size and indices.min() < 0:
        raise RowError(
            f"sparse vector index must be positive and less than 2^32-1: {indices.min()}",
            int(row_of[first_row(indices < 0)]),
        )
    with np.errstate(over="ignore", invalid="ignore"):
        weights32 = weights.astype(np.float32) if weights.size else np.empty(0, np.float32)
    bad = ~np.isfinite(weights32)
    if bad.any():
        k = first_row(bad)
        raise RowError(f"value '{weights[k]}' is not a number or infinity", int(row_of[k]))
    order = np.lexsort((indices, row_of))
    indices, weights32, row_of = indices[order], weights32[order], row_of[order]
    dup = (np.diff(indices) == 0) & (np.diff(row_of) == 0)
    if dup.any():
        k = first_row(dup)
        raise RowError(
            f"unsorted or same indices in sparse float vector (index {indices[k]} repeats); "
            "give each index once per row",
            int(row_of[k]),
        )
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.MapArray.from_arrays(
        pa.array(offsets), pa.array(indices.astype(np.uint32)), pa.array(weights32)
    )


def convert_vectors(field: FieldSchema, values: Any) -> pa.Array:
    if field.dtype == DataType.SPARSE_FLOAT_VECTOR:
        return _sparse(field, values)
    return _dense(field, values)


__all__ = ["convert_vectors", "f32_to_bf16_bits"]
