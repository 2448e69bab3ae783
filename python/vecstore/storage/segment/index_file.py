"""Index files: one built index of one vector field of a sealed segment, ``index/<field>/<build>/
image.bin`` under the segment's prefix, described by an :class:`IndexFileRef`.

The image is whatever the engine serialises (``to_bytes()``: an HNSW graph, IVF lists; the
engines check their own layout and checksums when opened). Like a delete log it is added after
the segment was sealed, so the manifest does not list it: :func:`write_index_file` returns the
ref (size, CRC32C, the spec's fingerprint) that the caller commits in the meta store, and
:func:`map_index_file` maps the file only after checking its size and checksum against the
committed ref. A file whose ref was never committed is never opened (and is garbage at the next
open). Build numbers are never reused under one prefix, so a file is never replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vecstore import _core
from vecstore.errors import CorruptionError, InvalidArgument
from vecstore.storage.object import SupportsLocalPath
from vecstore.storage.object.protocol import ObjectStore
from vecstore.storage.segment.files import map_file
from vecstore.storage.segment.writer import index_prefix

IMAGE_NAME = "image.bin"


@dataclass(frozen=True)
class IndexFileRef:
    """A committed index file: which segment and field, where, how big, its checksum, and the
    fingerprint of the :class:`~vecstore.index.spec.IndexSpec` it was built for."""

    segment_id: int
    field: str
    build: int
    name: str  # relative to the segment prefix: index/<field>/<build>/image.bin
    size: int
    crc32c: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment_id, "field": self.field, "build": self.build,
                "name": self.name, "size": self.size, "crc32c": self.crc32c,
                "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexFileRef:
        try:
            return cls(int(d["segment"]), str(d["field"]), int(d["build"]), str(d["name"]),
                       int(d["size"]), int(d["crc32c"]), str(d["fingerprint"]))
        except (KeyError, TypeError, ValueError):
            raise CorruptionError(f"not an index file description: {d!r:.200}") from None


def write_index_file(store: ObjectStore, prefix: str, segment_id: int, field: str, build: int,
                     image: bytes, fingerprint: str) -> IndexFileRef:
    """Writes ``image`` (atomically and durably) as build ``build`` of ``field``'s index in the
    segment at ``prefix``; returns the ref to commit."""
    if not image:
        raise InvalidArgument("an index image cannot be empty")
    folder = index_prefix(prefix, field, build)
    name = folder[len(prefix.rstrip("/")) + 1:] + IMAGE_NAME
    store.put(folder + IMAGE_NAME, image)
    return IndexFileRef(segment_id, field, build, name, len(image), _core.crc32c(image),
                        fingerprint)


def map_index_file(store: ObjectStore, prefix: str, ref: IndexFileRef) -> Any:
    """The index image of ``ref`` (mapped where the store is local), its size and checksum
    verified; CorruptionError if either differs from the ref."""
    key = f"{prefix.rstrip('/')}/{ref.name}"
    buffer = map_file(store, key, ref.size, isinstance(store, SupportsLocalPath))
    if _core.crc32c(buffer) != ref.crc32c:
        raise CorruptionError(f"index file {key} fails its checksum: the file is damaged; drop "
                              "and re-create the index to rebuild it")
    return buffer
