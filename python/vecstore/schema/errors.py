"""Errors raised by :mod:`vecstore.schema`, with Milvus's error codes.

All are :class:`~vecstore.errors.InvalidArgument` (so ``ValueError``): nothing was created or
written when one is raised. Codes are Milvus's (``pkg/util/merr/errors.go``), so a server can put
them on the wire unchanged:

==================  =====  ==========================================================
class               code   used for
==================  =====  ==========================================================
SchemaError         1100   ParameterInvalid: a bad schema, field or type parameter
ParameterMissing    1101   ParameterMissing: a required parameter is absent
FieldNameInvalid    1701   FieldInvalidName: a field name breaks Milvus's naming rules
DataError           1100   ParameterInvalid: a batch of rows or columns does not fit
==================  =====  ==========================================================

Messages start with Milvus's own wording where Milvus has one (so code that matches Milvus's
message text keeps working) and end with the fix. :class:`DataError` also carries ``field`` and
``row`` (the batch row index, or None when the problem is not one row's).
"""

from __future__ import annotations

from vecstore.errors import InvalidArgument


class SchemaError(InvalidArgument):
    """A schema, field or type parameter that Milvus refuses."""

    code = 1100


class ParameterMissing(SchemaError):
    """A parameter Milvus requires is absent (for example VARCHAR's max_length)."""

    code = 1101


class FieldNameInvalid(SchemaError):
    """A field name that breaks Milvus's naming rules."""

    code = 1701


class DataError(InvalidArgument):
    """A batch of rows or columns that does not fit the schema; names the field and the row."""

    code = 1100

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        where = []
        if field is not None:
            where.append(f"field {field!r}")
        if row is not None:
            where.append(f"row {row}")
        text = f"{', '.join(where)}: {message}" if where else message
        super().__init__(text)
        self.field = field
        self.row = row


__all__ = ["DataError", "FieldNameInvalid", "ParameterMissing", "SchemaError"]
