"""Flush: turn a growing segment's snapshot into a sealed segment bundle in the object store.

Hidden columns (``$meta``, the dynamic field; ``$partition``) are stored as ``#meta`` and
``#partition``: the segment format reserves ``$`` names, and ``#`` cannot start a Milvus field
name, so the two never collide. :func:`stored_name` / :func:`loaded_name` convert.

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


def stored_name(name: str) -> str:
    return "#" + name[1:] if name.startswith("$") else name


def loaded_name(name: str) -> str:
    return "$" + name[1:] if name.startswith("#") else name


def flush(segment: GrowingSegment, view: GrowingView, store: ObjectStore, prefix: str,
          *, schema_version: int) -> Manifest:
    """Writes ``view`` (a snapshot of ``segment``) as a sealed segment under ``prefix``."""
    if view.rows == 0:
        raise InvalidArgument("nothing to flush: the growing segment has no rows")
    vectors = {name: (arr, segment.specs[name].kind) for name, arr in view.vectors.items()}
    scalars = view.scalars
    if scalars is not None:
        scalars = scalars.rename_columns([stored_name(n) for n in scalars.column_names])
    return SegmentWriter(store, prefix).write(
        view.pks, view.timestamps, vectors, scalars, schema_version=schema_version
    )
