"""Opening immutable segments: files mapped, not copied or decoded; checksums always verified.

:meth:`Segment.open` reads and checks the manifest (its own CRC32C, format version), then, for
every file it lists and every delete log passed in ``deltas``: checks that it exists with the size
recorded, maps it (local stores: ``pyarrow.memory_map``, read-only and shared, no descriptor kept
open; other stores: ``get()`` into memory) and, for vector files, checks the NPY header
against the manifest (dtype, C order, shape, data offset a multiple of 64). Any fault raises
:class:`~vecstore.errors.CorruptionError` naming the file; a missing manifest raises
:class:`~vecstore.errors.NotFoundError`. No bytes are decoded beyond those headers.

Checksums (CRC32C of each whole file, recorded in the manifest or the DeltaInfo) are then verified
according to ``verify``:

- ``"background"`` (default): queued to the process-wide verification threads at open;
- ``"eager"``: all verified before :meth:`open` returns;
- ``"lazy"``: each file verified by the first call that needs it.

In every mode data is never handed out before its file passed: :meth:`Segment.vectors`,
:meth:`Segment.scalars`, :attr:`Segment.pk_stats`, :meth:`Segment.might_contain` and
:meth:`Segment.deletes` run or wait for their file's check and raise CorruptionError (naming the
file, the recorded and the computed checksum) if it failed, on every call.

Measured on 1M x 128 float32 (512 MB, warm page cache, 2-thread x86 VM): open takes 1.2-2 ms
(background), 0.8-1.5 ms (lazy), 82-94 ms (eager: the CRC of 530 MB); the first vectors() returns
80-87 ms after open in every mode. Background is the default: open within budget, checks start at
once and overlap other work (4 segments opened then searched: 309-437 ms, vs 500-523 eager and
489-522 lazy), and files nobody reads are still verified. Details in ``docs/segment_format.md``.

Returned arrays and tables are read-only views of the mapping (zero-copy); they stay valid after
:meth:`Segment.close`, which only stops pending checks and drops the segment's own references (the
mapping is released when the last view is gone). A Segment is safe to use from several threads.
Files are immutable: a store replaces objects, never rewrites them in place; truncating a mapped
file behind vecstore's back is outside the contract (the OS raises SIGBUS on access).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore.errors import CorruptionError, InvalidArgument, NotFoundError
from vecstore.storage.object.protocol import ObjectStore, SupportsLocalPath
from vecstore.storage.segment import npy
from vecstore.storage.segment.bloom import PkStats, parse_pk_stats
from vecstore.storage.segment.columns import as_pk_array
from vecstore.storage.segment.delta import DeltaInfo, as_deltas, read_deletes
from vecstore.storage.segment.files import SegmentFile, check_key_column, map_file, read_ipc
from vecstore.storage.segment.manifest import (
    MANIFEST_NAME,
    PK_STATS_NAME,
    SCALARS_NAME,
    TS_COLUMN,
    VECTOR_KINDS,
    Manifest,
    decode_manifest,
)
from vecstore.storage.segment.verify import FileCheck, submit
from vecstore.storage.segment.writer import check_store, index_prefix, normalize_prefix

VERIFY_MODES = ("background", "eager", "lazy")
DEFAULT_VERIFY = "background"

try:  # bfloat16 vectors are handed out as ml_dtypes.bfloat16 when it is installed
    import ml_dtypes

    _BFLOAT16: np.dtype | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    _BFLOAT16 = None


class Segment:
    """An opened immutable segment; create with :meth:`Segment.open`."""

    def __init__(self, *_: object) -> None:
        raise InvalidArgument("use Segment.open(store, prefix) to open a segment")

    @classmethod
    def open(
        cls,
        store: ObjectStore,
        prefix: str,
        *,
        verify: str = DEFAULT_VERIFY,
        deltas: Iterable[DeltaInfo | dict] = (),
    ) -> Segment:
        """Opens the segment at ``prefix``; ``deltas``: its committed delete logs, in order."""
        if verify not in VERIFY_MODES:
            raise InvalidArgument(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
        check_store(store, "get", "exists")
        prefix = normalize_prefix(prefix)
        delta_infos = as_deltas(deltas)
        manifest_key = f"{prefix}/{MANIFEST_NAME}"
        try:
            raw = store.get(manifest_key)
        except NotFoundError:
            raise NotFoundError(
                f"no segment at {prefix!r}: {manifest_key!r} does not exist (an unfinished write "
                "leaves no manifest)"
            ) from None
        manifest = decode_manifest(raw, manifest_key)

        self = object.__new__(cls)
        self._prefix, self._manifest, self._deltas = prefix, manifest, delta_infos
        self._verify_mode = verify
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._closed = False
        # A segment dropped without close() stops its queued checks too.
        weakref.finalize(self, self._cancel.set)

        files: dict[str, SegmentFile] = {}
        local = isinstance(store, SupportsLocalPath)
        npy_names = {f.file: f for f in manifest.vector_fields}
        for entry in manifest.files:
            key = f"{prefix}/{entry.name}"
            buffer = map_file(store, key, entry.size, local)
            file = SegmentFile(key, buffer, FileCheck(key, buffer, entry.crc32c, self._cancel))
            field = npy_names.get(entry.name)
            if field is not None:
                descr, itemsize, _ = VECTOR_KINDS[field.kind]
                with memoryview(buffer) as view:
                    file.data_offset = npy.parse_header(
                        view, descr, (manifest.rows, field.columns), itemsize, key
                    )
            files[entry.name] = file
        for info in delta_infos:
            key = f"{prefix}/{info.name}"
            buffer = map_file(store, key, info.size, local)
            files[info.name] = SegmentFile(
                key, buffer, FileCheck(key, buffer, info.crc32c, self._cancel)
            )
        self._files = files

        checks = [f.check for f in files.values()]
        if verify == "eager":
            try:
                for check in checks:
                    check.ensure()
            except BaseException:
                self.close()
                raise
        elif verify == "background":
            # Vector files first: they are the largest and the first thing a search needs.
            checks.sort(key=lambda c: not c.key.endswith(".npy"))
            submit(checks)
        return self

    # -- description --------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def rows(self) -> int:
        return self._manifest.rows

    @property
    def ts_range(self) -> tuple[int, int]:
        """(min, max) timestamp of the rows, inclusive."""
        return self._manifest.ts_min, self._manifest.ts_max

    @property
    def pk_type(self) -> str:
        return self._manifest.pk_type

    @property
    def deltas(self) -> tuple[DeltaInfo, ...]:
        return self._deltas

    @property
    def verify_mode(self) -> str:
        return self._verify_mode

    @property
    def closed(self) -> bool:
        return self._closed

    def index_prefix(self, field: str, build: str | int) -> str:
        """Folder reserved for the index files of ``field``'s build ``build`` (ends with '/')."""
        names = {f.name for f in self._manifest.vector_fields}
        names.update(c.name for c in self._manifest.scalar_columns[2:])
        names.add(self._manifest.pk_field)
        if field not in names:
            raise InvalidArgument(f"segment has no field {field!r}; it has {sorted(names)}")
        return index_prefix(self._prefix, field, build)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"verify={self._verify_mode}"
        return f"<Segment {self._prefix!r} rows={self.rows} {state}>"

    # -- verification -------------------------------------------------------------------------

    def _file(self, name: str) -> SegmentFile:
        if self._closed:
            raise InvalidArgument(f"segment {self._prefix!r} is closed")
        file = self._files[name]
        file.check.ensure()
        return file

    def verify(self) -> None:
        """Verifies (or waits for) every file's checksum; CorruptionError on the first failure."""
        for name in list(self._files):
            self._file(name)

    def wait_verified(self, timeout: float | None = None) -> bool:
        """Waits for the checks already started or queued (background mode) without running any
        in this thread; True if every file's check finished (ok or failed) within ``timeout``
        seconds. Lazy-mode checks that nobody started make it return False at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for file in list(self._files.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not file.check.wait(left):
                return False
        return True

    def verification(self) -> dict[str, str]:
        """File name -> pending | running | ok | failed | cancelled (does not wait)."""
        return {name: f.check.state for name, f in self._files.items()}

    # -- data ---------------------------------------------------------------------------------

    def _cached(self, key: str, build):
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def vectors(self, field: str, *, raw: bool = False) -> np.ndarray:
        """The field's (rows, columns) array: a read-only view of the mapped file, never a copy.

        bfloat16 fields come as ``ml_dtypes.bfloat16`` when ml_dtypes is installed, else (and
        with ``raw=True``) as their uint16 bit patterns; binary fields as uint8 (dim / 8 columns).
        """
        f = self._manifest.vector_field(field)
        file = self._file(f.file)

        def build() -> np.ndarray:
            arr = np.frombuffer(
                file.buffer,
                dtype=np.dtype(f.npy_descr),
                count=self.rows * f.columns,
                offset=file.data_offset,
            ).reshape(self.rows, f.columns)
            if arr.flags.writeable:  # an in-memory copy from a remote store
                arr.flags.writeable = False
            return arr

        arr = self._cached(f.file, build)
        if f.kind == "bfloat16" and not raw and _BFLOAT16 is not None:
            return arr.view(_BFLOAT16)
        return arr

    def scalars(self) -> pa.Table:
        """Primary key, ``$ts`` and the scalar columns, zero-copy from the mapped Arrow file."""
        file = self._file(SCALARS_NAME)
        return self._cached(SCALARS_NAME, lambda: self._read_scalars(file))

    def _read_scalars(self, file: SegmentFile) -> pa.Table:
        table = read_ipc(file)
        m = self._manifest
        names = [c.name for c in m.scalar_columns]
        if table.column_names != names or table.num_rows != m.rows:
            raise CorruptionError(
                f"segment file {file.key} holds columns {table.column_names} and "
                f"{table.num_rows} rows; the manifest says {names} and {m.rows}"
            )
        check_key_column(table.column(0), m.pk_type, file.key)
        if table.schema.field(1).type != pa.uint64() or table.column(1).null_count:
            raise CorruptionError(f"segment file {file.key}: bad {TS_COLUMN} column")
        return table

    def pks(self) -> pa.Array:
        """The primary keys (int64 or string Arrow array)."""
        column = self.scalars().column(0)
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()

    def timestamps(self) -> np.ndarray:
        """The rows' timestamps as a read-only uint64 array."""
        column = self.scalars().column(1)
        return column.to_numpy()

    @property
    def pk_stats(self) -> PkStats:
        """Primary-key min/max and bloom filter (``stats/pk``)."""
        file = self._file(PK_STATS_NAME)

        def build() -> PkStats:
            with memoryview(file.buffer) as view:
                stats = parse_pk_stats(view, self.pk_type, file.key)
            if stats.keys != self.rows:
                raise CorruptionError(
                    f"primary-key statistics {file.key} cover {stats.keys} keys, not {self.rows}"
                )
            return stats

        return self._cached(PK_STATS_NAME, build)

    def might_contain(self, pks: object) -> np.ndarray:
        """Bool per key: False where the key is certainly not in this segment (vectorised)."""
        stats = self.pk_stats
        if hasattr(pks, "__len__") and len(pks) == 0:  # type: ignore[arg-type]
            return np.zeros(0, dtype=bool)
        keys, kind = as_pk_array(pks, "pks")
        if kind != self.pk_type:
            raise InvalidArgument(
                f"pks holds {kind} keys but this segment's keys are {self.pk_type}"
            )
        return stats.might_contain(keys)

    def deletes(self) -> tuple[pa.Array, np.ndarray]:
        """(pk, ts) of every row of the delete logs passed at open, in their order.

        pk is an Arrow array (int64 or string), ts a uint64 numpy array.
        """
        files = [self._file(info.name) for info in self._deltas]
        return self._cached("$deletes", lambda: read_deletes(self._deltas, files, self.pk_type))

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stops pending checks and drops references; arrays handed out stay valid."""
        self._closed = True
        self._cancel.set()
        with self._lock:
            self._cache.clear()
        for file in self._files.values():  # states stay for verification()
            file.buffer = None
            file.check.discard()

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
