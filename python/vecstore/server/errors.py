"""vecstore errors -> Milvus ``common.Status``, and the guard every servicer method runs under.

pymilvus raises when either ``Status.code`` (the new error code, vecstore's ``VecstoreError.code``
is already Milvus's: 100 collection not found, 1100 invalid parameter, ...) or the legacy
``Status.error_code`` enum is non-zero, and decides some behaviour on them: ``has_collection`` is
false on ``code 100`` / ``CollectionNotExists``, ``describe_index`` answers None on ``code 700`` /
``IndexNotExist``, ``code 8`` (rate limit) is retried. So both are filled in, from one table.

An exception that escapes a servicer method reaches the client as gRPC ``UNKNOWN``, which pymilvus
retries for seconds to minutes; :func:`guard` turns every exception into a status in the reply
instead. Errors that are not vecstore's are reported as internal errors (code 5, Milvus's
``ServiceInternal``) with the exception's type and text, and logged with their traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf import symbol_database
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from vecstore.errors import InvalidArgument, VecstoreError

log = logging.getLogger("vecstore.server")

INDEX_NOT_FOUND = 700  # merr.ErrIndexNotFound
SERVICE_INTERNAL = 5  # merr.ErrServiceInternal

_LEGACY = {
    100: common_pb2.CollectionNotExists,
    INDEX_NOT_FOUND: common_pb2.IndexNotExist,
    1400: common_pb2.PermissionDenied,  # merr.ErrPrivilegeNotAuthenticated
    1401: common_pb2.PermissionDenied,  # merr.ErrPrivilegeNotPermitted
}

SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def output_class(rpc: str) -> type:
    """The reply message class of ``MilvusService/<rpc>``."""
    desc = SERVICE.methods_by_name[rpc].output_type
    return symbol_database.Default().GetSymbol(desc.full_name)


OK = common_pb2.Status(code=0, error_code=common_pb2.Success)


def status_for(exc: BaseException) -> common_pb2.Status:
    if isinstance(exc, VecstoreError):
        code = int(exc.code)
        text = exc.message
        if isinstance(exc, InvalidArgument) and text.startswith("index not found"):
            code = INDEX_NOT_FOUND
        legacy = _LEGACY.get(code, common_pb2.IllegalArgument if isinstance(exc, ValueError)
                             else common_pb2.UnexpectedError)
        return common_pb2.Status(code=code, error_code=legacy, reason=text)
    log.exception("internal error in a request")
    return common_pb2.Status(code=SERVICE_INTERNAL, error_code=common_pb2.UnexpectedError,
                             reason=f"vecstore internal error: {type(exc).__name__}: {exc}")


def reply(cls: type, status: common_pb2.Status) -> Any:
    if cls is common_pb2.Status:
        return status
    return cls(status=status)


def guard(fn: Callable) -> Callable:
    """Wraps a servicer method so that every exception becomes a status in its reply."""
    cls = output_class(fn.__name__)

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return fn(self, request, context)
        except Exception as e:  # noqa: BLE001 (see the module docstring)
            return reply(cls, status_for(e))

    return wrapper
