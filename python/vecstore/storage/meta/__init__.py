"""The meta store: small keyed metadata with revisions, etcd-style transactions and watches.

Protocol and value types in :mod:`.protocol`; the embedded implementation
:class:`SqliteMetaStore` in :mod:`.sqlite` (etcd follows for the cluster wiring, same protocol).
"""

from __future__ import annotations

from vecstore.storage.meta.protocol import (
    EVENT_DELETE,
    EVENT_PUT,
    MAX_KEY_BYTES,
    Compacted,
    Compare,
    Delete,
    DeletePrefix,
    DeleteResponse,
    Get,
    GetResponse,
    KeyValue,
    MetaStore,
    Op,
    OpResponse,
    Put,
    PutResponse,
    TxnResult,
    Watch,
    WatchEvent,
)
from vecstore.storage.meta.sqlite import SqliteMetaStore, SqliteWatch

__all__ = [
    "EVENT_DELETE",
    "EVENT_PUT",
    "MAX_KEY_BYTES",
    "Compacted",
    "Compare",
    "Delete",
    "DeletePrefix",
    "DeleteResponse",
    "Get",
    "GetResponse",
    "KeyValue",
    "MetaStore",
    "Op",
    "OpResponse",
    "Put",
    "PutResponse",
    "SqliteMetaStore",
    "SqliteWatch",
    "TxnResult",
    "Watch",
    "WatchEvent",
]
