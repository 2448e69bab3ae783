"""``vecstore.MilvusClient("http://host:port")``: pymilvus's client, connected to a server.

A server (``vecstore serve`` or Milvus) speaks Milvus's gRPC protocol, which pymilvus implements;
vecstore hands such URIs to ``pymilvus.MilvusClient`` rather than re-implementing the wire
client. pymilvus is an optional dependency (``pip install 'vecstore[server]'``).
"""

from __future__ import annotations

from typing import Any

from vecstore.errors import NotSupported


def connect(uri: str, *args: Any, **kwargs: Any) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise NotSupported(
            f"uri {uri!r} names a server, and connecting to one needs pymilvus: "
            "pip install 'vecstore[server]' (or pass a local directory to run embedded)"
        ) from None
    return MilvusClient(uri, *args, **kwargs)
