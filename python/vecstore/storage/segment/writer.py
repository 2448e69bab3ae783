"""Writing immutable segments through an ObjectStore (delete logs: :mod:`.delta`).

:meth:`SegmentWriter.write` validates every input first (nothing is written if any check fails),
encodes the small files (scalars, statistics), then puts the vector files, ``scalars.arrow``,
``stats/pk`` and, last, ``manifest``. Each put is atomic and durable (the store's contract), and
the manifest is published with ``put_if_absent``: its existence marks a complete bundle, so a
crash leaves either a finished segment or files without a manifest that no reader opens and that
the caller's meta store never references (the coordinator's garbage collection removes them). An
existing segment is never replaced. If a put fails, the files already written are removed (best
effort) and the StorageError is raised.

One writer per prefix: segment ids come from the coordinator. Two writers racing on one prefix
cannot publish two manifests, but the loser may have replaced data files of the winner, which its
readers then report as a checksum failure (never a silent wrong answer).

Memory: a vector file is written with :meth:`ObjectStore.put_parts` as its NPY header followed by
the caller's rows, straight from the caller's array (no assembled copy; a copy only where
:func:`~.columns.as_vectors` must convert: dtype, byte order, C order). A field may also be given
as a :class:`~.vector_file.WrittenVectorFile`, a file the caller built batch by batch under this
prefix (:class:`~.vector_file.VectorFileBuilder`): the writer then only records it, and owns it
from then on (a failed write removes it with the rest).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from vecstore import _core
from vecstore.errors import InvalidArgument
from vecstore.storage.object.protocol import ObjectStore, check_key
from vecstore.storage.segment import bloom, npy
from vecstore.storage.segment.columns import (
    as_pk_array,
    as_scalar_table,
    as_timestamps,
    as_vectors,
)
from vecstore.storage.segment.manifest import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MANIFEST_NAME,
    PK_STATS_NAME,
    SCALARS_NAME,
    TS_COLUMN,
    FileEntry,
    Manifest,
    ScalarColumn,
    VectorField,
    encode_manifest,
    valid_field_name,
    vector_file_name,
)
from vecstore.storage.segment.vector_file import WrittenVectorFile

logger = logging.getLogger(__name__)

COMPRESSIONS = (None, "zstd", "lz4")


def check_store(store: object, *methods: str) -> None:
    """InvalidArgument unless ``store`` has the ObjectStore methods named."""
    missing = [m for m in methods if not callable(getattr(store, m, None))]
    if missing:
        raise InvalidArgument(
            f"store must be an ObjectStore (e.g. LocalObjectStore(dir)); {type(store).__name__} "
            f"has no {', '.join(missing)}"
        )


def normalize_prefix(prefix: object) -> str:
    """``prefix`` without a trailing '/', checked as an object key (InvalidArgument if bad)."""
    if isinstance(prefix, str) and prefix.endswith("/"):
        prefix = prefix[:-1]
    return check_key(prefix)


def index_prefix(prefix: str, field: str, build: str | int) -> str:
    """The folder reserved for index files of ``field``'s build ``build`` (ends with '/')."""
    if not valid_field_name(field):
        raise InvalidArgument(f"index field {field!r} is not a valid field name")
    if isinstance(build, bool) or not isinstance(build, (str, int)):
        raise InvalidArgument(f"index build must be a str or int, got {type(build).__name__}")
    key = check_key(f"{normalize_prefix(prefix)}/index/{field}/{build}")
    return key + "/"


def ipc_file(table: pa.Table, compression: str | None) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_file(sink, table.schema, options=options) as w:
        w.write_table(table)
    return sink.getvalue()


class _Publisher:
    """Puts files under a prefix, remembering them so that a failure can remove them again."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store, self.prefix = store, prefix
        self.written: list[str] = []

    def put(self, name: str, data) -> FileEntry:
        crc = _core.crc32c(data)
        size = memoryview(data).nbytes
        key = f"{self.prefix}/{name}"
        self.store.put(key, data)
        self.written.append(key)
        return FileEntry(name, size, crc)

    def put_parts(self, name: str, parts: list) -> FileEntry:
        """One file from several buffers, never joined; the CRC runs over the parts in order."""
        crc = size = 0
        for part in parts:
            crc = _core.crc32c(part, crc)
            size += memoryview(part).nbytes
        key = f"{self.prefix}/{name}"
        self.store.put_parts(key, parts)
        self.written.append(key)
        return FileEntry(name, size, crc)

    def undo(self, keys: list[str] | None = None) -> None:
        for key in self.written if keys is None else keys:
            try:
                self.store.delete(key)
            except Exception:  # already failing: report the first error, not this one
                logger.warning("could not remove %s after a failed segment write", key)


class SegmentWriter:
    """Writes one immutable segment under ``prefix`` (e.g. ``segments/<coll>/<part>/<seg>``)."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        check_store(store, "put", "put_parts", "put_if_absent", "exists", "delete")
        self._store = store
        self._prefix = normalize_prefix(prefix)

    @property
    def prefix(self) -> str:
        return self._prefix

    def write(
        self,
        pk: object,
        timestamps: object,
        vectors: Mapping[str, object] | None = None,
        scalars: pa.Table | Mapping[str, object] | None = None,
        *,
        schema_version: int,
        pk_field: str = "pk",
        bloom_fpr: float = bloom.DEFAULT_FPR,
        scalar_compression: str | None = None,
    ) -> Manifest:
        """Writes the segment and returns its manifest.

        Args:
            pk: primary keys, int64 or str (see :mod:`.columns`); duplicates allowed.
            timestamps: one uint64-compatible timestamp per row.
            vectors: field name -> array, or (array, kind) with kind float32, float16, bfloat16,
                int8 or binary (uint8, 8 bits per byte; dim counts bits), or a
                :class:`~.vector_file.WrittenVectorFile` built under this prefix (then owned by
                this call: removed if the write fails).
            scalars: more columns (pyarrow Table or dict of arrays), stored as given.
            schema_version: the collection schema version the rows follow (>= 0).
            pk_field: name of the primary-key column in ``scalars.arrow``.
            bloom_fpr: false-positive target of the primary-key bloom filter, in (0, 0.5].
            scalar_compression: None (default: the Arrow file maps zero-copy), "zstd" or "lz4"
                (smaller; columns are decompressed when read).

        Raises:
            InvalidArgument: a bad input or a segment already at the prefix; nothing written
                (and the WrittenVectorFiles given are removed, unless a segment is there).
            StorageError: a write failed; files already written were removed (best effort).
        """
        try:
            return self._write(pk, timestamps, vectors, scalars, schema_version=schema_version,
                               pk_field=pk_field, bloom_fpr=bloom_fpr,
                               scalar_compression=scalar_compression)
        except BaseException:
            given = vectors.values() if isinstance(vectors, Mapping) else ()
            written = [v for v in given if isinstance(v, WrittenVectorFile)]
            if written and not self._store.exists(f"{self._prefix}/{MANIFEST_NAME}"):
                _Publisher(self._store, self._prefix).undo(
                    [f"{self._prefix}/{w.entry.name}" for w in written])
            raise

    def _write(
        self,
        pk: object,
        timestamps: object,
        vectors: Mapping[str, object] | None,
        scalars: pa.Table | Mapping[str, object] | None,
        *,
        schema_version: int,
        pk_field: str,
        bloom_fpr: float,
        scalar_compression: str | None,
    ) -> Manifest:
        if isinstance(schema_version, bool) or not isinstance(schema_version, int):
            raise InvalidArgument(f"schema_version must be an int, got {schema_version!r}")
        if not 0 <= schema_version < 1 << 63:
            raise InvalidArgument(f"schema_version must be >= 0, got {schema_version}")
        if not valid_field_name(pk_field):
            raise InvalidArgument(f"pk_field {pk_field!r} is not a valid field name")
        if (
            isinstance(bloom_fpr, bool)
            or not isinstance(bloom_fpr, (int, float))
            or not (0 < bloom_fpr <= 0.5 and math.isfinite(bloom_fpr))
        ):
            raise InvalidArgument(f"bloom_fpr must be a number in (0, 0.5], got {bloom_fpr!r}")
        if scalar_compression not in COMPRESSIONS:
            raise InvalidArgument(
                f"scalar_compression must be one of {COMPRESSIONS}, got {scalar_compression!r}"
            )
        keys, pk_type = as_pk_array(pk, "pk")
        rows = len(keys)
        if rows == 0:
            raise InvalidArgument("pk is empty; a segment needs at least one row")
        ts = as_timestamps(timestamps)
        if len(ts) != rows:
            raise InvalidArgument(
                f"timestamps has {len(ts)} values but pk has {rows}; one timestamp per row"
            )
        if vectors is None:
            vectors = {}
        if not isinstance(vectors, Mapping):
            raise InvalidArgument(
                f"vectors must be a dict of field -> array, got {type(vectors).__name__}"
            )
        vec: dict[str, tuple[np.ndarray, str, int]] = {}
        prewritten: dict[str, WrittenVectorFile] = {}
        for field, value in vectors.items():
            if field == pk_field:
                raise InvalidArgument(f"vector field {field!r} has the primary key's name")
            if isinstance(value, WrittenVectorFile):
                prewritten[field] = _check_written(value, field, rows, self._prefix)
            else:
                vec[field] = as_vectors(field, value, rows)
        extra = as_scalar_table(scalars, rows, {pk_field, *vec, *prewritten})

        manifest_key = f"{self._prefix}/{MANIFEST_NAME}"
        if self._store.exists(manifest_key):
            raise InvalidArgument(
                f"a segment already exists at {self._prefix!r}; segments are immutable: write "
                "to a new prefix"
            )

        columns = {pk_field: keys, TS_COLUMN: pa.array(ts, type=pa.uint64())}
        if extra is not None:
            columns.update(zip(extra.column_names, extra.columns))
        table = pa.table(columns)
        try:
            scalars_file = ipc_file(table, scalar_compression)
        except (pa.ArrowException, ValueError, TypeError) as e:
            raise InvalidArgument(f"scalar columns cannot be stored in Arrow IPC: {e}") from None
        stats_file = bloom.build_pk_stats(keys, pk_type, float(bloom_fpr))

        out = _Publisher(self._store, self._prefix)
        out.written.extend(f"{self._prefix}/{w.entry.name}" for w in prewritten.values())
        try:
            entries = []
            fields = []
            for field in vectors:
                if field in prewritten:
                    w = prewritten[field]
                    entries.append(w.entry)
                    fields.append(VectorField(field, w.kind, w.dim, w.entry.name))
                    continue
                arr, kind, dim = vec[field]
                name = vector_file_name(field)
                header = npy.build_header(arr.dtype.str, arr.shape)
                entries.append(out.put_parts(name, [header, arr.reshape(-1).view(np.uint8)]))
                fields.append(VectorField(field, kind, dim, name))
            entries.append(out.put(SCALARS_NAME, scalars_file))
            entries.append(out.put(PK_STATS_NAME, stats_file))
            manifest = Manifest(
                format_major=FORMAT_MAJOR,
                format_minor=FORMAT_MINOR,
                rows=rows,
                ts_min=int(ts.min()),
                ts_max=int(ts.max()),
                schema_version=schema_version,
                pk_field=pk_field,
                pk_type=pk_type,
                vector_fields=tuple(fields),
                scalar_columns=tuple(ScalarColumn(f.name, str(f.type)) for f in table.schema),
                files=tuple(sorted(entries, key=lambda e: e.name)),
            )
            published = self._store.put_if_absent(manifest_key, encode_manifest(manifest))
        except BaseException:
            out.undo()
            raise
        if not published:
            # The data files under the prefix are shared with the winner now: leave them.
            raise InvalidArgument(
                f"another writer published a segment at {self._prefix!r} meanwhile; segment "
                "prefixes must be written by one writer"
            )
        return manifest


def _check_written(w: WrittenVectorFile, field: str, rows: int, prefix: str) -> WrittenVectorFile:
    if w.field != field or w.prefix != prefix or w.entry.name != vector_file_name(field):
        raise InvalidArgument(
            f"vectors[{field!r}] is the vector file of field {w.field!r} under {w.prefix!r}; give "
            f"each field the file built for it under this segment's prefix {prefix!r}"
        )
    if w.rows != rows:
        raise InvalidArgument(
            f"vectors[{field!r}] has {w.rows} rows but pk has {rows}; every column needs one "
            "value per row"
        )
    return w
