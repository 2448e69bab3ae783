"""FieldSchema: one field of a collection, built like ``pymilvus.FieldSchema``.

``FieldSchema(name, dtype, description="", **kwargs)`` accepts pymilvus's keyword arguments and
applies pymilvus's own construction-time checks (``pymilvus/orm/schema.py``); the checks Milvus's
server makes at ``create_collection`` (names, dims, lengths, nullable and default rules) live in
:mod:`vecstore.schema.verify` and run from :meth:`CollectionSchema.verify`.

Keyword arguments, as in pymilvus:

- flags: ``is_primary``, ``auto_id``, ``nullable``, ``is_partition_key``, ``is_clustering_key``
  (bools; pymilvus's messages when they are not), ``is_dynamic``, ``default_value``,
  ``element_type`` (ARRAY);
- type parameters, kept in ``params`` only for vector, VARCHAR, TEXT and ARRAY fields (pymilvus's
  ``COMMON_TYPE_PARAMS``): ``dim``, ``max_length``, ``max_capacity``, ``enable_analyzer``,
  ``enable_match``, ``analyzer_params`` (a dict is stored as its JSON text),
  ``multi_analyzer_params``; ``"true"``/``"false"`` strings become bools. ``mmap_enabled`` and
  ``warmup`` are kept for every type.
- anything else is accepted and kept in ``kwargs`` without effect, exactly as pymilvus does (so
  code written for pymilvus never breaks on an extra argument). A misspelt type parameter
  (``dimension=8``) is therefore caught later, by :mod:`~vecstore.schema.verify`, with Milvus's
  message ("dimension is not defined in field type params of field v ...").

``default_value`` keeps the Python value. Its Milvus value kind is inferred the way pymilvus does
(``infer_default_value_bydata``): a Python ``int`` is an Int64 ("long") value, ``np.int32(5)`` an
Int (Int8/16/32) value, a ``float`` is a Float value for a FLOAT field and a Double value
otherwise. Milvus then refuses kinds that do not match the field (an ``int`` default on an INT32
field needs ``np.int32(...)``), and so does verify.

``to_dict()`` has the shape of one entry of pymilvus's ``describe_collection()["fields"]``
(``pymilvus/client/abstract.py``, ``FieldSchema.dict``): ``field_id`` (once assigned), ``name``,
``description``, ``type``, ``params`` (always; ``dim``, ``max_length``, ``max_capacity`` as ints,
``mmap_enabled`` as a bool, any other parameter as the string Milvus stores), then, only when set,
``default_value`` (the plain Python value, where pymilvus shows a protobuf ``ValueField``),
``element_type``, ``is_partition_key``, ``is_dynamic``, ``auto_id``, ``nullable``, ``is_primary``,
``is_clustering_key``, ``is_function_output``. ``FieldSchema.from_dict`` reads that shape and
pymilvus's own ``FieldSchema.to_dict()`` shape.

Instances are mutable like pymilvus's (pymilvus code sets ``field.auto_id`` etc.) and not
thread-safe; freeze a schema by taking ``to_dict()``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from vecstore.schema.errors import SchemaError
from vecstore.schema.types import TYPE_PARAM_TYPES, DataType

# pymilvus orm/constants.py COMMON_TYPE_PARAMS
COMMON_TYPE_PARAMS = (
    "dim",
    "max_length",
    "max_capacity",
    "enable_match",
    "enable_analyzer",
    "analyzer_params",
    "multi_analyzer_params",
)
ANY_TYPE_PARAMS = ("mmap_enabled", "warmup")
_INT_PARAMS = ("dim", "max_length", "max_capacity")
_KNOWN_KWARGS = frozenset(
    {
        "is_primary",
        "auto_id",
        "nullable",
        "is_partition_key",
        "is_clustering_key",
        "is_dynamic",
        "default_value",
        "element_type",
        "is_function_output",
        "external_field",
        "field_id",
        *COMMON_TYPE_PARAMS,
        *ANY_TYPE_PARAMS,
    }
)


def as_data_type(value: object) -> DataType:
    """``value`` as a DataType (an enum member, its int value or its name), or SchemaError."""
    if isinstance(value, str):
        member = DataType.__members__.get(value.upper())
        if member is not None:
            return member
    elif not isinstance(value, bool) and isinstance(value, (int, np.integer)):
        try:
            return DataType(int(value))
        except ValueError:
            pass
    raise SchemaError(
        f"Field dtype must be of DataType, got {value!r}; use a member of "
        "vecstore.schema.DataType (pymilvus.DataType values), e.g. DataType.FLOAT_VECTOR"
    )


def default_value_kind(value: object, dtype: DataType) -> DataType:
    """The Milvus ValueField kind pymilvus encodes ``value`` as (orm/types.py, scalar inference).

    BOOL, INT32 (Milvus's "Int" kind, shared by Int8/16/32), INT64 ("Long"), FLOAT, DOUBLE or
    VARCHAR; SchemaError for values Milvus cannot hold as a default (lists, dicts, bytes ...).
    """
    if isinstance(value, np.float32) or (isinstance(value, float) and dtype == DataType.FLOAT):
        return DataType.FLOAT
    if isinstance(value, (float, np.floating)):
        return DataType.DOUBLE
    if isinstance(value, (bool, np.bool_)):
        return DataType.BOOL
    if isinstance(value, (int, np.int64)):
        return DataType.INT64
    if isinstance(value, (np.int8, np.int16, np.int32)):
        return DataType.INT32
    if isinstance(value, str):
        return DataType.VARCHAR
    raise SchemaError(
        f"Default value unsupported data type: {type(value).__name__} ({value!r}); a "
        "default_value is a bool, int, float or str (and only for scalar fields)"
    )


def _coerce_default(value: object, dtype: DataType) -> object:
    """A stored default (plain Python value from to_dict) in the form pymilvus infers correctly."""
    if dtype in (DataType.INT8, DataType.INT16, DataType.INT32) and isinstance(value, int):
        return np.int32(value) if not isinstance(value, bool) else value
    return value


def _bool_kwarg(kwargs: Mapping[str, Any], key: str, message: str) -> bool:
    value = kwargs.get(key, False)
    if not isinstance(value, bool):
        raise SchemaError(f"{message} Got {value!r}; pass True or False")
    return value


class FieldSchema:
    """One field: name, DataType, flags and type parameters (see the module docstring)."""

    def __init__(self, name: str, dtype: DataType, description: str = "", **kwargs: Any) -> None:
        self.name = name
        self._dtype = as_data_type(dtype)
        if self._dtype == DataType.UNKNOWN:
            raise SchemaError("Field dtype must be of DataType; DataType.UNKNOWN is not a type")
        self._description = description
        self.kwargs: dict[str, Any] = {k: v for k, v in kwargs.items() if k not in _KNOWN_KWARGS}
        self.is_primary = _bool_kwarg(kwargs, "is_primary", "Param is_primary must be bool type.")
        self.auto_id = _bool_kwarg(kwargs, "auto_id", "Param auto_id must be bool type.")
        if self.auto_id and not self.is_primary:
            raise SchemaError(
                "The auto_id can only be specified on the primary key field; "
                f"set is_primary=True on {name!r} or drop auto_id"
            )
        self.nullable = _bool_kwarg(kwargs, "nullable", "nullable must be boolean.")
        self.is_partition_key = _bool_kwarg(
            kwargs, "is_partition_key", "Param is_partition_key must be bool type."
        )
        self.is_clustering_key = _bool_kwarg(
            kwargs, "is_clustering_key", "Param is_clustering_key must be bool type."
        )
        self.is_dynamic = bool(kwargs.get("is_dynamic", False))
        self.is_function_output = bool(kwargs.get("is_function_output", False))
        self.external_field = kwargs.get("external_field", "") or ""
        self.field_id: int | None = kwargs.get("field_id")

        self.default_value = kwargs.get("default_value")
        if "default_value" in kwargs and self.default_value is None and not self.nullable:
            raise SchemaError(
                "Default value cannot be None for a field that is defined as nullable == false. "
                f"Give {name!r} a real default_value or declare it nullable=True"
            )
        if self.default_value is not None:
            default_value_kind(self.default_value, self._dtype)  # pymilvus refuses these eagerly

        element_type = kwargs.get("element_type")
        self.element_type = None if element_type is None else as_data_type(element_type)
        self._type_params: dict[str, Any] = {}
        for key in ANY_TYPE_PARAMS:
            if key in kwargs:
                self._type_params[key] = kwargs[key]
        if self._dtype in TYPE_PARAM_TYPES:
            for key in COMMON_TYPE_PARAMS:
                if key in kwargs:
                    self._type_params[key] = self._normalise_param(key, kwargs[key])

    @staticmethod
    def _normalise_param(key: str, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if key in ("analyzer_params", "multi_analyzer_params") and isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return value

    # pymilvus exposes type params as attributes (field.dim, field.max_length) and None otherwise.
    def __getattr__(self, item: str) -> Any:
        if item.startswith("__") or item == "_type_params":
            raise AttributeError(item)
        return self.__dict__.get("_type_params", {}).get(item)

    @property
    def dtype(self) -> DataType:
        return self._dtype

    @property
    def description(self) -> str:
        return self._description

    @property
    def params(self) -> dict[str, Any]:
        """The type parameters (``dim``, ``max_length`` ...) as given; a live dict, as pymilvus."""
        return self._type_params

    def param_int(self, key: str) -> int | None:
        """An integer type parameter (Milvus parses strings too), None if absent or not integral."""
        value = self._type_params.get(key)
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return None
        return None

    @property
    def default_kind(self) -> DataType | None:
        """The Milvus value kind of ``default_value`` (see :func:`default_value_kind`)."""
        if self.default_value is None:
            return None
        return default_value_kind(self.default_value, self._dtype)

    def _describe_params(self) -> dict[str, Any]:
        # What describe_collection returns: Milvus stores every type param as a string and
        # pymilvus turns dim/max_length/max_capacity back into ints and mmap back into a bool.
        out: dict[str, Any] = {}
        for key, value in self._type_params.items():
            if key in _INT_PARAMS and self.param_int(key) is not None:
                out[key] = self.param_int(key)
            elif key == "mmap_enabled":
                out[key] = value if isinstance(value, bool) else str(value).lower() != "false"
            elif isinstance(value, str):
                out[key] = value
            else:
                out[key] = json.dumps(value, separators=(",", ":"))
        return out

    def to_dict(self) -> dict[str, Any]:
        """This field in the shape of one ``describe_collection()["fields"]`` entry."""
        d: dict[str, Any] = {}
        if self.field_id is not None:
            d["field_id"] = int(self.field_id)
        d.update(
            name=self.name,
            description=self._description,
            type=self._dtype,
            params=self._describe_params(),
        )
        if self.default_value is not None:
            v = self.default_value
            d["default_value"] = v.item() if isinstance(v, np.generic) else v
        if self._dtype == DataType.ARRAY and self.element_type:
            d["element_type"] = self.element_type
        for flag in ("is_partition_key", "is_dynamic", "auto_id", "nullable", "is_primary"):
            if getattr(self, flag):
                d[flag] = True
        for flag in ("is_clustering_key", "is_function_output"):
            if getattr(self, flag):
                d[flag] = True
        if self.external_field:
            d["external_field"] = self.external_field
        return d

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FieldSchema:
        """A FieldSchema from :meth:`to_dict`'s shape or pymilvus's ``FieldSchema.to_dict()``."""
        if not isinstance(raw, Mapping) or "name" not in raw or "type" not in raw:
            raise SchemaError(
                f"a field dict needs at least 'name' and 'type', got {raw!r}; "
                "pass FieldSchema.to_dict() or one describe_collection()['fields'] entry"
            )
        dtype = as_data_type(raw["type"])
        kwargs: dict[str, Any] = dict(raw.get("params") or {})
        for key in (
            "is_primary",
            "is_partition_key",
            "is_clustering_key",
            "is_dynamic",
            "nullable",
            "is_function_output",
        ):
            kwargs[key] = bool(raw.get(key, False))
        if raw.get("auto_id") is not None:
            kwargs["auto_id"] = bool(raw["auto_id"])
        if raw.get("default_value") is not None:
            kwargs["default_value"] = _coerce_default(raw["default_value"], dtype)
        if raw.get("element_type") is not None:
            kwargs["element_type"] = raw["element_type"]
        if raw.get("external_field"):
            kwargs["external_field"] = raw["external_field"]
        if raw.get("field_id") is not None:
            kwargs["field_id"] = int(raw["field_id"])
        return cls(raw["name"], dtype, raw.get("description", "") or "", **kwargs)

    def copy(self) -> FieldSchema:
        return copy.deepcopy(self)

    def __deepcopy__(self, memo: dict | None = None) -> FieldSchema:
        twin = FieldSchema.from_dict(self.to_dict())
        twin._type_params = copy.deepcopy(self._type_params)  # keep params exactly as given
        twin.kwargs = copy.deepcopy(self.kwargs)
        twin.default_value = self.default_value
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSchema):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # mutable, like pymilvus's

    def __repr__(self) -> str:
        return str(self.to_dict())


__all__ = ["COMMON_TYPE_PARAMS", "FieldSchema", "as_data_type", "default_value_kind"]
