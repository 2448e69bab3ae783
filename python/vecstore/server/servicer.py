"""The MilvusService servicer: pymilvus's gRPC service over one embedded deployment.

:class:`Servicer` holds the embedded :class:`vecstore.client.MilvusClient` that owns the data
directory, and one view of it per database (a shallow copy with its own ``_db``: the views share
the deployment, so every request reaches the same roles). The database of a request is its
``db_name`` field, else the ``dbname`` metadata header pymilvus sends, else ``default``.

The RPCs live in the mixins by area (:mod:`.servicer_collections`, :mod:`.servicer_data`,
:mod:`.servicer_search`, users and roles in :mod:`.rbac`); each is wrapped by
:func:`vecstore.server.errors.guard`, so no exception escapes. Authentication, privileges and
limits are checked before a call gets here (:mod:`.access`). Every other MilvusService RPC
answers gRPC ``UNIMPLEMENTED`` with a message naming it (pymilvus reports that at once, without
retrying).

Thread safety: gRPC calls the servicer from its worker threads; the embedded client is safe to
share between threads, and the view table is guarded by a lock.
"""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from vecstore.server.auth import CredentialStore
from vecstore.server.errors import SERVICE, output_class
from vecstore.server.rbac import RbacRpcs
from vecstore.server.servicer_collections import CollectionRpcs
from vecstore.server.servicer_data import DataRpcs
from vecstore.server.servicer_search import IteratorTable, SearchRpcs


class Servicer(CollectionRpcs, DataRpcs, SearchRpcs, RbacRpcs,
               milvus_pb2_grpc.MilvusServiceServicer):
    def __init__(self, client: Any, auth: CredentialStore | None = None) -> None:
        self._base = client
        self._auth = auth if auth is not None else CredentialStore(client._dep.datadir.path)
        self._tso = client._dep.coordinator.tso
        self._views: dict[str, Any] = {client._db: client}
        self._mu = threading.Lock()
        self._iterators = IteratorTable()
        self._ids = itertools.count(1)

    def _next_identifier(self) -> int:
        with self._mu:
            return next(self._ids)

    @staticmethod
    def _db_name(request: Any, context: Any) -> str:
        name = getattr(request, "db_name", "")
        if not name and context is not None:
            for key, value in context.invocation_metadata() or ():
                if key == "dbname":
                    name = value
                    break
        return name or "default"

    def _view(self, request: Any, context: Any) -> Any:
        db = self._db_name(request, context)
        with self._mu:
            view = self._views.get(db)
            if view is None:
                view = copy.copy(self._base)
                view._db = db
                self._views[db] = view
        return view

    def _drop_view(self, db: str) -> None:
        with self._mu:
            if db != self._base._db:
                self._views.pop(db, None)


def _unimplemented(name: str) -> Any:
    cls = output_class(name)

    def method(self: Any, request: Any, context: Any) -> Any:
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details(f"vecstore serve does not implement {name} yet")
        return cls()

    method.__name__ = name
    return method


for _name in SERVICE.methods_by_name:
    if getattr(Servicer, _name) is getattr(milvus_pb2_grpc.MilvusServiceServicer, _name):
        setattr(Servicer, _name, _unimplemented(_name))
del _name
