"""What a data node executes: index builds and compaction merges over committed segments, each
writing new files under a prefix nobody reads until the coordinator commits them.

:class:`LocalWork` runs them in this process (embedded mode); ``vecstore serve --data-nodes N``
runs them in data-node processes (:mod:`vecstore.data_node.remote`) through the same two
methods, so the deployment's flush/compaction/index code never knows where they ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecstore.data_node import compaction as merging
from vecstore.index.segment_index import build_image
from vecstore.index.spec import IndexSpec
from vecstore.storage.object import ObjectStore
from vecstore.storage.segment import Segment
from vecstore.storage.segment.index_file import IndexFileRef, write_index_file


class LocalWork:
    """Data-node work in this process, over ``store``."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def build_index(self, segment: Segment, segment_id: int, field: str, spec: IndexSpec,
                    build_id: int, cancel: Any = None) -> IndexFileRef:
        """Builds ``spec`` over the segment's ``field`` and writes it as build ``build_id``;
        returns the ref to commit. ``cancel``: a ``_core.CancelFlag`` (raises Cancelled)."""
        image = build_image(spec, segment.vectors(field), cancel=cancel)
        return write_index_file(self._store, segment.prefix, segment_id, field, build_id, image,
                                spec.fingerprint)

    def merge(self, inputs: list[Segment], del_pk: np.ndarray, del_ts: np.ndarray,
              snapshot: int, prefix: str) -> tuple[int, int] | None:
        """Writes the rows of ``inputs`` visible at ``snapshot`` under the deletes as a new
        segment at ``prefix``; returns its (rows, bytes), or None (nothing written) if no row
        survives."""
        merged = merging.merge(inputs, del_pk, del_ts, snapshot)
        if merged.rows == 0:
            return None
        manifest = merging.write(merged, self._store, prefix)
        return manifest.rows, merging.segment_bytes(manifest)

    def close(self) -> None:
        pass
