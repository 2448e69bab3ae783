"""Write-path validation: a batch of rows or columns -> one canonical, checked ``pyarrow.Table``.

:func:`validate_rows` (what ``MilvusClient.insert(data=[{...}, ...])`` passes) and
:func:`validate_columns` (a dict of columns, a ``pyarrow.Table``/``RecordBatch``, a
``pandas.DataFrame``, or the columns the gRPC server decodes) check the whole batch against a
schema and return it in :mod:`vecstore.schema.arrow`'s layout. Either the whole batch is valid or
a :class:`~vecstore.schema.errors.DataError` names the field and, where one row is at fault, the
row index; nothing else happens before (these functions have no side effects).

Rules, as Milvus + pymilvus apply them on insert:

- every input field is given, unless it is ``nullable`` or has a ``default_value`` (pymilvus:
  "Insert missed an field `x` to collection without set nullable==true or set default_value");
  ``None`` (or a missing key/column) becomes the default where there is one (Milvus docs
  "Default Values"), else null where the field is nullable, else an error;
- fields unknown to the schema are refused (pymilvus: "Attempt to insert an unexpected field `x`
  to collection without enabling dynamic field"), or with ``enable_dynamic_field`` packed into the
  ``$meta`` JSON object of their row; a ``$meta`` column of JSON objects is accepted too (the wire
  form) and merged. Every row gets a ``$meta`` object (``{}`` when empty, as Milvus fills it); its
  keys may not repeat a schema field or be ``$meta`` (Milvus's checks), and it is at most 64 KiB;
- function outputs (BM25's sparse field) are refused: the function computes them;
- an ``auto_id`` primary key must not be given (Milvus: "can not assign primary field data when
  auto id enabled and allow_insert_auto_id is false") unless ``allow_insert_auto_id=True`` (the
  collection property of that name), in which case every row must carry one; otherwise the key
  column is absent from the result and the coordinator allocates ids;
- duplicate primary keys within the batch are refused by default (``reject_duplicate_pks``).
  Milvus itself refuses them only on upsert ("duplicate primary keys are not allowed in the same
  batch") and accepts them on insert; the proxy passes ``reject_duplicate_pks=False`` for inserts
  when it wants Milvus's insert behaviour exactly;
- per-type rules and conversions: :mod:`vecstore.schema.columns` and
  :mod:`vecstore.schema.vectors`.

An empty batch returns an empty table with the canonical schema (pymilvus never sends one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.schema import limits
from vecstore.schema.arrow import arrow_field, arrow_type, dynamic_arrow_field
from vecstore.schema.collection import CollectionSchema
from vecstore.schema.columns import RowError, as_arrow, convert_column
from vecstore.schema.errors import DataError
from vecstore.schema.field import FieldSchema
from vecstore.schema.nested import check_json_lengths, json_text, json_texts

_MISSING = object()
META = limits.DYNAMIC_FIELD_NAME


def _missed(name: str, row: int | None = None) -> DataError:
    return DataError(
        f"Insert missed an field `{name}` to collection without set nullable==true or set "
        "default_value; give every row a value, or declare the field nullable=True or give it a "
        "default_value",
        field=name,
        row=row,
    )


def _unexpected(name: str, schema: CollectionSchema, row: int | None = None) -> DataError:
    if name in schema.function_output_names:
        return DataError(
            f"Attempt to insert an unexpected function output field `{name}` to collection; "
            "drop it: its function computes it",
            field=name,
            row=row,
        )
    if name == META:
        return DataError(
            f"without dynamic schema enabled, the field name cannot be set to {META}; drop it"
            if not schema.enable_dynamic_field
            else f"`{META}` is the dynamic field's own column; put dynamic keys at the top "
            "level of each row",
            field=name,
            row=row,
        )
    return DataError(
        f"Attempt to insert an unexpected field `{name}` to collection without enabling dynamic "
        "field; drop it, add it to the schema, or create the collection with "
        "enable_dynamic_field=True",
        field=name,
        row=row,
    )


def _auto_id_given(pk: FieldSchema, row: int | None = None) -> DataError:
    return DataError(
        "can not assign primary field data when auto id enabled and allow_insert_auto_id is "
        f"false {pk.name}; drop the key (Milvus generates it) or set the collection property "
        "allow_insert_auto_id",
        field=pk.name,
        row=row,
    )


def _input_fields(schema: CollectionSchema) -> list[FieldSchema]:
    outputs = schema.function_output_names
    return [f for f in schema.fields if f.name not in outputs]


def _finish_field(field: FieldSchema, arr: pa.Array) -> pa.Array:
    """Applies the default where the value is null, then the nullable rule."""
    if not arr.null_count:
        return arr
    if field.default_value is not None:
        value = field.default_value
        value = value.item() if isinstance(value, np.generic) else value
        return pc.fill_null(arr, pa.scalar(value, arrow_type(field)))
    if field.nullable:
        return arr
    row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
    raise DataError(
        "None is not a valid value: the field is not nullable and has no default_value; give a "
        "value, or declare the field nullable=True or give it a default_value",
        field=field.name,
        row=row,
    )


def _meta_objects(values: Any) -> list[dict]:
    """The ``$meta`` column's rows as dicts (JSON objects only)."""
    try:
        texts = json_texts(values)
    except RowError as e:
        raise DataError(e.message, field=META, row=e.row) from None
    out = []
    for i, text in enumerate(texts):
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise DataError(
                "invalid dynamic field data, only json map is supported; give a JSON object",
                field=META,
                row=i,
            )
        out.append(obj)
    return out


def _check_meta_keys(objs: list[dict], static: set[str]) -> None:
    for i, obj in enumerate(objs):
        if META in obj:
            raise DataError(f"cannot set json key to: {META}", field=META, row=i)
        clash = static.intersection(obj)
        if clash:
            raise DataError(
                f"dynamic field name cannot include the static field name: {sorted(clash)[0]}",
                field=META,
                row=i,
            )


def _meta_column(objs: list[dict] | None, n: int) -> pa.Array:
    if objs is None:
        return pa.repeat(pa.scalar("{}", pa.string()), n)
    texts = []
    for i, obj in enumerate(objs):
        try:
            texts.append(json_text(obj))
        except (ValueError, TypeError) as e:
            raise DataError(
                f"dynamic field values must be JSON values: {e}", field=META, row=i
            ) from None
    arr = pa.array(texts, pa.string())
    try:
        check_json_lengths(
            arr,
            lambda size: (
                f"the length ({size}) of dynamic field exceeds max length "
                f"({limits.MAX_JSON_LENGTH}); move large values out of the dynamic field"
            ),
        )
    except RowError as e:
        raise DataError(e.message, field=META, row=e.row) from None
    return arr


def _reject_duplicate_pks(pk: FieldSchema, arr: pa.Array) -> None:
    if len(arr) < 2:
        return
    if pa.types.is_string(arr.type):
        keys = arr.dictionary_encode().indices.to_numpy(zero_copy_only=False)
    else:
        keys = arr.to_numpy(zero_copy_only=False)
    order = np.argsort(keys, kind="stable")
    same = keys[order[1:]] == keys[order[:-1]]
    if not same.any():
        return
    # Report the earliest row that repeats an earlier key.
    later = order[1:][same]
    first_dup = int(later.min())
    original = int(order[np.searchsorted(keys[order], keys[first_dup], side="left")])
    raise DataError(
        f"duplicate primary keys are not allowed in the same batch: {arr[first_dup].as_py()!r} "
        f"is also in row {original}; keep one row per key",
        field=pk.name,
        row=first_dup,
    )


def _assemble(
    schema: CollectionSchema,
    columns: dict[str, Any],
    n: int,
    meta_objs: list[dict] | None,
    *,
    allow_insert_auto_id: bool,
    reject_duplicate_pks: bool,
) -> pa.Table:
    pk = schema.primary_field
    arrays, fields = [], []
    for field in _input_fields(schema):
        if field.auto_id and field.is_primary and field.name not in columns:
            continue  # ids are allocated later
        if field.name not in columns:
            if not (field.nullable or field.default_value is not None) and n:
                raise _missed(field.name)
            arr = pa.nulls(n, arrow_type(field))
        else:
            arr = convert_column(field, columns[field.name])
        arr = _finish_field(field, arr)
        arrays.append(arr)
        fields.append(arrow_field(field))
        if field is pk and reject_duplicate_pks:
            _reject_duplicate_pks(pk, arr)
    if schema.enable_dynamic_field:
        arrays.append(_meta_column(meta_objs, n))
        fields.append(dynamic_arrow_field())
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _check_names(
    schema: CollectionSchema, names: list[str], allow_insert_auto_id: bool
) -> list[str]:
    """The dynamic (unknown) names among ``names``; raises for names that may not be given."""
    known = {f.name for f in _input_fields(schema)}
    unknown = []
    for name in names:
        if name in known:
            field = schema.field(name)
            if field.auto_id and field.is_primary and not allow_insert_auto_id:
                raise _auto_id_given(field)
        elif name == META:
            if not schema.enable_dynamic_field:
                raise _unexpected(name, schema)
        elif name in schema.function_output_names or not schema.enable_dynamic_field:
            raise _unexpected(name, schema)
        else:
            unknown.append(name)
    return unknown


def _columns_of(data: Any) -> dict[str, Any]:
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return {name: data.column(name) for name in data.column_names}
    if type(data).__module__.startswith("pandas") and hasattr(data, "columns"):
        # pandas semantics: NaN and None in an object column are missing values (nulls).
        return _columns_of(pa.Table.from_pandas(data, preserve_index=False))
    if isinstance(data, Mapping):
        return dict(data)
    raise DataError(
        f"columns must be a dict of name -> values, a pyarrow Table/RecordBatch or a pandas "
        f"DataFrame, got {type(data).__name__}"
    )


def _column_length(name: str, values: Any) -> int:
    if hasattr(values, "tocsr"):
        return values.shape[0]
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        raise DataError(
            f"a column must be a sequence of row values, got {type(values).__name__}", field=name
        )
    return len(values)


def validate_columns(
    schema: CollectionSchema,
    data: Any,
    *,
    allow_insert_auto_id: bool = False,
    reject_duplicate_pks: bool = True,
) -> pa.Table:
    """Checks a columnar batch and returns it as a canonical Arrow table (see module docstring)."""
    columns = _columns_of(data)
    n = None
    for name, values in columns.items():
        length = _column_length(name, values)
        if n is None:
            n = length
        elif length != n:
            raise DataError(
                f"The data fields length is inconsistent. previous length is {n}, current length "
                f"is {length}; give every column one value per row",
                field=name,
            )
    n = n or 0
    unknown = _check_names(schema, list(columns), allow_insert_auto_id)
    meta_objs = None
    if schema.enable_dynamic_field and (unknown or META in columns):
        static = {f.name for f in schema.fields}
        meta_objs = _meta_objects(columns[META]) if META in columns else [{} for _ in range(n)]
        for name in unknown:
            values = columns[name]
            arr = as_arrow(values)
            vals = arr.to_pylist() if arr is not None else list(values)
            for i, v in enumerate(vals):
                if name in meta_objs[i]:
                    raise DataError(f"dynamic key {name!r} is given twice", field=name, row=i)
                meta_objs[i][name] = v
        _check_meta_keys(meta_objs, static)
    return _assemble(
        schema,
        {k: v for k, v in columns.items() if k not in unknown and k != META},
        n,
        meta_objs,
        allow_insert_auto_id=allow_insert_auto_id,
        reject_duplicate_pks=reject_duplicate_pks,
    )


def validate_rows(
    schema: CollectionSchema,
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    *,
    allow_insert_auto_id: bool = False,
    reject_duplicate_pks: bool = True,
) -> pa.Table:
    """Checks a list of row dicts (or one dict) and returns the canonical Arrow table."""
    if isinstance(rows, Mapping):
        rows = [rows]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise DataError(f"rows must be a dict or a list of dicts, got {type(rows).__name__}")
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise DataError(f"expected Dict, got '{type(r).__name__}'; each row is a dict", row=i)
    n = len(rows)
    keys: set[str] = set().union(*rows) if rows else set()
    inputs = _input_fields(schema)
    static = {f.name for f in schema.fields}
    known = {f.name for f in inputs}
    for name in sorted(keys - known, key=str):
        if name == META or name in schema.function_output_names or not schema.enable_dynamic_field:
            row = next(i for i, r in enumerate(rows) if name in r)
            raise _unexpected(name, schema, row)

    columns: dict[str, Any] = {}
    for field in inputs:
        if field.name not in keys:
            continue
        col = [r.get(field.name, _MISSING) for r in rows]
        missing = [i for i, v in enumerate(col) if v is _MISSING]
        if field.auto_id and field.is_primary:
            given = next(i for i, v in enumerate(col) if v is not _MISSING)
            if not allow_insert_auto_id:
                raise _auto_id_given(field, given)
            if missing:
                raise _missed(field.name, missing[0])
        if missing:
            if not (field.nullable or field.default_value is not None):
                raise _missed(field.name, missing[0])
            for i in missing:
                col[i] = None
        columns[field.name] = col
    for field in inputs:
        if field.name not in keys and not (field.auto_id and field.is_primary):
            if not (field.nullable or field.default_value is not None) and n:
                raise _missed(field.name, 0)

    meta_objs = None
    if schema.enable_dynamic_field and keys - static:
        meta_objs = [{k: v for k, v in r.items() if k not in static} for r in rows]
    return _assemble(
        schema,
        columns,
        n,
        meta_objs,
        allow_insert_auto_id=allow_insert_auto_id,
        reject_duplicate_pks=reject_duplicate_pks,
    )


__all__ = ["validate_columns", "validate_rows"]
