"""vecstore.schema: Milvus's data model, with pymilvus's names, values and behaviour.

The client, proxy and storage layers all describe collections with these classes:

- :class:`DataType`, :class:`FunctionType`: pymilvus's enums, same names and wire values;
- :class:`FieldSchema`, :class:`CollectionSchema`, :class:`Function`: built as in pymilvus
  (``MilvusClient.create_schema(...)`` is ``CollectionSchema(...)``, ``add_field`` chains),
  with ``to_dict()`` in the shape of ``describe_collection()`` and ``from_dict()``;
- :meth:`CollectionSchema.verify` / :func:`verify_schema`: Milvus's create_collection checks, with
  Milvus's messages and error codes (:mod:`vecstore.schema.errors`);
- :func:`validate_rows` / :func:`validate_columns` (also methods of CollectionSchema): the write
  path's whole-batch validation, returning the canonical Arrow layout of
  :mod:`vecstore.schema.arrow`;
- :mod:`vecstore.schema.limits`: Milvus's limits, with their sources.

Nothing here does I/O or keeps global state; schemas are plain mutable objects (not thread-safe
while being built, safe to share once built).
"""

from __future__ import annotations

from vecstore.schema.arrow import arrow_field, arrow_type
from vecstore.schema.batch import validate_columns, validate_rows
from vecstore.schema.collection import CollectionSchema, Function
from vecstore.schema.errors import DataError, FieldNameInvalid, ParameterMissing, SchemaError
from vecstore.schema.field import FieldSchema
from vecstore.schema.types import DataType, FunctionType
from vecstore.schema.verify import validate_collection_name, validate_field_name, verify_schema

__all__ = [
    "CollectionSchema",
    "DataError",
    "DataType",
    "FieldNameInvalid",
    "FieldSchema",
    "Function",
    "FunctionType",
    "ParameterMissing",
    "SchemaError",
    "arrow_field",
    "arrow_type",
    "validate_collection_name",
    "validate_columns",
    "validate_field_name",
    "validate_rows",
    "verify_schema",
]
