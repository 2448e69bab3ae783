"""Immutable segments: the sealed, columnar, memory-mapped form of a collection's rows.

A segment is a bundle of objects under one prefix (``segments/<collection>/<partition>/<segment>``)
in an :class:`~vecstore.storage.object.ObjectStore`::

    manifest                rows, timestamp range, schema + format version, size + CRC32C of files
    vec.<field>.npy         one NPY file per vector field, rows at a 64-byte aligned offset
    scalars.arrow           Arrow IPC file: primary key, $ts (uint64), scalar/JSON/array columns
    stats/pk                primary-key min/max and bloom filter (routes deletes)
    delta/<seq>.arrow       delete logs (pk, ts) added after sealing, described by DeltaInfo
    index/<field>/<build>/  a built vector index (image.bin; see index_file.py)

The byte-level specification, versions, compatibility rule and what readers verify are in
``docs/segment_format.md``. Writing: :class:`SegmentWriter` (manifest last, so a crash leaves no
segment) and :func:`write_delete_log`. Reading: :meth:`Segment.open`, which maps the files
(no copy, no decode) and never hands out data from a file whose checksum has not been verified.

Errors: bad arguments raise :class:`~vecstore.errors.InvalidArgument` before anything is written;
a missing segment :class:`~vecstore.errors.NotFoundError`; damaged or inconsistent files
:class:`~vecstore.errors.CorruptionError`; I/O failures :class:`~vecstore.errors.StorageError`.
"""

from __future__ import annotations

from vecstore.storage.segment.bloom import DEFAULT_FPR, PkStats
from vecstore.storage.segment.delta import DeltaInfo, write_delete_log
from vecstore.storage.segment.manifest import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    TS_COLUMN,
    VECTOR_KINDS,
    FileEntry,
    Manifest,
    ScalarColumn,
    VectorField,
)
from vecstore.storage.segment.reader import DEFAULT_VERIFY, VERIFY_MODES, Segment
from vecstore.storage.segment.writer import SegmentWriter, index_prefix

__all__ = [
    "DEFAULT_FPR",
    "DEFAULT_VERIFY",
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "TS_COLUMN",
    "VECTOR_KINDS",
    "VERIFY_MODES",
    "DeltaInfo",
    "FileEntry",
    "Manifest",
    "PkStats",
    "ScalarColumn",
    "Segment",
    "SegmentWriter",
    "VectorField",
    "index_prefix",
    "write_delete_log",
]
