"""CollectionSchema and Function, built like pymilvus's (``pymilvus/orm/schema.py``).

``CollectionSchema(fields=None, description="", functions=None, **kwargs)`` takes pymilvus's
keyword arguments: ``auto_id``, ``enable_dynamic_field``, ``primary_field``,
``partition_key_field``, ``clustering_key_field`` and ``check_fields`` (others are kept in
``kwargs`` without effect, as pymilvus does). ``MilvusClient.create_schema(**kw)`` is
``CollectionSchema(**kw)``: with ``fields`` left out nothing is checked until :meth:`verify`, and
:meth:`add_field` returns the schema so calls chain. Passing a ``fields`` list (even an empty one)
runs pymilvus's construction checks (one primary key of INT64/VARCHAR, at most one partition key)
unless ``check_fields=False``.

Two levels of checking, as in pymilvus + Milvus:

- construction and ``add_field`` apply pymilvus's client-side checks (bool flags, one primary key,
  one partition key, one clustering key, ``auto_id`` only on the primary key);
- :meth:`verify` applies Milvus's server-side checks for ``create_collection``
  (:func:`vecstore.schema.verify.verify_schema`): names, limits, dims, lengths, nullable and
  default rules. The client calls it before anything is created.

``to_dict()`` returns the schema part of pymilvus's ``describe_collection()`` dict: ``auto_id``,
``description``, ``fields`` (see :meth:`FieldSchema.to_dict`), ``functions`` (describe's shape,
with field ids once assigned) and ``enable_dynamic_field``; the coordinator adds
``collection_name``, ``collection_id``, ``num_shards`` and the rest. The dynamic field ``$meta`` is
not listed, as Milvus hides it from describe. ``from_dict`` accepts that shape, a whole
describe_collection dict, and pymilvus's ``CollectionSchema.to_dict()``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from vecstore.schema.errors import SchemaError
from vecstore.schema.field import FieldSchema
from vecstore.schema.limits import DYNAMIC_FIELD_NAME, START_OF_USER_FIELD_ID
from vecstore.schema.types import PARTITION_KEY_TYPES, PRIMARY_KEY_TYPES, DataType, FunctionType


class Function:
    """A schema function (BM25, text embedding, MinHash) as ``pymilvus.Function``."""

    def __init__(
        self,
        name: str,
        function_type: FunctionType,
        input_field_names: str | list[str],
        output_field_names: str | list[str] | None = None,
        description: str = "",
        params: dict | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise SchemaError(f"The name of the function should be a string, but got {type(name)}")
        if not isinstance(description, str):
            raise SchemaError(
                f"The description of the function should be a string, but got {type(description)}"
            )
        inputs = [input_field_names] if isinstance(input_field_names, str) else input_field_names
        outputs = output_field_names if output_field_names is not None else []
        outputs = [outputs] if isinstance(outputs, str) else outputs
        if not isinstance(inputs, list) or not isinstance(outputs, list):
            raise SchemaError(
                "The input and output field names of the function should be a string or a "
                "list of strings"
            )
        try:
            self._type = FunctionType(function_type)
        except ValueError:
            raise SchemaError(
                f"Unknown function type: {function_type!r}; use FunctionType"
            ) from None
        if not all(isinstance(n, str) for n in inputs + outputs):
            raise SchemaError("The type of function input and output must be str.")
        if len(inputs) != len(set(inputs)):
            raise SchemaError("Duplicate input field names are not allowed in function.")
        if len(outputs) != len(set(outputs)):
            raise SchemaError("Duplicate output field names are not allowed in function.")
        if set(inputs) & set(outputs):
            raise SchemaError("Input and output field names must be different.")
        if params is not None and not isinstance(params, dict):
            raise SchemaError("The parameters of the function should be a dictionary.")
        self.name = name
        self.description = description
        self.input_field_names = list(inputs)
        self.output_field_names = list(outputs)
        self.params = dict(params or {})

    @property
    def type(self) -> FunctionType:
        return self._type

    def to_dict(self) -> dict[str, Any]:
        """pymilvus's ``Function.to_dict()`` shape."""
        return {
            "name": self.name,
            "description": self.description,
            "type": self._type,
            "input_field_names": list(self.input_field_names),
            "output_field_names": list(self.output_field_names),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Function:
        return cls(
            raw["name"],
            raw["type"],
            list(raw["input_field_names"]),
            list(raw.get("output_field_names") or []),
            raw.get("description", "") or "",
            dict(raw.get("params") or {}),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Function):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self) -> str:
        return str(self.to_dict())


class CollectionSchema:
    """The fields, functions and options of a collection (see the module docstring)."""

    def __init__(
        self,
        fields: list[FieldSchema] | None = None,
        description: str = "",
        functions: list[Function] | None = None,
        **kwargs: Any,
    ) -> None:
        self._kwargs = dict(kwargs)
        self._description = description
        self._enable_dynamic_field = kwargs.get("enable_dynamic_field")
        if "auto_id" in kwargs and not isinstance(kwargs["auto_id"], bool):
            raise SchemaError(f"Param auto_id must be bool type. Got {kwargs['auto_id']!r}")
        for key in ("primary_field", "partition_key_field", "clustering_key_field"):
            if kwargs.get(key) is not None and not isinstance(kwargs[key], str):
                raise SchemaError(f"Param {key} must be str type. Got {kwargs[key]!r}")
        if functions is not None and not isinstance(functions, list):
            raise SchemaError("The functions of collection must be type list.")
        for fn in functions or []:
            if not isinstance(fn, Function):
                raise SchemaError("The function of schema type must be Function.")
        if fields is not None and not isinstance(fields, list):
            raise SchemaError("The fields of schema must be type list.")
        for f in fields or []:
            if not isinstance(f, FieldSchema):
                raise SchemaError("The field of schema type must be FieldSchema.")
        self._fields: list[FieldSchema] = []
        self._functions: list[Function] = list(functions or [])
        self._primary_field: FieldSchema | None = None
        self._partition_key_field: FieldSchema | None = None
        self._clustering_key_field: FieldSchema | None = None
        for f in fields or []:
            self._add(copy.deepcopy(f))
        self._mark_function_outputs()
        if fields is not None and kwargs.get("check_fields", True):
            self._check_fields()

    # -- pymilvus's client-side bookkeeping ------------------------------------------------
    def _add(self, field: FieldSchema) -> None:
        kw = self._kwargs
        if kw.get("primary_field") == field.name:
            field.is_primary = True
        if kw.get("partition_key_field") == field.name:
            field.is_partition_key = True
        if kw.get("clustering_key_field") == field.name:
            field.is_clustering_key = True
        for flag, attr, what in (
            ("is_primary", "_primary_field", "primary key"),
            ("is_partition_key", "_partition_key_field", "partition key"),
            ("is_clustering_key", "_clustering_key_field", "clustering key"),
        ):
            current = getattr(self, attr)
            if getattr(field, flag):
                if current is not None and current.name != field.name:
                    raise SchemaError(
                        f"Expected only one {what} field, got [{current.name}, {field.name}, ...]."
                        f" Set {flag}=True on one field only"
                    )
                setattr(self, attr, field)
        if field.is_primary and kw.get("auto_id", False):
            field.auto_id = True
        self._fields.append(field)

    def _check_fields(self) -> None:
        pk = self._primary_field
        if pk is None:
            raise SchemaError(
                "Schema must have a primary key field. Add one with is_primary=True "
                "(DataType.INT64 or DataType.VARCHAR)"
            )
        if pk.dtype not in PRIMARY_KEY_TYPES:
            raise SchemaError(
                f"Primary key type must be DataType.INT64 or DataType.VARCHAR. {pk.name!r} is "
                f"{pk.dtype.name}"
            )
        name = self._kwargs.get("partition_key_field")
        if name is not None and self._partition_key_field is None:
            raise SchemaError(
                f"the specified partition key field {{{name}}} not exist; add the field or fix "
                "partition_key_field"
            )
        pkey = self._partition_key_field
        if pkey is not None and pkey.dtype not in PARTITION_KEY_TYPES:
            raise SchemaError(
                "Partition key field type must be DataType.INT64 or DataType.VARCHAR. "
                f"{pkey.name!r} is {pkey.dtype.name}"
            )
        name = self._kwargs.get("clustering_key_field")
        if name is not None and self._clustering_key_field is None:
            raise SchemaError(f"the specified clustering key field {{{name}}} not exist")

    def _mark_function_outputs(self) -> None:
        outputs = {n for fn in self._functions for n in fn.output_field_names}
        for f in self._fields:
            if f.name in outputs:
                f.is_function_output = True

    # -- building --------------------------------------------------------------------------
    def add_field(self, field_name: str, datatype: DataType, **kwargs: Any) -> CollectionSchema:
        """Adds ``FieldSchema(field_name, datatype, **kwargs)``; returns self so calls chain."""
        field = FieldSchema(field_name, datatype, **kwargs)
        before = (self._primary_field, self._partition_key_field, self._clustering_key_field)
        try:
            self._add(field)
        except SchemaError:
            self._primary_field, self._partition_key_field, self._clustering_key_field = before
            raise
        self._mark_function_outputs()
        return self

    def add_function(self, function: Function) -> CollectionSchema:
        if not isinstance(function, Function):
            raise SchemaError("The function of schema type must be Function.")
        self._functions.append(function)
        self._mark_function_outputs()
        return self

    def verify(self, collection_name: str | None = None) -> CollectionSchema:
        """Milvus's create_collection checks (:func:`~vecstore.schema.verify.verify_schema`)."""
        from vecstore.schema.verify import verify_schema  # verify imports this module

        verify_schema(self, collection_name)
        return self

    def validate_rows(self, rows: Any, **options: Any) -> Any:
        """The rows as a checked canonical ``pyarrow.Table`` (see :func:`.batch.validate_rows`)."""
        from vecstore.schema.batch import validate_rows

        return validate_rows(self, rows, **options)

    def validate_columns(self, columns: Any, **options: Any) -> Any:
        """The columns as a checked ``pyarrow.Table`` (:func:`.batch.validate_columns`)."""
        from vecstore.schema.batch import validate_columns

        return validate_columns(self, columns, **options)

    def arrow_schema(self, *, include_auto_id: bool = False) -> Any:
        """The ``pyarrow.Schema`` of validated batches (auto-id key only if ``include_auto_id``)."""
        import pyarrow as pa

        from vecstore.schema.arrow import arrow_field, dynamic_arrow_field

        outputs = self.function_output_names
        fields = [
            arrow_field(f)
            for f in self._fields
            if f.name not in outputs and (include_auto_id or not (f.is_primary and f.auto_id))
        ]
        if self.enable_dynamic_field:
            fields.append(dynamic_arrow_field())
        return pa.schema(fields)

    def assign_field_ids(self, start: int = START_OF_USER_FIELD_ID) -> CollectionSchema:
        """Gives every field without an id the next id from ``start`` on, in order (as Milvus)."""
        used = [f.field_id for f in self._fields if f.field_id is not None]
        next_id = max([start - 1, *used]) + 1
        for f in self._fields:
            if f.field_id is None:
                f.field_id = next_id
                next_id += 1
        return self

    # -- reading ---------------------------------------------------------------------------
    @property
    def fields(self) -> list[FieldSchema]:
        return self._fields

    @property
    def functions(self) -> list[Function]:
        return self._functions

    @property
    def description(self) -> str:
        return self._description

    @property
    def primary_field(self) -> FieldSchema | None:
        return self._primary_field

    @property
    def partition_key_field(self) -> FieldSchema | None:
        return self._partition_key_field

    @property
    def clustering_key_field(self) -> FieldSchema | None:
        return self._clustering_key_field

    @property
    def auto_id(self) -> bool:
        if self._primary_field is not None:
            return self._primary_field.auto_id
        return bool(self._kwargs.get("auto_id", False))

    @auto_id.setter
    def auto_id(self, value: bool) -> None:
        if self._primary_field is not None:
            self._primary_field.auto_id = bool(value)
        self._kwargs["auto_id"] = bool(value)

    @property
    def enable_dynamic_field(self) -> bool:
        return bool(self._enable_dynamic_field)

    @enable_dynamic_field.setter
    def enable_dynamic_field(self, value: bool) -> None:
        self._enable_dynamic_field = bool(value)

    @property
    def kwargs(self) -> dict[str, Any]:
        return self._kwargs

    def field(self, name: str) -> FieldSchema | None:
        """The field called ``name``, or None."""
        for f in self._fields:
            if f.name == name:
                return f
        return None

    @property
    def function_output_names(self) -> frozenset[str]:
        """Fields filled by a function (BM25 ...): never supplied on insert."""
        return frozenset(n for fn in self._functions for n in fn.output_field_names)

    @property
    def dynamic_field_name(self) -> str | None:
        return DYNAMIC_FIELD_NAME if self.enable_dynamic_field else None

    # -- dict form -------------------------------------------------------------------------
    def _function_dict(self, fn: Function, index: int) -> dict[str, Any]:
        ids = {f.name: f.field_id for f in self._fields}
        assigned = bool(ids) and all(i is not None for i in ids.values())
        return {
            "name": fn.name,
            "id": START_OF_USER_FIELD_ID + index if assigned else 0,
            "description": fn.description,
            "type": fn.type,
            "params": dict(fn.params),
            "input_field_names": list(fn.input_field_names),
            "input_field_ids": [ids.get(n) or 0 for n in fn.input_field_names],
            "output_field_names": list(fn.output_field_names),
            "output_field_ids": [ids.get(n) or 0 for n in fn.output_field_names],
        }

    def to_dict(self) -> dict[str, Any]:
        """The schema part of ``describe_collection()`` (see the module docstring)."""
        return {
            "auto_id": self.auto_id,
            "description": self._description,
            "fields": [f.to_dict() for f in self._fields],
            "functions": [self._function_dict(fn, i) for i, fn in enumerate(self._functions)],
            "enable_dynamic_field": self.enable_dynamic_field,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CollectionSchema:
        """A schema from :meth:`to_dict`, a describe_collection dict or pymilvus's to_dict()."""
        if not isinstance(raw, Mapping) or not isinstance(raw.get("fields"), Iterable):
            raise SchemaError(
                "a schema dict needs a 'fields' list; pass CollectionSchema.to_dict() or the "
                "dict describe_collection returns"
            )
        fields = [
            FieldSchema.from_dict(f)
            for f in raw["fields"]
            if not (f.get("is_dynamic") and f.get("name") == DYNAMIC_FIELD_NAME)
        ]
        functions = [Function.from_dict(fn) for fn in raw.get("functions") or []]
        return cls(
            fields,
            raw.get("description", "") or "",
            functions,
            enable_dynamic_field=bool(raw.get("enable_dynamic_field", False)),
            check_fields=False,
        )

    construct_from_dict = from_dict  # pymilvus's name

    def copy(self) -> CollectionSchema:
        return copy.deepcopy(self)

    def __deepcopy__(self, memo: dict | None = None) -> CollectionSchema:
        twin = CollectionSchema(
            [copy.deepcopy(f) for f in self._fields],
            self._description,
            [Function.from_dict(fn.to_dict()) for fn in self._functions],
            **{**copy.deepcopy(self._kwargs), "check_fields": False},
        )
        twin._enable_dynamic_field = self._enable_dynamic_field
        return twin

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CollectionSchema):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self) -> str:
        return str(self.to_dict())


__all__ = ["CollectionSchema", "Function"]
