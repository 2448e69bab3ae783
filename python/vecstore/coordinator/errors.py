"""Catalog errors with Milvus's codes (pkg/util/merr/errors.go), so the access layer can pass them
through unchanged: pymilvus's has_collection, for one, relies on code 100."""

from __future__ import annotations

from vecstore.errors import InvalidArgument, NotFoundError


class CollectionNotFound(NotFoundError):
    code = 100


class PartitionNotFound(NotFoundError):
    code = 200


class DatabaseNotFound(NotFoundError):
    code = 800


class AliasNotFound(NotFoundError):
    code = 1600


class AliasConflict(InvalidArgument):
    """An alias named like a collection, or a collection named like an alias."""

    code = 1601


class AliasAlreadyExists(InvalidArgument):
    code = 1602


class DatabaseNameInvalid(InvalidArgument):
    code = 802
