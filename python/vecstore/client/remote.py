"""``vecstore.MilvusClient("http://host:port")``: pymilvus's client, connected to a server.

``vecstore.MilvusClient("./dir")`` on a directory that a running ``vecstore serve`` owns connects
to that server too: the server writes ``server.json`` (its address and pid) next to the
directory's ``LOCK``; the file counts only while its pid is alive and is the LOCK's owner.

A server (``vecstore serve`` or Milvus) speaks Milvus's gRPC protocol, which pymilvus implements;
vecstore hands such URIs to ``pymilvus.MilvusClient`` rather than re-implementing the wire
client. pymilvus is an optional dependency (``pip install 'vecstore[server]'``).
"""

from __future__ import annotations

import json
import os
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
