"""vecstore: a vector database for Python with Milvus's API and architecture and a C++/SIMD core.

The embedded database: :class:`MilvusClient` (pymilvus's API) with :class:`CollectionSchema`,
:class:`FieldSchema` and :class:`DataType`. The native core's low-level API:

- :func:`cdist` — exact distance matrix between two sets of vectors;
- :func:`knn` — exact k-nearest-neighbour search with an optional allow-set (filter);
- :func:`simd_level` / :func:`set_simd_level` — which SIMD kernels run (``VECSTORE_SIMD`` env var);
- :class:`VecstoreError` and its subclasses in :mod:`vecstore.errors`.
"""

from __future__ import annotations

import os

from vecstore import _core  # noqa: F401  (vecstore._core: levels, CPU features)
from vecstore.compute import cdist, knn, set_simd_level, simd_level
from vecstore.errors import (
    Cancelled,
    CorruptionError,
    InternalError,
    InvalidArgument,
    NotFoundError,
    StorageError,
    VecstoreError,
)

__version__ = "0.1.0"

if os.environ.get("VECSTORE_SIMD"):
    # Applied at import so that every kernel of the process uses the requested level; an unknown or
    # unavailable level fails loudly rather than silently running something else.
    set_simd_level(os.environ["VECSTORE_SIMD"])

# The database layer (schema, client, roles) pulls in pyarrow and the storage stack; scripts
# that only use cdist/knn should not pay for that at import, so these names load on first use.
_LAZY = {
    "MilvusClient": "vecstore.client",
    "AnnSearchRequest": "vecstore.client",
    "RRFRanker": "vecstore.client",
    "WeightedRanker": "vecstore.client",
    "CollectionSchema": "vecstore.schema",
    "DataType": "vecstore.schema",
    "FieldSchema": "vecstore.schema",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vecstore' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AnnSearchRequest",
    "Cancelled",
    "CollectionSchema",
    "DataType",
    "FieldSchema",
    "MilvusClient",
    "RRFRanker",
    "WeightedRanker",
    "CorruptionError",
    "InternalError",
    "InvalidArgument",
    "NotFoundError",
    "StorageError",
    "VecstoreError",
    "__version__",
    "cdist",
    "knn",
    "set_simd_level",
    "simd_level",
]

del os
