"""Column conversion: any accepted input for one field -> its canonical Arrow array, checked.

:func:`convert_column` takes one field's values for a whole batch and returns the Arrow array of
:mod:`vecstore.schema.arrow`'s layout, with a null wherever the input held ``None`` (the caller
applies defaults and the nullable rule). Accepted inputs per column: a pyarrow Array or
ChunkedArray, a numpy array, or a Python sequence of row values (``None`` = null). Checks are
vectorised over the whole column (numpy / pyarrow.compute); per-value Python runs only to
serialise JSON, to read dict-shaped sparse rows, and on the error path to find the offending row.

Conversions are Milvus's and pymilvus's, never lossy:

- integers: Python/numpy/Arrow integers only (bools and floats refused, as pymilvus's protobuf
  packing refuses them), range-checked for the field's width (Milvus: "the %dth element (%d) out
  of range: [lo, hi]");
- FLOAT/DOUBLE: any real number; NaN and infinity refused (Milvus's ``VerifyFloats32/64``), and so
  is a double that overflows float32;
- VARCHAR: ``str`` only; ``max_length`` counts UTF-8 bytes, as Milvus does (``len()`` of a Go
  string), not characters as Milvus Lite does;
- JSON and ARRAY: :mod:`vecstore.schema.nested`;
- TIMESTAMPTZ: ``datetime`` (naive = UTC), ``numpy.datetime64`` or ISO-8601 strings (an offset,
  or none = UTC); GEOMETRY: WKT strings (the leading keyword is checked, not the whole WKT).

Vectors are converted in :mod:`vecstore.schema.vectors`. Every error is a
:class:`~vecstore.schema.errors.DataError` naming the field and the batch row.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.schema.arrow import UTC_TIMESTAMP, arrow_type, scalar_type
from vecstore.schema.errors import DataError
from vecstore.schema.field import FieldSchema
from vecstore.schema.types import VECTOR_TYPES, DataType

INT_RANGE = {
    DataType.INT8: (-(2**7), 2**7 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
}
_WKT = (
    r"^\s*(?i:POINT|LINESTRING|POLYGON|MULTIPOINT|MULTILINESTRING|MULTIPOLYGON"
    r"|GEOMETRYCOLLECTION)\b"
)


class RowError(Exception):
    """Raised by converters; ``row`` indexes the non-null values they were given.

    A literal ``{row}`` in the message is replaced by the batch row index, which only the caller
    knows (converters see the non-null rows only).
    """

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row


def type_name(value: object) -> str:
    return type(value).__name__


def mismatch(expected: str, value: object) -> str:
    # pymilvus's ExceptionsMessage.FieldDataInconsistent, without the field (DataError adds it).
    return (
        f"The Input data type is inconsistent with defined schema, the field should be a "
        f"{expected}, but got a {{{type_name(value)}}} instead"
    )


def first_row(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def as_arrow(values: Any) -> pa.Array | None:
    """``values`` as one Arrow array if it is Arrow data, else None."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        return values
    return None


def infer(
    values: Sequence[Any],
    expected: str,
    ok: Callable[[object], bool],
    accept: Callable[[pa.DataType], bool] | None = None,
) -> pa.Array:
    """``pa.array(values)`` with type inference, the result's type ``accept``-ed.

    On failure (or a refused type) names the first value that is not ``ok``.
    """
    try:
        arr = pa.array(values)
        if accept is None or accept(arr.type):
            return arr
        for i, v in enumerate(values):
            if not ok(v):
                raise RowError(mismatch(expected, v), i)
        raise RowError(mismatch(expected, values[0]), 0)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        for i, v in enumerate(values):
            if not ok(v):
                raise RowError(mismatch(expected, v), i) from None
            try:
                pa.array([v])
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as e:
                raise RowError(f"{str(v)[:200]} cannot be read as {expected}: {e}", i) from None
        raise RowError(
            f"the values cannot be read as one {expected} column (mixed types across rows)"
        ) from None


def python_or_numpy(values: Any) -> Any:
    if isinstance(values, np.ndarray) and values.dtype == object:
        return list(values)
    return values


# -- scalars -------------------------------------------------------------------------------
def _bool(field: FieldSchema, values: Any) -> pa.Array:
    arr = as_arrow(values)
    if arr is None:
        values = python_or_numpy(values)
        if isinstance(values, np.ndarray):
            if values.dtype != np.bool_:
                raise RowError(mismatch("bool", values.dtype.type()), 0)
            return pa.array(values)
        arr = infer(values, "bool", lambda v: isinstance(v, (bool, np.bool_)), pa.types.is_boolean)
    if not pa.types.is_boolean(arr.type):
        raise RowError(mismatch("bool", sample(arr)), 0)
    return arr


def sample(arr: pa.Array) -> object:
    return arr[0].as_py() if len(arr) else None


def _integers(field: FieldSchema, values: Any) -> pa.Array:
    lo, hi = INT_RANGE[field.dtype]
    arr = as_arrow(values)

    def is_int(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if arr is None:
        values = python_or_numpy(values)
        if isinstance(values, np.ndarray):
            if values.dtype.kind not in "iu" or values.ndim != 1:
                raise RowError(mismatch(field.dtype.name.lower(), values.flat[0]), 0)
            if values.dtype == np.uint64 and values.size and values.max() > hi:
                i = first_row(values > hi)
                raise RowError(f"the {{row}}th element ({values[i]}) out of range: [{lo}, {hi}]", i)
            nums = values.astype(np.int64, copy=False)
        else:
            arr = infer(values, field.dtype.name.lower(), is_int, pa.types.is_integer)
    if arr is not None:
        if not pa.types.is_integer(arr.type):
            raise RowError(mismatch(field.dtype.name.lower(), sample(arr)), 0)
        if pa.types.is_uint64(arr.type):
            big = pc.greater(arr, pa.scalar(hi, pa.uint64())).to_numpy(zero_copy_only=False)
            if big.any():
                i = first_row(big)
                raise RowError(
                    f"the {{row}}th element ({arr[i].as_py()}) out of range: [{lo}, {hi}]", i
                )
        nums = arr.cast(pa.int64()).to_numpy(zero_copy_only=False)
    if nums.size and (nums.min() < lo or nums.max() > hi):
        i = first_row((nums < lo) | (nums > hi))
        raise RowError(f"the {{row}}th element ({nums[i]}) out of range: [{lo}, {hi}]", i)
    # Arrow's to_pandas_dtype() would import pandas (0.6 s) on the first insert: map directly.
    # pa.array(ndarray) imports pandas too (when installed): wrap a copy's buffer instead (a
    # copy: stored columns must not follow later changes to the caller's array).
    arrow_type = scalar_type(field.dtype)
    width = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32,
             pa.int64(): np.int64}[arrow_type]
    out = np.array(nums, dtype=width, order="C", copy=True)
    return pa.Array.from_buffers(arrow_type, len(out), [None, pa.py_buffer(out)])


def _floats(field: FieldSchema, values: Any) -> pa.Array:
    np_type = np.float32 if field.dtype == DataType.FLOAT else np.float64
    arr = as_arrow(values)

    def is_real(v: object) -> bool:
        real = isinstance(v, (int, float, np.integer, np.floating))
        return real and not isinstance(v, (bool, np.bool_))

    if arr is None:
        values = python_or_numpy(values)
        if isinstance(values, np.ndarray):
            if values.dtype.kind not in "iuf" or values.ndim != 1:
                raise RowError(mismatch(field.dtype.name.lower(), values.flat[0]), 0)
            raw = values
        else:
            arr = infer(
                values,
                field.dtype.name.lower(),
                is_real,
                lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
            )
    if arr is not None:
        if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            raise RowError(mismatch(field.dtype.name.lower(), sample(arr)), 0)
        raw = arr.to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore", invalid="ignore"):
        nums = raw.astype(np_type, copy=False)
    bad = ~np.isfinite(nums)
    if bad.any():
        i = first_row(bad)
        extra = "" if not np.isfinite(raw[i]) else f" ({field.dtype.name} overflows)"
        raise RowError(
            f"value '{raw[i]}' is not a number or infinity{extra}; store finite numbers only", i
        )
    return pa.array(nums)


def _strings(values: Any, what: str) -> pa.Array:
    arr = as_arrow(values)
    if arr is None:
        values = python_or_numpy(values)
        if isinstance(values, np.ndarray) and values.dtype.kind == "U":
            return pa.array(values, pa.string())
        arr = infer(values, what, lambda v: isinstance(v, str), pa.types.is_string)
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        return arr.cast(pa.string())
    if pa.types.is_null(arr.type) and len(arr) == 0:
        return pa.array([], pa.string())
    raise RowError(mismatch(what, sample(arr)), 0)


def _varchar(field: FieldSchema, values: Any) -> pa.Array:
    arr = _strings(values, "string")
    max_length = field.param_int("max_length")
    # Milvus skips the length check of an auto-id key (milvus issue #25580).
    if max_length is not None and not field.auto_id and len(arr):
        lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
        if lengths.max() > max_length:
            i = first_row(lengths > max_length)
            raise RowError(
                f"length of varchar field {field.name} exceeds max length, row number: {{row}}, "
                f"length: {lengths[i]}, max length: {max_length}; max_length counts UTF-8 bytes: "
                "shorten the value or raise max_length",
                i,
            )
    return arr


def _geometry(field: FieldSchema, values: Any) -> pa.Array:
    arr = _strings(values, "WKT string")
    ok = pc.match_substring_regex(arr, _WKT).to_numpy(zero_copy_only=False)
    if len(arr) and not ok.all():
        i = first_row(~ok)
        raise RowError(
            f"invalid Geometry data, transform to wkb failed: {arr[i].as_py()!r} is not WKT; "
            "write e.g. 'POINT (1 2)'",
            i,
        )
    return arr


def _parse_times(values: Sequence[Any]) -> pa.Array:
    """Row by row (mixed kinds, or a bad value to locate): datetimes and ISO strings -> UTC."""
    parsed = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            try:
                v = _dt.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            except ValueError:
                raise RowError(
                    f"got invalid timestamptz string '{v}'; use ISO-8601, e.g. "
                    "'2025-01-31T12:00:00+08:00'",
                    i,
                ) from None
        elif isinstance(v, np.datetime64):
            v = v.astype("datetime64[us]").item()
        if not isinstance(v, _dt.datetime):
            raise RowError(mismatch("datetime or ISO-8601 str", v), i)
        parsed.append(v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc))
    return pa.array(parsed, UTC_TIMESTAMP)


def _timestamptz(field: FieldSchema, values: Any) -> pa.Array:
    arr = as_arrow(values)
    if arr is None:
        values = python_or_numpy(values)
        if isinstance(values, np.ndarray) and values.dtype.kind == "M":
            arr = pa.array(values)
        else:
            try:
                arr = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                return _parse_times(values)
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:  # naive values are UTC, Milvus's default timezone
            arr = pc.assume_timezone(arr.cast(pa.timestamp("us")), "UTC")
        return arr.cast(UTC_TIMESTAMP)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        for attempt in (
            lambda: arr.cast(UTC_TIMESTAMP),
            lambda: pc.assume_timezone(arr.cast(pa.timestamp("us")), "UTC").cast(UTC_TIMESTAMP),
        ):
            try:
                return attempt()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        return _parse_times(arr.to_pylist())  # mixed offsets and naive strings, or a bad one
    return _parse_times(arr.to_pylist())


_CONVERTERS: dict[DataType, Callable[[FieldSchema, Any], pa.Array]] = {
    DataType.BOOL: _bool,
    DataType.INT8: _integers,
    DataType.INT16: _integers,
    DataType.INT32: _integers,
    DataType.INT64: _integers,
    DataType.FLOAT: _floats,
    DataType.DOUBLE: _floats,
    DataType.VARCHAR: _varchar,
    DataType.GEOMETRY: _geometry,
    DataType.TIMESTAMPTZ: _timestamptz,
}


def _converter(dtype: DataType) -> Callable[[FieldSchema, Any], pa.Array]:
    if dtype in _CONVERTERS:
        return _CONVERTERS[dtype]
    # Imported here: nested.py and vectors.py build on this module's helpers.
    from vecstore.schema.nested import convert_array, convert_json
    from vecstore.schema.vectors import convert_vectors

    if dtype in VECTOR_TYPES:
        return convert_vectors
    return {DataType.JSON: convert_json, DataType.ARRAY: convert_array}[dtype]


# -- nulls and the entry point -----------------------------------------------------------------
def split_nulls(values: Any) -> tuple[np.ndarray | None, Any]:
    """(mask of null rows or None, the non-null values in the same container kind)."""
    arr = as_arrow(values)
    if arr is not None:
        if not arr.null_count:
            return None, arr
        mask = arr.is_null().to_numpy(zero_copy_only=False)
        return mask, arr.filter(pc.invert(arr.is_null()))
    if isinstance(values, np.ndarray):
        if values.dtype != object:
            return None, values
        mask = np.fromiter((v is None for v in values), bool, count=len(values))
        return (mask, values[~mask]) if mask.any() else (None, values)
    mask = np.fromiter((v is None for v in values), bool, count=len(values))
    if not mask.any():
        return None, values
    return mask, [v for v in values if v is not None]


def scatter(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    """``arr`` (the non-null rows) spread over ``len(mask)`` rows, null where ``mask``."""
    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
        child = arr.values.slice(arr.offset * width, len(arr) * width).to_numpy(
            zero_copy_only=False
        )
        full = np.zeros((len(mask), width), dtype=child.dtype)
        full[~mask] = child.reshape(-1, width)
        return pa.FixedSizeListArray.from_arrays(
            pa.array(full.reshape(-1), arr.type.value_type), width, mask=pa.array(mask)
        )
    idx = np.cumsum(~mask) - 1
    idx[mask] = len(arr)
    return pa.concat_arrays([arr, pa.nulls(1, arr.type)]).take(pa.array(idx))


def convert_column(field: FieldSchema, values: Any) -> pa.Array:
    """``values`` (one row per batch row, None = null) as ``field``'s canonical Arrow array."""
    if isinstance(values, (str, bytes, Mapping)) or not (
        isinstance(values, (Sequence, np.ndarray, pa.Array, pa.ChunkedArray))
        or hasattr(values, "tocsr")
    ):
        raise DataError(
            f"a column must be a sequence of row values (list, numpy array, pyarrow array), got "
            f"{type_name(values)}",
            field=field.name,
        )
    if hasattr(values, "tocsr"):  # a scipy sparse matrix holds no nulls
        mask, dense = None, values
    else:
        mask, dense = split_nulls(values)
    convert = _converter(field.dtype)
    try:
        if _length(dense) == 0:
            arr = pa.array([], arrow_type(field))
        else:
            arr = convert(field, dense)
    except RowError as e:
        row = e.row
        if row is not None and mask is not None:
            row = int(np.flatnonzero(~mask)[row])
        message = e.message.replace("{row}", str(row))
        raise DataError(message, field=field.name, row=row) from None
    return scatter(arr, mask) if mask is not None else arr


def _length(values: Any) -> int:
    if hasattr(values, "tocsr"):
        return values.shape[0]
    return len(values)


__all__ = ["RowError", "convert_column"]
