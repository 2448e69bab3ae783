"""The dispatch layer every call passes before the servicer: authentication, request limits,
privileges, metrics and the request log (a gRPC server interceptor).

Order for each call:

1. authentication (when on): the ``authorization`` header must name a user and the right
   password, or the call is aborted with gRPC ``UNAUTHENTICATED`` and Milvus's message
   ("auth check failure ..."); it is never decoded or served. pymilvus raises that at once.
2. decoding: bytes that are not the method's request message get an invalid-parameter status
   (1100) in the reply; the server keeps serving.
3. limits (:mod:`.limits`): an over-limit request gets an invalid-parameter status naming the
   limit.
4. privileges (when auth is on): :data:`PRIVILEGES` maps each RPC to Milvus's privilege name and
   the request field naming its collection; a caller without it gets status 1401 (legacy
   ``PermissionDenied``) naming the privilege, the user, the collection and the database.
   RPCs missing from the map are allowed only to root and ``admin`` users. The user and role
   RPCs (:mod:`.rbac`) check their callers themselves (a user may read itself and change its
   own password).
5. the servicer, with the caller's name in :data:`CURRENT_USER`; then one metrics sample and one
   request log line (JSON: method, user, status code, latency in ms).

The status recorded is the reply's Milvus ``Status.code`` (0: success), or the gRPC status name
when the call ended with one (``UNAUTHENTICATED``, ``UNIMPLEMENTED``, ...).
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2

from vecstore.errors import InvalidArgument
from vecstore.server.auth import AuthError, CredentialStore
from vecstore.server.errors import SERVICE, output_class, reply, status_for
from vecstore.server.limits import Limits

log = logging.getLogger("vecstore.server")
request_log = logging.getLogger("vecstore.server.requests")

CURRENT_USER: contextvars.ContextVar[str] = contextvars.ContextVar("vecstore_user",
                                                                  default="root")
_PREFIX = "/milvus.proto.milvus.MilvusService/"
PERMISSION_DENIED = 1401  # merr.ErrPrivilegeNotPermitted

# RPC -> (privilege, request field with the collection name or "" for "*").
_COLL = "collection_name"
PRIVILEGES: dict[str, tuple[str, str]] = {
    "Insert": ("Insert", _COLL), "Upsert": ("Upsert", _COLL), "Delete": ("Delete", _COLL),
    "Search": ("Search", _COLL), "HybridSearch": ("Search", _COLL), "Query": ("Query", _COLL),
    "LoadCollection": ("Load", _COLL), "LoadPartitions": ("Load", _COLL),
    "GetLoadingProgress": ("GetLoadingProgress", _COLL), "GetLoadState": ("GetLoadState", _COLL),
    "ReleaseCollection": ("Release", _COLL), "ReleasePartitions": ("Release", _COLL),
    "CreateIndex": ("CreateIndex", _COLL), "DropIndex": ("DropIndex", _COLL),
    "DescribeIndex": ("IndexDetail", _COLL), "GetIndexState": ("IndexDetail", _COLL),
    "GetIndexBuildProgress": ("IndexDetail", _COLL),
    "GetIndexStatistics": ("IndexDetail", _COLL),
    "Flush": ("Flush", "collection_names"), "GetFlushState": ("GetFlushState", ""),
    "GetCollectionStatistics": ("GetStatistics", _COLL),
    "GetPartitionStatistics": ("GetStatistics", _COLL),
    "ManualCompaction": ("Compaction", _COLL), "GetCompactionState": ("Compaction", ""),
    "CreatePartition": ("CreatePartition", _COLL), "DropPartition": ("DropPartition", _COLL),
    "ShowPartitions": ("ShowPartitions", _COLL), "HasPartition": ("HasPartition", _COLL),
    "DescribeCollection": ("DescribeCollection", _COLL),
    "HasCollection": ("DescribeCollection", _COLL),
    "CreateCollection": ("CreateCollection", _COLL),
    "DropCollection": ("DropCollection", _COLL),
    "RenameCollection": ("RenameCollection", "oldName"),
    "TruncateCollection": ("DropCollection", _COLL),
    "AlterCollection": ("AlterCollection", _COLL),
    "ShowCollections": ("ShowCollections", ""),
    "CreateAlias": ("CreateAlias", _COLL), "AlterAlias": ("CreateAlias", _COLL),
    "DropAlias": ("DropAlias", ""), "DescribeAlias": ("DescribeAlias", ""),
    "ListAliases": ("ListAliases", _COLL),
    "CreateDatabase": ("CreateDatabase", ""), "DropDatabase": ("DropDatabase", ""),
    "ListDatabases": ("ListDatabases", ""), "DescribeDatabase": ("DescribeDatabase", ""),
    "AlterDatabase": ("AlterDatabase", ""),
}
# Every caller may do these once authenticated (the handshake and harmless probes).
OPEN = frozenset({"Connect", "GetVersion", "CheckHealth", "AllocTimestamp"})
# Checked by the servicer itself (see .rbac).
SELF_CHECKED = frozenset({
    "CreateCredential", "UpdateCredential", "DeleteCredential", "ListCredUsers", "CreateRole",
    "DropRole", "AlterRole", "OperateUserRole", "SelectRole", "SelectUser", "OperatePrivilege",
    "OperatePrivilegeV2", "SelectGrant", "CreatePrivilegeGroup", "DropPrivilegeGroup",
    "ListPrivilegeGroups", "OperatePrivilegeGroup"})


class _Malformed:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _db_name(request: Any, metadata: dict[str, str]) -> str:
    return getattr(request, "db_name", "") or metadata.get("dbname", "") or "default"


def reply_code(response: Any, context: Any) -> str:
    """The call's outcome for metrics and logs: the Milvus code in the reply ("0" when fine) or
    the gRPC status name the servicer set."""
    code = None
    try:
        code = context.code()
    except Exception:  # noqa: BLE001 (older grpcio has no ServicerContext.code)
        pass
    if code is not None and code != grpc.StatusCode.OK:
        return code.name if isinstance(code, grpc.StatusCode) else str(code)
    status = response if isinstance(response, common_pb2.Status) else getattr(
        response, "status", None)
    if status is None:
        return "0"
    if status.code:
        return str(status.code)
    return "0" if status.error_code == 0 else f"legacy{status.error_code}"


class AccessInterceptor(grpc.ServerInterceptor):
    def __init__(self, store: CredentialStore | None, limits: Limits,
                 metrics: Any = None) -> None:
        self.store = store  # None: authentication off, every caller acts as root
        self.limits = limits
        self.metrics = metrics

    def intercept_service(self, continuation: Callable, details: Any) -> Any:
        handler = continuation(details)
        path = details.method
        method = path[len(_PREFIX):] if path.startswith(_PREFIX) else path
        metadata = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        user = "root"
        if self.store is not None:
            start = time.perf_counter()
            try:
                user = self.store.authenticate(metadata.get("authorization"))
            except AuthError as e:
                self._record(method, "-", "UNAUTHENTICATED", time.perf_counter() - start)
                return self._refuse(handler, grpc.StatusCode.UNAUTHENTICATED, e.message)
        if handler is None:
            return None  # unknown method: gRPC answers UNIMPLEMENTED
        if handler.unary_unary is None:
            return handler  # streaming RPCs: every one answers UNIMPLEMENTED
        return grpc.unary_unary_rpc_method_handler(
            self._behavior(method, handler.unary_unary, user, metadata),
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer)

    @staticmethod
    def _refuse(handler: Any, code: grpc.StatusCode, message: str) -> Any:
        def abort(request: Any, context: Any) -> Any:
            context.abort(code, message)

        if handler is None or handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(abort)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(abort)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(abort)
        return grpc.stream_stream_rpc_method_handler(abort)

    def _behavior(self, method: str, inner: Callable, user: str,
                  metadata: dict[str, str]) -> Callable:
        def behavior(request: Any, context: Any) -> Any:
            start = time.perf_counter()
            response = None
            try:
                response = self._serve(method, inner, user, metadata, request, context)
                return response
            finally:
                self._record(method, user, reply_code(response, context),
                             time.perf_counter() - start, response)

        return behavior

    def _serve(self, method: str, inner: Callable, user: str, metadata: dict[str, str],
               request: Any, context: Any) -> Any:
        if method in SERVICE.methods_by_name:
            cls = output_class(method)
        else:  # pragma: no cover (only MilvusService is registered)
            return inner(request, context)
        if isinstance(request, _Malformed):
            return reply(cls, status_for(InvalidArgument(
                f"malformed {method} request: the bytes are not a "
                f"{SERVICE.methods_by_name[method].input_type.name} message "
                f"({type(request.error).__name__})")))
        try:
            self.limits.check(method, request)
        except InvalidArgument as e:
            return reply(cls, status_for(e))
        if self.store is not None:
            denied = self._denied(method, user, request, metadata)
            if denied is not None:
                return reply(cls, denied)
        token = CURRENT_USER.set(user)
        try:
            return inner(request, context)
        finally:
            CURRENT_USER.reset(token)

    def _denied(self, method: str, user: str, request: Any,
                metadata: dict[str, str]) -> common_pb2.Status | None:
        if method in OPEN or method in SELF_CHECKED:
            return None
        privilege, field = PRIVILEGES.get(method, (method, ""))
        db = _db_name(request, metadata)
        names: list[str] = ["*"]
        if field:
            value = getattr(request, field, "")
            names = list(value) if not isinstance(value, str) else [value or "*"]
        for name in names or ["*"]:
            if not self.store.allowed(user, privilege, db, name):
                where = f"collection {name}" if name != "*" else "the server"
                return common_pb2.Status(
                    code=PERMISSION_DENIED, error_code=common_pb2.PermissionDenied,
                    reason=f"Privilege{privilege}: permission deny to {user} on {where} in the "
                           f"`{db}` database (grant it with grant_privilege)")
        return None

    def _record(self, method: str, user: str, code: str, seconds: float,
                response: Any = None) -> None:
        if self.metrics is not None:
            self.metrics.observe(method, code, seconds, response)
        if request_log.isEnabledFor(logging.INFO):
            request_log.info(json.dumps({"ts": round(time.time(), 3), "method": method,
                                         "user": user, "status": code,
                                         "ms": round(seconds * 1000, 3)}))


def _lenient(deserializer: Callable | None) -> Callable | None:
    """The method's request decoder, answering :class:`_Malformed` instead of raising (grpc
    would otherwise end the call with a bare ``INTERNAL``)."""
    if deserializer is None:
        return None

    def decode(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as e:  # noqa: BLE001 (any decode failure is the caller's bytes)
            return _Malformed(e)

    return decode
