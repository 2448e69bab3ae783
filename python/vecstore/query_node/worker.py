"""A query-node worker process: ``python -m vecstore.query_node.worker --data DIR --socket PATH``.

Serves vector search over the sealed segments the server assigns it (see
:mod:`vecstore.query_node.rpc` for the methods), on a Unix-domain socket. It opens the SAME
committed segment and index files as the server, mapped read-only from the data directory's object
store, and never takes the directory's lock nor writes anything under it: the server process stays
the only writer. It holds no MVCC state either: each search carries its allow mask (visibility,
deletes and filter already applied by the caller), so the worker only runs the kernels or the
attached index.

The worker exits when its parent (``--parent``) goes away, so a killed server leaves no orphan;
SIGTERM stops it at once (it holds nothing to flush).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from vecstore.errors import NotFoundError
from vecstore.query_node import rpc
from vecstore.transport.role_main import serve_role

log = logging.getLogger("vecstore.query_node.worker")


class WorkerNode:
    """The worker's segments, by prefix, and the RPC methods over them."""

    def __init__(self, data_dir: str) -> None:
        from vecstore.storage.object.local import LocalObjectStore

        self._store = LocalObjectStore(Path(data_dir) / "segments", create=False)
        self._mu = threading.Lock()
        self._segments: dict[str, Any] = {}

    def _segment(self, prefix: str) -> Any:
        with self._mu:
            got = self._segments.get(prefix)
        if got is None:
            raise NotFoundError(f"segment {prefix} is not loaded on query-node worker "
                                f"{os.getpid()}")
        return got

    # ---- methods ----------------------------------------------------------------------------

    def Heartbeat(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        with self._mu:
            return {"pid": os.getpid(), "segments": len(self._segments)}

    def Load(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        from vecstore.query_node.sealed import SealedSegment
        from vecstore.storage.segment import Segment

        prefix = str(header["prefix"])
        with self._mu:
            have = self._segments.get(prefix)
        if have is None:
            # No delete logs: the caller's allow masks carry visibility.
            have = SealedSegment(Segment.open(self._store, prefix))
            with self._mu:
                have = self._segments.setdefault(prefix, have)
            log.info("loaded %s (%d rows)", prefix, have.segment.rows)
        return {"rows": have.segment.rows}

    def Release(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        with self._mu:
            gone = [self._segments.pop(str(p), None) for p in header["prefixes"]]
        for s in gone:
            if s is not None:
                log.info("released %s", s.segment.prefix)
        return {}

    def Attach(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        from vecstore.index.segment_index import SegmentIndex
        from vecstore.index.spec import IndexSpec
        from vecstore.storage.segment.index_file import IndexFileRef, map_index_file

        sealed = self._segment(str(header["prefix"]))
        field = str(header["field"])
        if header.get("ref") is None:
            sealed.attach_index(field, None)
            return {}
        ref = IndexFileRef.from_dict(header["ref"])
        spec = IndexSpec.from_fingerprint(header["fingerprint"])
        buffer = map_index_file(self._store, sealed.segment.prefix, ref)
        sealed.attach_index(field, SegmentIndex(spec, buffer, sealed.segment.vectors(field)))
        log.info("attached index %s of %s", ref.name, sealed.segment.prefix)
        return {}

    def Search(self, header: dict, arrays: dict) -> tuple[dict, dict]:  # noqa: N802
        sealed = self._segment(str(header["prefix"]))
        rows = sealed.segment.rows
        if int(header["rows"]) != rows:
            raise ValueError(f"segment {header['prefix']} has {rows} rows, not {header['rows']}")
        packed = arrays.get("packed")
        allow = None
        if packed is not None:
            allow = np.unpackbits(packed, count=rows, bitorder="little").view(bool)
        params = header.get("params")
        got, dist = sealed.knn_rows(str(header["field"]), arrays["queries"], int(header["k"]),
                                    str(header["metric"]), allow, params=params, packed=packed)
        return {}, {"rows": np.asarray(got, dtype=np.int64),
                    "dist": np.asarray(dist, dtype=np.float32)}


def main(argv: list[str] | None = None) -> int:
    return serve_role("query-node", rpc.SERVICE, rpc.METHODS, WorkerNode, argv)


if __name__ == "__main__":
    sys.exit(main())
