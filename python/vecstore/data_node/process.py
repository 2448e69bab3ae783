"""A data-node process: ``python -m vecstore.data_node.process --data DIR --socket PATH``, which
runs the index builds and compaction merges the server hands it (``vecstore serve --data-nodes
N``; :mod:`vecstore.data_node.remote` is the server's side).

It maps committed segments read-only and writes only new files under the prefix each call names
(an index build's folder, a merge's new segment); the server commits them through the
coordinator, or removes them. A process killed mid-write leaves files no committed key names:
garbage the next open removes. It never takes the data directory's lock.

Methods of ``vecstore.DataNode`` (messages: :mod:`vecstore.transport.rpc`):

``Heartbeat``  {} -> {"pid", "running"}
``Build``      {"job", "prefix", "segment_id", "field", "fingerprint", "build"} -> {"ref"}: an
               IndexFileRef as a dict; CANCELLED-like INVALID_ARGUMENT "Cancelled" if cancelled
``Merge``      {"inputs": [prefix], "prefix", "snapshot"} + arrays ``del_pk``, ``del_ts`` ->
               {"rows", "bytes"} (rows 0: no row survived, nothing written)
``Cancel``     {"job"} -> {}: stops that build (an HNSW build polls the flag)
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from vecstore import _core
from vecstore.data_node.work import LocalWork
from vecstore.transport.role_main import serve_role

SERVICE = "vecstore.DataNode"
METHODS = ("Heartbeat", "Build", "Merge", "Cancel")

log = logging.getLogger("vecstore.data_node.process")


class DataNodeProcess:
    def __init__(self, data_dir: str) -> None:
        from vecstore.storage.object.local import LocalObjectStore

        self._store = LocalObjectStore(Path(data_dir) / "segments", create=False)
        self._work = LocalWork(self._store)
        self._mu = threading.Lock()
        self._cancels: dict[str, Any] = {}  # job -> CancelFlag of the build running it

    def Heartbeat(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        with self._mu:
            return {"pid": os.getpid(), "running": len(self._cancels)}

    def Build(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        from vecstore.index.spec import IndexSpec
        from vecstore.storage.segment import Segment

        job = str(header["job"])
        flag = _core.CancelFlag()
        with self._mu:
            self._cancels[job] = flag
        try:
            segment = Segment.open(self._store, str(header["prefix"]))
            spec = IndexSpec.from_fingerprint(str(header["fingerprint"]))
            ref = self._work.build_index(segment, int(header["segment_id"]),
                                         str(header["field"]), spec, int(header["build"]), flag)
        finally:
            with self._mu:
                self._cancels.pop(job, None)
        log.info("built %s of %s", ref.name, header["prefix"])
        return {"ref": ref.to_dict()}

    def Merge(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        from vecstore.storage.segment import Segment

        inputs = [Segment.open(self._store, str(p)) for p in header["inputs"]]
        out = self._work.merge(inputs, np.asarray(arrays["del_pk"]),
                               np.asarray(arrays["del_ts"]), int(header["snapshot"]),
                               str(header["prefix"]))
        if out is None:
            return {"rows": 0, "bytes": 0}
        log.info("merged %s into %s (%d rows)", header["inputs"], header["prefix"], out[0])
        return {"rows": out[0], "bytes": out[1]}

    def Cancel(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        with self._mu:
            flag = self._cancels.get(str(header["job"]))
        if flag is not None:
            flag.set()
        return {}

    def cancel_all(self) -> None:
        with self._mu:
            for flag in self._cancels.values():
                flag.set()


def main(argv: list[str] | None = None) -> int:
    return serve_role("data-node", SERVICE, METHODS, DataNodeProcess, argv,
                      on_stop=lambda node: node.cancel_all())


if __name__ == "__main__":
    sys.exit(main())
