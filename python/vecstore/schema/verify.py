"""Milvus's server-side checks of a schema at ``create_collection``.

:func:`verify_schema` raises the first problem Milvus would report, in Milvus's order: the proxy's
``createCollectionTask.PreExecute`` (``internal/proxy/task.go``) and its helpers
(``internal/proxy/util.go``: ``validateCollectionName``, ``validateFieldName``,
``validateDimension``, ``validateMaxLengthPerRow``, ``getMaxCapacityPerRow``,
``validatePrimaryKey``,
``ValidateFieldAutoID``, ``validateDuplicatedFieldName``), then rootcoord's nullable and
default-value checks. Each message starts with Milvus's own text (code 1100 ParameterInvalid,
1101 ParameterMissing or 1701 FieldInvalidName, see :mod:`vecstore.schema.errors`) and ends with
the fix. Milvus reports the field-count and vector-count limits through a plain Go error (code
65535 on the wire); vecstore raises them as SchemaError (1100).

Where Milvus and Milvus Lite differ, this follows Milvus: dims 2..32768, VARCHAR max_length
1..65535 bytes, ARRAY max_capacity 1..4096, at most 4 vector fields and 64 fields.
Nullable vector fields are allowed (Milvus 2.6.18+). ``auto_id`` is allowed on a VARCHAR primary
key (Milvus turns generated int64 ids into strings since 2.3).

Pure functions over a CollectionSchema; nothing here mutates the schema.
"""

from __future__ import annotations

import math

import numpy as np

from vecstore.schema import limits
from vecstore.schema.collection import CollectionSchema
from vecstore.schema.errors import FieldNameInvalid, ParameterMissing, SchemaError
from vecstore.schema.field import FieldSchema
from vecstore.schema.types import (
    ARRAY_ELEMENT_TYPES,
    CLUSTERING_KEY_TYPES,
    DEFAULT_VALUE_TYPES,
    PARTITION_KEY_TYPES,
    PRIMARY_KEY_TYPES,
    UNSUPPORTED_TYPES,
    VECTOR_TYPES,
    DataType,
    FunctionType,
    milvus_name,
)

_NAME_FIX = "use letters, digits and underscores, starting with a letter or an underscore"
# Milvus's ValueField oneof names, as its "type(DataType_X) of default_value" message spells them.
_KIND_NAME = {
    DataType.BOOL: "Bool",
    DataType.INT32: "Int",
    DataType.INT64: "Int64",
    DataType.FLOAT: "Float",
    DataType.DOUBLE: "Double",
    DataType.VARCHAR: "VarChar",
}
_KIND_OF_TYPE = {
    DataType.BOOL: DataType.BOOL,
    DataType.INT8: DataType.INT32,
    DataType.INT16: DataType.INT32,
    DataType.INT32: DataType.INT32,
    DataType.INT64: DataType.INT64,
    DataType.FLOAT: DataType.FLOAT,
    DataType.DOUBLE: DataType.DOUBLE,
    DataType.VARCHAR: DataType.VARCHAR,
}
_NUMPY_OF = {
    DataType.INT8: "np.int8",
    DataType.INT16: "np.int16",
    DataType.INT32: "np.int32",
    DataType.INT64: "int",
    DataType.FLOAT: "float",
    DataType.DOUBLE: "float",
    DataType.BOOL: "bool",
    DataType.VARCHAR: "str",
}


def _is_alpha(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def name_problem(name: str) -> str | None:
    """Which of Milvus's naming rules (collections, aliases, fields, partitions, databases) a
    non-empty ``name`` breaks: "length" (over 255 bytes), "first" (not a letter or underscore),
    "chars" (anything but letters, digits, underscores), or None. Callers word the error."""
    if len(name.encode()) > limits.MAX_NAME_LENGTH:
        return "length"
    if name[0] != "_" and not _is_alpha(name[0]):
        return "first"
    if any(c != "_" and not _is_alpha(c) and not ("0" <= c <= "9") for c in name[1:]):
        return "chars"
    return None


def validate_collection_name(name: object, entity: str = "name") -> str:
    """Milvus's validateCollectionNameOrAlias (``entity`` is "name" or "alias")."""
    if not isinstance(name, str) or name == "":
        raise SchemaError(f"collection {entity} should not be empty; pass a non-empty str")
    invalid = f"Invalid collection {entity}: {name}. "
    problem = name_problem(name)
    if problem == "length":
        raise SchemaError(
            f"{invalid} the length of a collection {entity} must be less than "
            f"{limits.MAX_NAME_LENGTH} characters; shorten it"
        )
    if problem == "first":
        raise SchemaError(
            f"{invalid} the first character of a collection {entity} must be an underscore or "
            f"letter; {_NAME_FIX}"
        )
    if problem == "chars":
        raise SchemaError(
            f"{invalid} collection {entity} can only contain numbers, letters and "
            f"underscores; {_NAME_FIX}"
        )
    return name


def validate_field_name(name: object) -> str:
    """Milvus's validateFieldName: rules, length and the filter grammar's keywords (code 1701)."""
    if not isinstance(name, str) or name.strip() == "":
        raise FieldNameInvalid(f"field name should not be empty; got {name!r}")
    name = name.strip()
    invalid = f"Invalid field name: {name}. "
    problem = name_problem(name)
    if problem == "length":
        raise FieldNameInvalid(
            f"{invalid}The length of a field name must be less than {limits.MAX_NAME_LENGTH} "
            "characters; shorten it"
        )
    if problem == "first":
        raise FieldNameInvalid(
            f"{invalid}The first character of a field name must be an underscore or letter; "
            f"{_NAME_FIX}"
        )
    if problem == "chars":
        raise FieldNameInvalid(
            f"{invalid}Field name can only contain numbers, letters, and underscores; "
            f"{_NAME_FIX}"
        )
    if limits.is_keyword(name):
        raise FieldNameInvalid(f"{invalid}{name} is keyword in milvus; pick another name")
    return name


def _param_int(field: FieldSchema, key: str) -> int | None:
    if key not in field.params:
        return None
    value = field.param_int(key)
    if value is None:
        raise SchemaError(
            f"the value for {key} of field {field.name} must be an integer, got "
            f"{field.params[key]!r}; pass {key}=<int>"
        )
    return value


def _check_dim(field: FieldSchema) -> None:
    dim = _param_int(field, "dim")
    if field.dtype == DataType.SPARSE_FLOAT_VECTOR:
        if dim is not None:
            raise SchemaError(
                f"dim should not be specified for sparse vector field {field.name}"
                f"({field.field_id or 0}); drop dim: sparse vectors have no fixed dimension"
            )
        return
    if dim is None:
        raise SchemaError(
            f"dimension is not defined in field type params of field {field.name}, check type "
            f"param `dim` for vector field; pass dim=<int> to add_field"
        )
    if dim <= 1:
        raise SchemaError(
            f"invalid dimension: {dim}. should be in range {limits.MIN_DIM} ~ {limits.MAX_DIM}; "
            "use a dim of at least 2"
        )
    if field.dtype == DataType.BINARY_VECTOR:
        if dim % 8:
            raise SchemaError(
                f"invalid dimension: {dim} of field {field.name}. binary vector dimension should "
                f"be multiple of 8. ; use a dim such as {max(8, dim // 8 * 8)}"
            )
        if dim > limits.MAX_BINARY_DIM:
            raise SchemaError(
                f"invalid dimension: {dim} of field {field.name}. binary vector dimension should "
                f"be in range 2 ~ {limits.MAX_BINARY_DIM}; use fewer bits"
            )
    elif dim > limits.MAX_DIM:
        raise SchemaError(
            f"invalid dimension: {dim} of field {field.name}. float vector dimension should be in "
            f"range 2 ~ {limits.MAX_DIM}; reduce the dimension (e.g. with PCA or a smaller model)"
        )


def _check_max_length(field: FieldSchema, collection: str) -> None:
    length = _param_int(field, "max_length")
    if length is None:
        raise ParameterMissing(
            f"type param(max_length) should be specified for the field({field.name}) of "
            f"collection {collection}; pass max_length=<bytes, 1..{limits.MAX_VARCHAR_LENGTH}>"
        )
    if not 0 < length <= limits.MAX_VARCHAR_LENGTH:
        raise SchemaError(
            f"the maximum length specified for the field({field.name}) should be in (0, "
            f"{limits.MAX_VARCHAR_LENGTH}], but got {length} instead; max_length counts bytes of "
            "UTF-8"
        )


def _check_array(field: FieldSchema, collection: str) -> None:
    et = field.element_type
    if et is None or et == DataType.NONE:
        raise SchemaError(
            f"element data type None is not valid (array field {field.name}); pass "
            "element_type=DataType.INT64 (or another scalar type)"
        )
    if et == DataType.STRING:
        raise SchemaError("string data type not supported yet, please use VarChar type instead")
    if et not in ARRAY_ELEMENT_TYPES:
        raise SchemaError(
            f"element type {milvus_name(et)} is not supported (array field {field.name}); "
            "elements are BOOL, INT8/16/32/64, FLOAT, DOUBLE or VARCHAR"
        )
    if et == DataType.VARCHAR:
        _check_max_length(field, collection)
    capacity = _param_int(field, "max_capacity")
    if capacity is None:
        raise ParameterMissing(
            f"type param(max_capacity) should be specified for array field {field.name} of "
            f"collection {collection}; pass max_capacity=<1..{limits.MAX_ARRAY_CAPACITY}>"
        )
    if not 0 < capacity <= limits.MAX_ARRAY_CAPACITY:
        raise SchemaError(
            f"the maximum capacity specified for a Array should be in (0, "
            f"{limits.MAX_ARRAY_CAPACITY}], got {capacity} for field {field.name}"
        )


def _check_default(field: FieldSchema) -> None:
    if field.default_value is None:
        return
    tname = milvus_name(field.dtype)
    if field.is_primary:
        raise SchemaError(
            f"primary field not support default_value (field {field.name}); drop default_value"
        )
    if field.dtype not in DEFAULT_VALUE_TYPES:
        raise SchemaError(
            f"type not support default_value, type:{tname}, name:{field.name}; only BOOL, "
            "integer, FLOAT, DOUBLE and VARCHAR fields take a default_value (use nullable=True)"
        )
    kind = field.default_kind
    if kind != _KIND_OF_TYPE[field.dtype]:
        raise SchemaError(
            f"type ({tname}) of field ({field.name}) is not equal to the type"
            f"(DataType_{_KIND_NAME[kind]}) of default_value; pass a "
            f"{_NUMPY_OF[field.dtype]} value, e.g. {_NUMPY_OF[field.dtype]}(...)"
        )
    value = field.default_value
    if field.dtype in (DataType.INT8, DataType.INT16):
        info = np.iinfo(np.int8 if field.dtype == DataType.INT8 else np.int16)
        if not info.min <= int(value) <= info.max:
            raise SchemaError(
                f"default value out of range: [{int(value)} out of range {info.min} <= value <= "
                f"{info.max}] (field {field.name})"
            )
    if field.dtype in (DataType.FLOAT, DataType.DOUBLE) and not math.isfinite(float(value)):
        raise SchemaError(
            f"value '{value}' is not a number or infinity (default_value of {field.name}); use a "
            "finite number"
        )
    if field.dtype == DataType.VARCHAR:
        length = len(value.encode())
        max_length = field.param_int("max_length") or 0
        if length > max_length:
            raise SchemaError(
                f"the length ({length}) of string exceeds max length ({max_length}) (default_value "
                f"of {field.name}, counted in UTF-8 bytes); shorten it or raise max_length"
            )


def _check_functions(schema: CollectionSchema) -> None:
    by_name = {f.name: f for f in schema.fields}
    for fn in schema.functions:
        for name in fn.input_field_names:
            if name not in by_name:
                raise SchemaError(
                    f"Function input field not found in collection schema: {name}; add the field "
                    f"or fix function {fn.name!r}"
                )
        for name in fn.output_field_names:
            out = by_name.get(name)
            if out is None:
                raise SchemaError(
                    f"Function output field not found in collection schema: {name}; add the "
                    f"field or fix function {fn.name!r}"
                )
            if out.is_primary or out.is_partition_key or out.is_clustering_key:
                raise SchemaError(
                    "The output field must not be primary key, partition key, clustering key. "
                    f"({name} of function {fn.name!r})"
                )
        if fn.type == FunctionType.BM25:
            if len(fn.input_field_names) != 1 or len(fn.output_field_names) != 1:
                raise SchemaError("BM25 function must have exact 1 input and 1 output field.")
            if by_name[fn.input_field_names[0]].dtype != DataType.VARCHAR:
                raise SchemaError("BM25 function input field must be VARCHAR.")
            if by_name[fn.output_field_names[0]].dtype != DataType.SPARSE_FLOAT_VECTOR:
                raise SchemaError("BM25 function output field must be SPARSE_FLOAT_VECTOR.")
        elif fn.type == FunctionType.UNKNOWN:
            raise SchemaError(f"Unknown function type for function {fn.name!r}.")


def verify_schema(schema: CollectionSchema, collection_name: str | None = None) -> None:
    """Raises the first reason Milvus would refuse ``create_collection`` with this schema."""
    if not isinstance(schema, CollectionSchema):
        raise SchemaError(
            f"schema must be a CollectionSchema, got {type(schema).__name__}; build one with "
            "MilvusClient.create_schema()"
        )
    fields = schema.fields
    coll = collection_name or ""
    _check_functions(schema)
    if len(fields) > limits.MAX_FIELD_NUM:
        raise SchemaError(
            f"maximum field's number should be limited to {limits.MAX_FIELD_NUM}; this schema "
            f"has {len(fields)} fields: move rarely filtered attributes into a JSON field"
        )
    vectors = [f for f in fields if f.dtype in VECTOR_TYPES]
    if len(vectors) > limits.MAX_VECTOR_FIELD_NUM:
        raise SchemaError(
            f"maximum vector field's number should be limited to {limits.MAX_VECTOR_FIELD_NUM}; "
            f"this schema has {len(vectors)}: split the vectors over several collections"
        )
    if not vectors:
        raise SchemaError(
            "schema does not contain vector field; add one, e.g. "
            "add_field('vector', DataType.FLOAT_VECTOR, dim=768)"
        )
    if collection_name is not None:
        validate_collection_name(collection_name)
    for f in fields:
        if f.name in limits.RESERVED_FIELD_NAMES:
            raise FieldNameInvalid(
                f'field name "{f.name}" is reserved for internal use and cannot be used in user '
                "schemas; rename the field"
            )

    pks = [f for f in fields if f.is_primary]
    if len(pks) > 1:
        raise SchemaError(
            f"there are more than one primary key, field name = {pks[0].name}, {pks[1].name}; "
            "keep is_primary=True on one field"
        )
    if pks and pks[0].dtype not in PRIMARY_KEY_TYPES:
        raise SchemaError(
            f"the data type of primary key should be Int64 or VarChar ({pks[0].name} is "
            f"{milvus_name(pks[0].dtype)})"
        )
    if not pks:
        raise ParameterMissing(
            "primary key is not specified; add a DataType.INT64 or DataType.VARCHAR field with "
            "is_primary=True"
        )
    for f in fields:
        if f.is_dynamic:
            raise SchemaError(
                f"cannot explicitly set a field as a dynamic field ({f.name}); use "
                "create_schema(enable_dynamic_field=True) instead"
            )
    autos = [f for f in fields if f.auto_id]
    if len(autos) > 1:
        raise SchemaError(
            f"only one field can speficy AutoID with true, field name = {autos[0].name}, "
            f"{autos[1].name}"
        )
    if autos and not autos[0].is_primary:
        raise SchemaError(
            f"only primary field can speficy AutoID with true, field name = {autos[0].name}"
        )
    for f in fields:
        if f.dtype == DataType.STRING:
            raise SchemaError(
                "string data type not supported yet, please use VarChar type instead "
                f"(field {f.name})"
            )
        if f.dtype == DataType.NONE:
            raise SchemaError(f"data type None is not valid (field {f.name}); give it a DataType")
        if f.dtype in UNSUPPORTED_TYPES:
            raise SchemaError(
                f"data type {f.dtype.name} of field {f.name} is not supported by vecstore yet; "
                "use VARCHAR, JSON or ARRAY instead"
            )
        if f.dtype == DataType.ARRAY and f.element_type in (None, DataType.NONE, DataType.STRING):
            _check_array(f, coll)

    pkeys = [f for f in fields if f.is_partition_key]
    if len(pkeys) > 1:
        raise SchemaError(
            f"there are more than one partition key, field name = {pkeys[0].name}, "
            f"{pkeys[1].name}; keep is_partition_key=True on one field"
        )
    if pkeys:
        pkey = pkeys[0]
        if pkey.is_primary:
            raise SchemaError(
                "the partition key field must not be primary field; pick another field"
            )
        if pkey.nullable:
            raise SchemaError(
                f"partition key field not support nullable ({pkey.name}); drop nullable=True"
            )
        if pkey.dtype not in PARTITION_KEY_TYPES:
            raise SchemaError(
                f"the data type of partition key should be Int64 or VarChar ({pkey.name} is "
                f"{milvus_name(pkey.dtype)})"
            )

    ckeys = [f for f in fields if f.is_clustering_key]
    for f in ckeys:
        if f.dtype in VECTOR_TYPES:
            raise SchemaError(
                f"vector clustering key not allowed (field {f.name}); cluster on a scalar field"
            )
        if f.dtype not in CLUSTERING_KEY_TYPES:
            raise SchemaError(
                f"clustering key field {f.name} has unsupported data type "
                f"{milvus_name(f.dtype)}; use an integer, float or VARCHAR field"
            )
    if len(ckeys) > 1:
        raise SchemaError(
            f"there are more than one clustering key, field name = {ckeys[0].name}, {ckeys[1].name}"
        )

    for f in fields:
        validate_field_name(f.name)
        if f.dtype in VECTOR_TYPES:
            _check_dim(f)
        if f.dtype == DataType.VARCHAR:
            _check_max_length(f, coll)
        if f.dtype == DataType.ARRAY:
            _check_array(f, coll)

    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise SchemaError(f"duplicated field name {f.name} found; field names are unique")
        seen.add(f.name)

    for f in fields:
        if f.nullable and f.is_primary:
            raise SchemaError(f"primary field not support null ({f.name}); drop nullable=True")
        _check_default(f)


__all__ = ["validate_collection_name", "validate_field_name", "verify_schema"]
