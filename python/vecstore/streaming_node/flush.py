"""Flush: turn a growing segment's snapshot into a sealed segment bundle in the object store.

The bundle is written by :class:`~vecstore.storage.segment.SegmentWriter` (every data file first,
the manifest last, each published atomically), so a crash mid-flush leaves no segment. The caller
commits the returned manifest in the meta store — the commit point — and only then may the WAL
before the flushed rows be truncated.
"""

from __future__ import annotations

from vecstore.errors import InvalidArgument
from vecstore.storage.object import ObjectStore
from vecstore.storage.segment import Manifest, SegmentWriter
from vecstore.streaming_node.growing import GrowingSegment, GrowingView


def flush(segment: GrowingSegment, view: GrowingView, store: ObjectStore, prefix: str,
          *, schema_version: int) -> Manifest:
    """Writes ``view`` (a snapshot of ``segment``) as a sealed segment under ``prefix``."""
    if view.rows == 0:
        raise InvalidArgument("nothing to flush: the growing segment has no rows")
    vectors = {name: (arr, segment.specs[name].kind) for name, arr in view.vectors.items()}
    return SegmentWriter(store, prefix).write(
        view.pks, view.timestamps, vectors, view.scalars, schema_version=schema_version
    )
