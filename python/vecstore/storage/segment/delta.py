"""Delete logs: ``delta/<seq>.arrow`` files added to a sealed segment, described by DeltaInfo.

A delete log is an Arrow IPC file with columns ``pk`` (the segment's key type) and ``ts``
(uint64), one row per delete. The manifest is immutable, so :func:`write_delete_log` returns a
:class:`DeltaInfo` (seq, rows, size, CRC32C, timestamp range) that the caller commits in the meta
store with the segment; readers pass the committed DeltaInfos to ``Segment.open(deltas=...)``,
which checks each file's size at open and its checksum before :meth:`Segment.deletes` reads it.
A log written by a call whose DeltaInfo was never committed is never read.

Files are claimed with ``put_if_absent``: never replaced, and concurrent writers get distinct
numbers. Bad input raises InvalidArgument before anything is written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vecstore import _core
from vecstore.errors import CorruptionError, InvalidArgument, StorageError
from vecstore.storage.object.protocol import ObjectStore
from vecstore.storage.segment.columns import as_pk_array, as_timestamps
from vecstore.storage.segment.files import SegmentFile, check_key_column, read_ipc
from vecstore.storage.segment.manifest import MANIFEST_NAME, U64_MAX, _Bad, _int, decode_manifest
from vecstore.storage.segment.writer import check_store, ipc_file, normalize_prefix

DELTA_PK, DELTA_TS = "pk", "ts"
_ATTEMPTS = 16
_FROZEN: dict = {"frozen": True, **({"slots": True} if sys.version_info >= (3, 10) else {})}


@dataclass(**_FROZEN)
class DeltaInfo:
    """A delete log ``delta/<seq>.arrow`` of one segment, as committed in the meta store.

    The manifest is immutable, so the writer of a delete log returns this and the caller commits
    it (``to_dict()`` is JSON-ready) next to the segment's entry; readers pass it back to
    :meth:`Segment.open` so the file's size and checksum are checked like the manifest's files.
    """

    seq: int
    rows: int
    size: int
    crc32c: int
    ts_min: int
    ts_max: int

    @property
    def name(self) -> str:
        return f"delta/{self.seq}.arrow"

    def to_dict(self) -> dict[str, int]:
        return {
            "seq": self.seq,
            "rows": self.rows,
            "size": self.size,
            "crc32c": self.crc32c,
            "ts_min": self.ts_min,
            "ts_max": self.ts_max,
        }

    @classmethod
    def from_dict(cls, d: object) -> DeltaInfo:
        """The inverse of :meth:`to_dict`; InvalidArgument if ``d`` is not such a dict."""
        try:
            seq = _int(d, "seq", 0, (1 << 63) - 1)
            rows = _int(d, "rows", 1, (1 << 63) - 1)
            size = _int(d, "size", 1, 1 << 62)
            crc = _int(d, "crc32c", 0, 0xFFFFFFFF)
            ts_min = _int(d, "ts_min", 0, U64_MAX)
            ts_max = _int(d, "ts_max", ts_min, U64_MAX)
        except _Bad as e:
            raise InvalidArgument(f"not a delete log description ({e}): {d!r:.200}") from None
        return cls(seq, rows, size, crc, ts_min, ts_max)


def as_deltas(deltas: object) -> tuple[DeltaInfo, ...]:
    """``deltas`` (DeltaInfo or their dicts) as a tuple; InvalidArgument if malformed."""
    if isinstance(deltas, (str, bytes, dict)) or not isinstance(deltas, Iterable):
        raise InvalidArgument(
            f"deltas must be a sequence of DeltaInfo, got {type(deltas).__name__}"
        )
    out = tuple(d if isinstance(d, DeltaInfo) else DeltaInfo.from_dict(d) for d in deltas)
    if len({d.seq for d in out}) != len(out):
        raise InvalidArgument("deltas lists the same delete log twice")
    return out


def _next_seq(store: ObjectStore, prefix: str) -> int:
    seqs = [-1]
    for key in store.list(f"{prefix}/delta/"):
        stem = key.rsplit("/", 1)[-1].removesuffix(".arrow")
        if stem.isdigit():
            seqs.append(int(stem))
    return max(seqs) + 1


def write_delete_log(
    store: ObjectStore,
    prefix: str,
    pk: object,
    timestamps: object,
    *,
    seq: int | None = None,
) -> DeltaInfo:
    """Adds a delete log (pk, ts per deleted row) to the sealed segment at ``prefix``.

    ``seq`` numbers the file (``delta/<seq>.arrow``); None picks one past the highest present.
    Files are never replaced: an explicit ``seq`` already taken raises InvalidArgument. Returns the
    DeltaInfo to commit in the meta store and to pass to ``Segment.open(deltas=...)``; a file
    written by a call whose DeltaInfo was never committed is ignored by readers.

    Raises NotFoundError if no segment is at ``prefix``, CorruptionError if its manifest is bad,
    InvalidArgument for bad inputs (nothing written), StorageError if the write fails.
    """
    check_store(store, "get", "put_if_absent", "list")
    prefix = normalize_prefix(prefix)
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        raise InvalidArgument(f"seq must be an int >= 0 or None, got {seq!r}")
    keys, pk_type = as_pk_array(pk, "pk")
    if len(keys) == 0:
        raise InvalidArgument("pk is empty; a delete log needs at least one row")
    ts = as_timestamps(timestamps)
    if len(ts) != len(keys):
        raise InvalidArgument(
            f"timestamps has {len(ts)} values but pk has {len(keys)}; one timestamp per row"
        )
    key = f"{prefix}/{MANIFEST_NAME}"
    manifest = decode_manifest(store.get(key), key)
    if pk_type != manifest.pk_type:
        raise InvalidArgument(
            f"pk holds {pk_type} keys but the segment's primary key is {manifest.pk_type}"
        )
    data = ipc_file(pa.table({DELTA_PK: keys, DELTA_TS: pa.array(ts, type=pa.uint64())}), None)
    crc = _core.crc32c(data)
    for _ in range(_ATTEMPTS):
        n = _next_seq(store, prefix) if seq is None else seq
        info = DeltaInfo(n, len(keys), data.size, crc, int(ts.min()), int(ts.max()))
        if store.put_if_absent(f"{prefix}/{info.name}", data):
            return info
        if seq is not None:
            raise InvalidArgument(f"delete log {info.name} already exists under {prefix!r}")
    raise StorageError(
        f"could not claim a delete log number under {prefix!r} after {_ATTEMPTS} tries "
        "(many concurrent writers?)"
    )


def read_deletes(
    infos: tuple[DeltaInfo, ...], files: list[SegmentFile], pk_type: str
) -> tuple[pa.Array, np.ndarray]:
    """(pk, ts) of the verified delete logs ``files``, described by ``infos``, concatenated."""
    pk_parts: list[pa.Array] = []
    ts_parts: list[np.ndarray] = []
    for info, file in zip(infos, files):
        table = read_ipc(file)
        if table.column_names != [DELTA_PK, DELTA_TS] or table.num_rows != info.rows:
            raise CorruptionError(
                f"delete log {file.key} holds {table.column_names} x {table.num_rows} rows; "
                f"expected [{DELTA_PK!r}, {DELTA_TS!r}] x {info.rows}"
            )
        check_key_column(table.column(0), pk_type, file.key)
        ts_col = table.column(1)
        if ts_col.type != pa.uint64() or ts_col.null_count:
            raise CorruptionError(f"delete log {file.key}: bad ts column")
        ts = ts_col.to_numpy()
        if int(ts.min()) != info.ts_min or int(ts.max()) != info.ts_max:
            raise CorruptionError(f"delete log {file.key}: timestamps differ from its DeltaInfo")
        pk_parts.extend(table.column(0).chunks)
        ts_parts.append(ts)
    if not pk_parts:
        empty = pa.array([], type=pa.int64() if pk_type == "int64" else pa.string())
        return empty, np.zeros(0, dtype=np.uint64)
    if len({p.type for p in pk_parts}) > 1:
        pk_parts = [p.cast(pa.large_string()) for p in pk_parts]
    pk = pk_parts[0] if len(pk_parts) == 1 else pa.concat_arrays(pk_parts)
    ts_all = ts_parts[0] if len(ts_parts) == 1 else np.concatenate(ts_parts)
    return pk, ts_all
