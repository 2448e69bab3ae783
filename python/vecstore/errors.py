"""The errors vecstore raises.

Every error is a :class:`VecstoreError` carrying a stable numeric ``code`` and a ``message`` that
names the problem and the fix. Subclasses also derive the fitting built-in exception, so code that
catches ``ValueError`` or ``OSError`` keeps working::

    try:
        vecstore.knn(q, base, k=0)
    except ValueError as e:          # also vecstore.InvalidArgument, vecstore.VecstoreError
        print(e.code, e.message)

Codes are part of the API (they travel over the wire in server mode): never renumber them.
``InvalidArgument`` uses Milvus's code for an invalid parameter (1100). Subclasses defined next to
the code that raises them take codes from their base's range: ``storage.lock.DataDirLocked`` 2002,
``storage.meta.Compacted`` 3001.

The native core (``vecstore._core``) raises these same classes: its Status codes map onto them in
``cpp/python/errors.cc``.
"""

from __future__ import annotations


class VecstoreError(Exception):
    """Base class of every error vecstore raises."""

    code: int = 1

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidArgument(VecstoreError, ValueError):
    """A bad argument: wrong type, dtype, shape, value or option. Nothing was changed."""

    code = 1100


class NotSupported(VecstoreError):
    """A MilvusClient feature, index type or parameter this version of vecstore does not
    implement; the message says what is supported instead."""

    code = 3000  # Milvus's "unsupported operation"


class NotFoundError(VecstoreError, LookupError):
    """A named thing (collection, partition, index, file) does not exist."""

    code = 3000


class StorageError(VecstoreError, OSError):
    """Reading or writing storage failed (I/O error, full disk, failed fsync)."""

    code = 2000

    def __init__(self, message: str, *, code: int | None = None) -> None:
        VecstoreError.__init__(self, message, code=code)


class CorruptionError(StorageError):
    """Stored data failed a checksum or a format check."""

    code = 2001


class Cancelled(VecstoreError):
    """The operation was cancelled (for example by an interrupt) before it finished."""

    code = 4000


class InternalError(VecstoreError, RuntimeError):
    """A bug in vecstore: please report it with the message."""

    code = 5000


__all__ = [
    "Cancelled",
    "CorruptionError",
    "InternalError",
    "InvalidArgument",
    "NotFoundError",
    "StorageError",
    "VecstoreError",
]
