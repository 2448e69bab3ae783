"""``vecstore.MilvusClient("http://host:port")``: pymilvus's client, connected to a server, with a
columnar insert path.

``vecstore.MilvusClient("./dir")`` on a directory that a running ``vecstore serve`` owns connects
to that server too: the server writes ``server.json`` (its address and pid) next to the
directory's ``LOCK``; the file counts only while its pid is alive and is the LOCK's owner.

A server (``vecstore serve`` or Milvus) speaks Milvus's gRPC protocol, which pymilvus implements;
vecstore does not re-implement the wire client. :class:`RemoteMilvusClient` is
``pymilvus.MilvusClient`` with every method kept, except that ``insert`` and ``upsert`` also take
the embedded client's columnar forms (a dict of numpy arrays or lists, a ``pyarrow.Table`` or
``RecordBatch``, a ``pandas.DataFrame``) and encode rows and columns with numpy
(:mod:`vecstore.client.remote_insert`) instead of pymilvus's per-value packing. The request goes
through pymilvus's own handler (``batch_insert``/``upsert`` with a prepared request): the same
channel, metadata, retries, status checks and session timestamps. pymilvus is an optional
dependency (``pip install 'vecstore[server]'``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from vecstore.errors import NotSupported


def connect(uri: str, *args: Any, **kwargs: Any) -> Any:
    try:
        import pymilvus  # noqa: F401
    except ImportError:
        raise NotSupported(
            f"uri {uri!r} names a server, and connecting to one needs pymilvus: "
            "pip install 'vecstore[server]' (or pass a local directory to run embedded)"
        ) from None
    return _client_class()(uri, *args, **kwargs)


_CLASS: Any = None


def _client_class() -> Any:
    """:class:`RemoteMilvusClient`, defined on first use (pymilvus is optional)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from pymilvus import MilvusClient
    from pymilvus.client.call_context import CallContext
    from pymilvus.client.types import OmitZeroDict

    from vecstore.client import remote_insert

    def _mutation(res: Any, count: str) -> dict[str, Any]:
        return OmitZeroDict({count: getattr(res, count), "ids": res.primary_keys,
                             "cost": res.cost})

    class RemoteMilvusClient(MilvusClient):
        """pymilvus's ``MilvusClient``; ``insert``/``upsert`` also take columns (see module)."""

        def _schema(self, collection_name: str, timeout: float | None,
                    context: CallContext) -> tuple[dict, int]:
            return self._get_connection()._get_schema(collection_name, timeout=timeout,
                                                      context=context)

        def insert(self, collection_name: str, data: Any, timeout: float | None = None,
                   partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
            if isinstance(data, list) and not data:
                return {"insert_count": 0, "ids": []}
            context = self._generate_call_context(**kwargs)
            schema, ts = self._schema(collection_name, timeout, context)
            request = remote_insert.insert_request(collection_name, data, schema,
                                                   partition_name, ts)
            res = self._get_connection().batch_insert(
                collection_name, [], partition_name, timeout=timeout, context=context,
                insert_param=request, schema=schema)
            return _mutation(res, "insert_count")

        def upsert(self, collection_name: str, data: Any, timeout: float | None = None,
                   partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
            if kwargs.get("field_ops"):
                return super().upsert(collection_name, data, timeout, partition_name, **kwargs)
            if isinstance(data, list) and not data:
                return {"upsert_count": 0, "ids": []}
            context = self._generate_call_context(**kwargs)
            schema, ts = self._schema(collection_name, timeout, context)
            request = remote_insert.upsert_request(
                collection_name, data, schema, partition_name,
                bool(kwargs.get("partial_update", False)), ts)
            res = self._get_connection().upsert(
                collection_name, [], partition_name, timeout=timeout, context=context,
                upsert_param=request, schema=schema)
            return _mutation(res, "upsert_count")

    RemoteMilvusClient.__module__ = __name__
    _CLASS = RemoteMilvusClient
    return _CLASS


def __getattr__(name: str) -> Any:
    if name == "RemoteMilvusClient":
        return _client_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def served_address(path: str) -> str | None:
    """The address of the live ``vecstore serve`` that owns directory ``path``, if any."""
    try:
        with open(os.path.join(path, "server.json")) as f:
            info = json.load(f)
        pid, address = int(info["pid"]), str(info["address"])
        with open(os.path.join(path, "LOCK")) as f:
            owner = json.loads(f.read() or "{}").get("pid")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or owner != pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return address
