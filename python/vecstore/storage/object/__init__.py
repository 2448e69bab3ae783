"""The object store: whole blobs under '/'-separated keys, published atomically.

Protocol and key rules in :mod:`.protocol`; the local directory implementation
:class:`LocalObjectStore` in :mod:`.local` (an S3-compatible store follows for the cluster wiring,
same protocol).
"""

from __future__ import annotations

from vecstore.storage.object.local import LocalObjectStore, LocalObjectWriter
from vecstore.storage.object.protocol import (
    MAX_KEY_BYTES,
    ObjectMeta,
    ObjectStore,
    ObjectWriter,
    SupportsLocalPath,
    check_key,
    check_prefix,
)

__all__ = [
    "MAX_KEY_BYTES",
    "LocalObjectStore",
    "LocalObjectWriter",
    "ObjectMeta",
    "ObjectStore",
    "ObjectWriter",
    "SupportsLocalPath",
    "check_key",
    "check_prefix",
]
