"""Milvus wire encodings <-> the embedded client's Python values.

Columns travel as ``schema.FieldData`` (milvus-proto ``schema.proto``): one message per column,
scalars in ``scalars.<kind>_data.data``, dense vectors flattened row-major into
``vectors.<kind>_vector`` (float32 as repeated float, the others as raw little-endian bytes),
sparse rows as ``sparse_float_vector.contents`` (one blob per row of sorted ``uint32 index,
float32 value`` pairs), JSON as one UTF-8 JSON text per row, and nullable columns with
``valid_data``. Dynamic keys travel as one JSON column named ``$meta`` with ``is_dynamic`` set.

Inbound (insert/upsert) columns become a ``{name: values}`` dict that
``MilvusClient.insert`` validates like any other columnar batch (vectors as 2-D numpy arrays,
``$meta`` as the JSON texts themselves). Outbound rows (query results, search hits) are
re-packed column by column using the collection's schema; keys the schema does not name go to
``$meta``. Types the embedded client does not support raise :class:`NotSupported`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, schema_pb2

from vecstore.client.remote_insert import SCALAR_ATTR, set_packed_floats
from vecstore.errors import InvalidArgument, NotSupported
from vecstore.schema import DataType

META = "$meta"

# The ScalarField member holding each type's values: the client's table (pymilvus's DataType
# members compare and hash as the same ints as vecstore's), plus STRING.
_SCALAR_ATTR = {**SCALAR_ATTR, DataType.STRING: "string_data"}
# A null scalar still takes a slot in the column: the value Milvus puts there.
_PLACEHOLDER = {"bool_data": False, "int_data": 0, "long_data": 0, "float_data": 0.0,
                "double_data": 0.0, "string_data": ""}
_BYTES_VECTORS = {
    DataType.BINARY_VECTOR: ("binary_vector", np.uint8),
    DataType.FLOAT16_VECTOR: ("float16_vector", np.float16),
    DataType.INT8_VECTOR: ("int8_vector", np.int8),
}


def _bf16() -> Any:
    import ml_dtypes

    return ml_dtypes.bfloat16


# ---- key/value pairs -----------------------------------------------------------------------------

def kv_dict(pairs: Any) -> dict[str, str]:
    return {p.key: p.value for p in pairs}


def kv_pairs(values: dict[str, Any]) -> list[common_pb2.KeyValuePair]:
    return [common_pb2.KeyValuePair(key=str(k), value=_text(v)) for k, v in values.items()]


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def loads(text: str) -> Any:
    """A pymilvus KV value: JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---- schema ----------------------------------------------------------------------------------

def _value_field(raw: schema_pb2.ValueField) -> Any:
    kind = raw.WhichOneof("data")
    return None if kind is None else getattr(raw, kind)


def _default_value(dtype: DataType, value: Any) -> schema_pb2.ValueField:
    if dtype == DataType.BOOL:
        return schema_pb2.ValueField(bool_data=bool(value))
    if dtype in (DataType.INT8, DataType.INT16, DataType.INT32):
        return schema_pb2.ValueField(int_data=int(value))
    if dtype == DataType.INT64:
        return schema_pb2.ValueField(long_data=int(value))
    if dtype == DataType.FLOAT:
        return schema_pb2.ValueField(float_data=float(value))
    if dtype == DataType.DOUBLE:
        return schema_pb2.ValueField(double_data=float(value))
    return schema_pb2.ValueField(string_data=str(value))


def schema_from_proto(raw: schema_pb2.CollectionSchema) -> dict[str, Any]:
    """A serialized ``CreateCollectionRequest.schema`` as ``CollectionSchema.from_dict`` input."""
    fields = []
    for f in raw.fields:
        if f.is_dynamic and f.name == META:
            continue
        params = {p.key: loads(p.value) for p in f.type_params}
        d: dict[str, Any] = {"name": f.name, "description": f.description,
                             "type": DataType(f.data_type), "params": params,
                             "is_primary": f.is_primary_key, "auto_id": f.autoID,
                             "nullable": f.nullable, "is_partition_key": f.is_partition_key,
                             "is_clustering_key": f.is_clustering_key,
                             "is_function_output": f.is_function_output}
        if f.data_type == DataType.ARRAY:
            d["element_type"] = DataType(f.element_type)
        if f.HasField("default_value"):
            d["default_value"] = _value_field(f.default_value)
        fields.append(d)
    functions = [{"name": fn.name, "description": fn.description, "type": fn.type,
                  "input_field_names": list(fn.input_field_names),
                  "output_field_names": list(fn.output_field_names),
                  "params": {p.key: loads(p.value) for p in fn.params}}
                 for fn in raw.functions]
    if raw.struct_array_fields:
        raise NotSupported("struct array fields are not supported by vecstore yet")
    return {"description": raw.description, "fields": fields, "functions": functions,
            "enable_dynamic_field": raw.enable_dynamic_field, "auto_id": raw.autoID}


def schema_to_proto(name: str, desc: dict[str, Any]) -> schema_pb2.CollectionSchema:
    """``describe_collection()``'s dict as the ``CollectionSchema`` message Milvus describes."""
    out = schema_pb2.CollectionSchema(name=name, description=desc.get("description", ""),
                                      autoID=bool(desc.get("auto_id")),
                                      enable_dynamic_field=bool(desc.get("enable_dynamic_field")))
    # Like Milvus's describe, the dynamic field's own `$meta` column is not listed (pymilvus
    # would expect it in every inserted row).
    for f in desc["fields"]:
        dtype = DataType(f["type"])
        fid = int(f.get("field_id") or 0)
        msg = out.fields.add(fieldID=fid, name=f["name"], description=f.get("description", ""),
                             data_type=int(dtype), is_primary_key=bool(f.get("is_primary")),
                             autoID=bool(f.get("auto_id")), nullable=bool(f.get("nullable")),
                             is_partition_key=bool(f.get("is_partition_key")),
                             is_clustering_key=bool(f.get("is_clustering_key")),
                             is_function_output=bool(f.get("is_function_output")),
                             is_dynamic=bool(f.get("is_dynamic")))
        msg.type_params.extend(kv_pairs(f.get("params") or {}))
        if f.get("element_type") is not None:
            msg.element_type = int(f["element_type"])
        if f.get("default_value") is not None:
            msg.default_value.CopyFrom(_default_value(dtype, f["default_value"]))
    for fn in desc.get("functions") or []:
        msg = out.functions.add(name=fn["name"], id=int(fn.get("id") or 0),
                                description=fn.get("description", ""), type=int(fn["type"]),
                                input_field_names=fn.get("input_field_names", []),
                                input_field_ids=fn.get("input_field_ids", []),
                                output_field_names=fn.get("output_field_names", []),
                                output_field_ids=fn.get("output_field_ids", []))
        msg.params.extend(kv_pairs(fn.get("params") or {}))
    return out


# ---- inbound columns -----------------------------------------------------------------------------

def _sparse_row(blob: bytes) -> dict[int, float]:
    pairs = np.frombuffer(blob, dtype=np.dtype([("i", "<u4"), ("v", "<f4")]))
    return dict(zip(pairs["i"].tolist(), pairs["v"].tolist()))


def _expand(values: list, valid: list[bool], fill: Any) -> list:
    """A column with nulls: ``values`` holds either one slot per row or only the valid rows."""
    if len(values) == len(valid):
        return [v if ok else None for v, ok in zip(values, valid)]
    it = iter(values)
    return [next(it) if ok else fill for ok in valid]


def _vector_column(fd: schema_pb2.FieldData) -> Any:
    vec = fd.vectors
    kind = vec.WhichOneof("data")
    dtype = DataType(fd.type)
    if kind == "float_vector":
        arr = np.array(vec.float_vector.data, dtype=np.float32)
        return arr.reshape(-1, vec.dim) if vec.dim else arr.reshape(0, 0)
    if kind == "sparse_float_vector":
        return [_sparse_row(b) for b in vec.sparse_float_vector.contents]
    if kind == "bfloat16_vector":
        return np.frombuffer(vec.bfloat16_vector, dtype=_bf16()).reshape(-1, vec.dim)
    if dtype in _BYTES_VECTORS and kind == _BYTES_VECTORS[dtype][0]:
        attr, np_type = _BYTES_VECTORS[dtype]
        width = vec.dim // 8 if dtype == DataType.BINARY_VECTOR else vec.dim
        return np.frombuffer(getattr(vec, attr), dtype=np_type).reshape(-1, width)
    raise NotSupported(f"field {fd.field_name!r}: vector data of type {dtype.name} "
                       "is not supported by vecstore yet")


def _array_cell(cell: schema_pb2.ScalarField) -> list:
    kind = cell.WhichOneof("data")
    return [] if kind is None else list(getattr(cell, kind).data)


_NUMPY = {"bool_data": np.bool_, "int_data": np.int32, "long_data": np.int64,
          "float_data": np.float32, "double_data": np.float64}


def _numeric_column(values: Any, np_type: Any, valid: list[bool]) -> Any:
    """A numeric column as numpy (no nulls) or as a pyarrow array with nulls: no per-row Python.
    ``values`` holds either one slot per row or only the valid rows."""
    import pyarrow as pa

    arr = np.array(values, dtype=np_type)
    if not valid:
        return arr
    ok = np.array(valid, dtype=bool)
    if ok.all() and len(arr) == len(ok):
        return arr
    if len(arr) != len(ok):
        if len(arr) != int(ok.sum()):
            raise InvalidArgument(f"a nullable column carries {len(arr)} values for "
                                  f"{int(ok.sum())} valid rows of {len(ok)}")
        full = np.zeros(len(ok), dtype=np_type)
        full[ok] = arr
        arr = full
    return pa.array(arr, mask=~ok)


def field_column(fd: schema_pb2.FieldData) -> Any:
    """One inbound ``FieldData`` as the values ``MilvusClient.insert`` takes for its column:
    numpy arrays for vectors and numeric scalars (pyarrow arrays when they hold nulls), lists
    for the rest."""
    try:
        dtype = DataType(fd.type)
    except ValueError:
        raise NotSupported(f"field {fd.field_name!r}: unknown data type {fd.type}") from None
    valid = list(fd.valid_data)
    if fd.HasField("vectors"):
        col = _vector_column(fd)
        if valid and not all(valid):
            rows = list(col)
            return _expand(rows, valid, None)
        return col
    scalars = fd.scalars
    kind = scalars.WhichOneof("data")
    if dtype == DataType.JSON:
        values = [bytes(b) for b in scalars.json_data.data] if kind else []
        if fd.is_dynamic or fd.field_name == META:
            return values
        values = [json.loads(b) for b in values]
    elif dtype == DataType.ARRAY:
        values = [_array_cell(c) for c in scalars.array_data.data] if kind else []
    elif dtype in _SCALAR_ATTR:
        attr = _SCALAR_ATTR[dtype]
        if attr in _NUMPY:
            return _numeric_column(getattr(scalars, attr).data, _NUMPY[attr], valid)
        values = list(getattr(scalars, attr).data)
    else:
        raise NotSupported(f"field {fd.field_name!r}: data type {dtype.name} is not supported "
                           "by vecstore's server yet")
    if valid:
        return _expand(values, valid, None)
    return values


def columns_from_fields(fields_data: Any, num_rows: int) -> dict[str, Any]:
    cols = {}
    for fd in fields_data:
        cols[fd.field_name] = field_column(fd)
    if not cols and num_rows:
        raise InvalidArgument("insert carries no field data")
    return cols


# ---- outbound columns ----------------------------------------------------------------------------

def _sparse_blob(row: Any) -> tuple[bytes, int]:
    items = row.items() if isinstance(row, dict) else row
    pairs = sorted((int(i), float(v)) for i, v in items)
    arr = np.array(pairs, dtype=np.dtype([("i", "<u4"), ("v", "<f4")]))
    return arr.tobytes(), (pairs[-1][0] + 1 if pairs else 0)


def encode_column(name: str, field: Any, values: list) -> schema_pb2.FieldData:
    """A column of Python values (one per row, ``None`` for null) as ``FieldData``. ``field`` is
    the schema's ``FieldSchema``; ``None`` means the dynamic ``$meta`` column (dicts)."""
    if field is None:
        fd = schema_pb2.FieldData(type=int(DataType.JSON), field_name=META, is_dynamic=True)
        fd.scalars.json_data.data.extend(json.dumps(v or {}).encode() for v in values)
        return fd
    dtype = DataType(field.dtype)
    fd = schema_pb2.FieldData(type=int(dtype), field_name=name, field_id=field.field_id or 0)
    nulls = any(v is None for v in values)
    if nulls or field.nullable:
        fd.valid_data.extend(v is not None for v in values)
    if dtype == DataType.FLOAT_VECTOR:
        dim = field.dim
        fd.vectors.dim = dim
        rows = [v for v in values if v is not None]
        if rows:
            set_packed_floats(fd.vectors.float_vector, np.asarray(rows, dtype=np.float32))
        else:
            fd.vectors.float_vector.SetInParent()
        return fd
    if dtype == DataType.SPARSE_FLOAT_VECTOR:
        blobs = [_sparse_blob(v) for v in values if v is not None]
        fd.vectors.sparse_float_vector.contents.extend(b for b, _ in blobs)
        dim = max((d for _, d in blobs), default=0)
        fd.vectors.sparse_float_vector.dim = dim
        fd.vectors.dim = dim
        return fd
    if dtype in _BYTES_VECTORS or dtype == DataType.BFLOAT16_VECTOR:
        fd.vectors.dim = field.dim
        rows = [v for v in values if v is not None]
        if dtype == DataType.BINARY_VECTOR:
            blob = b"".join(bytes(v) for v in rows)
            attr = "binary_vector"
        elif dtype == DataType.BFLOAT16_VECTOR:
            blob = np.asarray(rows, dtype=np.float32).astype(_bf16()).tobytes() if rows else b""
            attr = "bfloat16_vector"
        else:
            attr, np_type = _BYTES_VECTORS[dtype]
            blob = np.asarray(rows, dtype=np_type).tobytes() if rows else b""
        setattr(fd.vectors, attr, blob)
        return fd
    if dtype == DataType.JSON:
        fd.scalars.json_data.data.extend(
            b"" if v is None else json.dumps(v).encode() for v in values)
        return fd
    if dtype == DataType.ARRAY:
        elem = DataType(field.element_type)
        attr = _SCALAR_ATTR.get(elem)
        if attr is None:
            raise NotSupported(f"field {name!r}: arrays of {elem.name} are not supported yet")
        arrays = fd.scalars.array_data
        arrays.element_type = int(elem)
        for v in values:
            cell = arrays.data.add()
            getattr(cell, attr).data.extend(v or [])
        return fd
    attr = _SCALAR_ATTR.get(dtype)
    if attr is None:
        raise NotSupported(f"field {name!r}: returning {dtype.name} values over the wire is not "
                           "supported by vecstore's server yet")
    fill = _PLACEHOLDER[attr]
    getattr(fd.scalars, attr).data.extend(fill if v is None else v for v in values)
    return fd


def encode_rows(rows: list[dict[str, Any]], schema: Any, names: list[str]
                ) -> list[schema_pb2.FieldData]:
    """Row dicts as columns, in ``names`` order (the static fields the rows carry), then one
    ``$meta`` column holding every other key, when the collection has dynamic fields."""
    out = [encode_column(n, schema.field(n), [r.get(n) for r in rows]) for n in names]
    if schema.enable_dynamic_field:
        static = set(names) | {f.name for f in schema.fields}
        metas = [{k: v for k, v in r.items() if k not in static} for r in rows]
        if any(metas):
            out.append(encode_column(META, None, metas))
    return out


def row_fields(rows: list[dict[str, Any]], schema: Any, requested: list[str]) -> list[str]:
    """The static fields to send for ``rows``: those the rows carry, in schema order, or, when
    there are no rows, the primary key and the requested ones (pymilvus refuses a query reply
    without columns)."""
    static = [f.name for f in schema.fields]
    if rows:
        keys = set().union(*(r.keys() for r in rows[:1]))
        return [n for n in static if n in keys]
    pk = schema.primary_field.name
    return [n for n in static if n == pk or n in requested or "*" in requested]


def ids_message(pks: list, int_keys: bool) -> schema_pb2.IDs:
    ids = schema_pb2.IDs()
    if isinstance(pks, np.ndarray):
        pks = pks.tolist()
    if int_keys:
        ids.int_id.data.extend(pks if all(type(p) is int for p in pks) else map(int, pks))
    else:
        ids.str_id.data.extend(pks if all(type(p) is str for p in pks) else map(str, pks))
    return ids


# ---- templates and placeholders ------------------------------------------------------------------

def template_value(v: Any) -> Any:
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    if kind == "array_val":
        arr = v.array_val
        akind = arr.WhichOneof("data")
        if akind is None:
            return []
        data = getattr(arr, akind)
        if akind == "array_data":
            return [template_value_array(x) for x in data.data]
        if akind == "json_data":
            return [json.loads(x) for x in data.data]
        return list(data.data)
    return getattr(v, kind)


def template_value_array(arr: Any) -> list:
    akind = arr.WhichOneof("data")
    return [] if akind is None else list(getattr(arr, akind).data)


def template_params(values: Any) -> dict[str, Any] | None:
    if not values:
        return None
    return {k: template_value(v) for k, v in values.items()}


def placeholder_queries(blob: bytes, field: Any) -> Any:
    """The query vectors of a ``SearchRequest.placeholder_group`` for ``field``."""
    group = common_pb2.PlaceholderGroup.FromString(blob)
    if len(group.placeholders) != 1:
        raise InvalidArgument("a search carries exactly one placeholder")
    ph = group.placeholders[0]
    kind = ph.type
    values = list(ph.values)
    if kind == common_pb2.PlaceholderType.FloatVector:
        return np.frombuffer(b"".join(values), dtype="<f4").reshape(len(values), -1)
    if kind == common_pb2.PlaceholderType.SparseFloatVector:
        return [_sparse_row(b) for b in values]
    if kind == common_pb2.PlaceholderType.BinaryVector:
        return [bytes(b) for b in values]
    if kind == common_pb2.PlaceholderType.Float16Vector:
        return np.frombuffer(b"".join(values), dtype="<f2").reshape(len(values), -1)
    if kind == common_pb2.PlaceholderType.BFloat16Vector:
        return np.frombuffer(b"".join(values), dtype=_bf16()).reshape(len(values), -1)
    if kind == common_pb2.PlaceholderType.Int8Vector:
        return np.frombuffer(b"".join(values), dtype=np.int8).reshape(len(values), -1)
    name = common_pb2.PlaceholderType.Name(kind) if kind in \
        common_pb2.PlaceholderType.values() else str(kind)
    raise NotSupported(f"search by {name} placeholders is not supported by vecstore yet")
