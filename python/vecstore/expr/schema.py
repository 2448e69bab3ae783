"""The schema description filters are checked against, and the limits that bound their cost.

A :class:`Schema` is a plain, immutable description of a collection as the filter layer needs it::

    Schema(
        fields=[
            Field("id", DataType.INT64),
            Field("title", DataType.VARCHAR, nullable=True),
            Field("tags", DataType.ARRAY, element_type=DataType.VARCHAR),
            Field("meta", DataType.JSON),
            Field("vec", DataType.FLOAT_VECTOR),       # accepted, but cannot be filtered
        ],
        primary_key="id",
        enable_dynamic_field=True,
    )

or the same as a dict (``Schema.from_dict``): ``{"fields": [{"name": "tags", "type": "ARRAY",
"element_type": "VARCHAR", "nullable": False}, ...], "primary_key": "id",
"enable_dynamic_field": True}``; type names are case-insensitive and may be ``DataType`` members.

With ``enable_dynamic_field`` the schema holds the dynamic field as a JSON field named ``$meta``
(added when absent): a bare identifier that names no field means ``$meta["identifier"]``, as in
Milvus. Field names follow Milvus: ``[A-Za-z_][A-Za-z0-9_]*`` (``$meta`` aside).

Data evaluated against a schema has one column per referenced field, named like the field (the
dynamic field's column is ``$meta``); see :mod:`vecstore.expr.columns` for the Arrow types.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vecstore.expr.errors import ExprError

DYNAMIC_FIELD = "$meta"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class DataType(enum.Enum):
    BOOL = "BOOL"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    VARCHAR = "VARCHAR"
    JSON = "JSON"
    ARRAY = "ARRAY"
    # Present in collection schemas; a filter naming one is rejected.
    FLOAT_VECTOR = "FLOAT_VECTOR"
    BINARY_VECTOR = "BINARY_VECTOR"
    FLOAT16_VECTOR = "FLOAT16_VECTOR"
    BFLOAT16_VECTOR = "BFLOAT16_VECTOR"
    INT8_VECTOR = "INT8_VECTOR"
    SPARSE_FLOAT_VECTOR = "SPARSE_FLOAT_VECTOR"

    @property
    def is_integer(self) -> bool:
        return self in _INTEGERS

    @property
    def is_floating(self) -> bool:
        return self in (DataType.FLOAT, DataType.DOUBLE)

    @property
    def is_numeric(self) -> bool:
        return self in _INTEGERS or self in (DataType.FLOAT, DataType.DOUBLE)

    @property
    def is_vector(self) -> bool:
        return self.name.endswith("_VECTOR")


_INTEGERS = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64})
ELEMENT_TYPES = frozenset(
    {
        DataType.BOOL,
        DataType.INT8,
        DataType.INT16,
        DataType.INT32,
        DataType.INT64,
        DataType.FLOAT,
        DataType.DOUBLE,
        DataType.VARCHAR,
    }
)
_ALIASES = {
    "STRING": "VARCHAR",
    "INT": "INT64",
    "BOOLEAN": "BOOL",
    "FLOAT32": "FLOAT",
    "FLOAT64": "DOUBLE",
}


def to_data_type(value: DataType | str) -> DataType:
    if isinstance(value, DataType):
        return value
    if isinstance(value, str):
        key = value.strip().upper()
        key = _ALIASES.get(key, key)
        try:
            return DataType(key)
        except ValueError:
            pass
    names = ", ".join(t.value for t in DataType)
    raise ExprError(f"unknown data type {value!r}; expected one of {names}")


@dataclass(frozen=True)
class Field:
    """One field: ``element_type`` is required for ARRAY and must be a scalar type."""

    name: str
    dtype: DataType
    element_type: DataType | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", to_data_type(self.dtype))
        if self.element_type is not None:
            object.__setattr__(self, "element_type", to_data_type(self.element_type))
        if self.name != DYNAMIC_FIELD and not _NAME.match(self.name or ""):
            raise ExprError(f"invalid field name {self.name!r}: use letters, digits and '_'")
        if self.dtype is DataType.ARRAY:
            if self.element_type not in ELEMENT_TYPES:
                raise ExprError(
                    f"ARRAY field {self.name!r} needs element_type, one of "
                    + ", ".join(sorted(t.value for t in ELEMENT_TYPES))
                )
        elif self.element_type is not None:
            raise ExprError(f"field {self.name!r}: element_type is only for ARRAY fields")

    def describe(self) -> str:
        if self.dtype is DataType.ARRAY:
            return f"ARRAY<{self.element_type.value}>"  # type: ignore[union-attr]
        return self.dtype.value


@dataclass(frozen=True)
class Schema:
    """Fields by name, the primary key's name, and whether the dynamic field is enabled."""

    fields: tuple[Field, ...]
    primary_key: str | None = None
    enable_dynamic_field: bool = False
    _by_name: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = tuple(self.fields)
        if self.enable_dynamic_field and not any(f.name == DYNAMIC_FIELD for f in fields):
            fields = fields + (Field(DYNAMIC_FIELD, DataType.JSON, nullable=True),)
        by_name: dict[str, Field] = {}
        for f in fields:
            if not isinstance(f, Field):
                raise ExprError(f"schema fields must be Field objects, got {type(f).__name__}")
            if f.name in by_name:
                raise ExprError(f"duplicate field name {f.name!r} in schema")
            by_name[f.name] = f
        dyn = by_name.get(DYNAMIC_FIELD)
        if dyn is not None and dyn.dtype is not DataType.JSON:
            raise ExprError(f"the dynamic field {DYNAMIC_FIELD!r} must be JSON")
        if self.primary_key is not None and self.primary_key not in by_name:
            raise ExprError(f"primary key {self.primary_key!r} is not a field of the schema")
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "_by_name", by_name)

    def get(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @classmethod
    def from_dict(cls, spec: Mapping) -> Schema:
        """A schema from ``{"fields": [...], "primary_key": ..., "enable_dynamic_field": ...}``."""
        if not isinstance(spec, Mapping):
            raise ExprError(f"schema must be a mapping, got {type(spec).__name__}")
        raw: Iterable = spec.get("fields", ())
        fields = []
        for item in raw:
            if isinstance(item, Field):
                fields.append(item)
                continue
            if not isinstance(item, Mapping) or "name" not in item:
                raise ExprError(f"each field needs a 'name' and a 'type', got {item!r}")
            dtype = item.get("type", item.get("dtype", item.get("datatype")))
            if dtype is None:
                raise ExprError(f"field {item['name']!r} has no 'type'")
            fields.append(
                Field(
                    item["name"],
                    to_data_type(dtype),
                    element_type=item.get("element_type"),
                    nullable=bool(item.get("nullable", False)),
                )
            )
        primary = spec.get("primary_key")
        if primary is None:
            primary = next(
                (i["name"] for i in raw if isinstance(i, Mapping) and i.get("is_primary")), None
            )
        return cls(tuple(fields), primary, bool(spec.get("enable_dynamic_field", False)))


@dataclass(frozen=True)
class Limits:
    """Bounds on what one filter may cost; exceeding one is an :class:`ExprError`, never a crash.

    ``max_length``: characters of filter text (1 MiB: room for a 100k-value ``in`` list of ids).
    ``max_depth``: nesting of parentheses, ``not``, unary signs, function calls, list literals and
    operator trees (Milvus's ``proxy.maxExpressionDepth`` accepts 100 nested parentheses by
    default; the parser stays far below Python's recursion limit at 128).
    ``max_list``: values in one ``in`` list or ``json_contains_*`` list, literal or template.
    ``max_string``: characters in one string literal or template string.
    """

    max_length: int = 1 << 20
    max_depth: int = 128
    max_list: int = 100_000
    max_string: int = 65_536


DEFAULT_LIMITS = Limits()
