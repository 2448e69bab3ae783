"""FileWal, the Wal on local files: append with a sync policy and group commit, read back from a
position, truncate, rotate files at a size limit, recover a torn tail on open.

Files: ``<directory>/<seq>.log``, seq = 20 decimal digits starting at 1. Encoding, decoding and all
file I/O of records are native (``_core.WalFileWriter`` / ``_core.WalFileReader``, GIL released);
this module orders them.

Concurrency: thread-safe. Appends are serialised by ``_write_lock``; with ``sync="always"`` the
first appender to need durability becomes the leader and fsyncs for everyone written so far, the
others wait on ``_cv`` (group commit). Lock order: ``_write_lock`` then ``_sync_lock``; the leader
takes only ``_sync_lock``, so appends continue while it fsyncs.

Failure: after any I/O error (a failed write or fsync, a full disk) the log refuses every later
append with :class:`StorageError` — it never acknowledges what it could not make durable. Reopen
it (a new ``Wal`` on the same directory) to recover: the torn tail is truncated then.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from vecstore import _core
from vecstore.common import failpoints
from vecstore.errors import CorruptionError, InvalidArgument, StorageError, VecstoreError
from vecstore.storage.fsutil import fsync_dir
from vecstore.storage.wal.records import (
    Position,
    RecordType,
    SkippedRange,
    SyncPolicy,
    WalEntry,
    WalRecovery,
)

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{20})\.log$")
_FLAG_ZSTD = 1
_HEADER_BYTES = 32
DEFAULT_FILE_SIZE_LIMIT = 64 << 20


def _file_name(seq: int) -> str:
    return f"{seq:020d}.log"


def payload_parts(payload: object) -> list[memoryview]:
    """The payload as a list of contiguous byte views (one, unless given as a list or tuple)."""
    if isinstance(payload, (list, tuple)):
        if not payload:
            raise InvalidArgument("a WAL payload given as parts needs at least one part")
        return [_payload_bytes(p) for p in payload]
    return [_payload_bytes(payload)]


def _payload_bytes(payload: object) -> memoryview:
    """A contiguous byte view of payload: bytes-like objects as they are, pyarrow record batches
    and tables as an Arrow IPC stream."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        view = memoryview(payload)
    else:
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            pa = None
        if pa is not None and isinstance(payload, (pa.RecordBatch, pa.Table)):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, payload.schema) as writer:
                writer.write(payload)
            return memoryview(sink.getvalue())
        try:
            view = memoryview(payload)  # numpy arrays and other buffers
        except TypeError:
            raise InvalidArgument(
                f"WAL payload must be bytes-like or a pyarrow RecordBatch/Table, got "
                f"{type(payload).__name__}"
            ) from None
    if not view.c_contiguous:
        raise InvalidArgument("WAL payload must be C-contiguous; pass bytes(payload)")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


class PendingAppend:
    """A record written by :meth:`FileWal.append_pending`, not yet acknowledged: ``wait()``
    returns its position once the log's sync policy holds for it, or raises StorageError."""

    __slots__ = ("_wal", "position", "_target")

    def __init__(self, wal: FileWal, position: Position, target: int) -> None:
        self._wal = wal
        self.position = position
        self._target = target

    def wait(self) -> Position:
        if self._wal._policy is SyncPolicy.ALWAYS:
            self._wal._await_durable(self._target)
        failpoints.hit("wal.after_ack")
        return self.position


class FileWal:
    """A write-ahead log in one local directory, implementing the ``Wal`` protocol. The module
    docstring holds the contract.

    Args:
        directory: the channel's directory; created if missing.
        sync: a :class:`SyncPolicy` or its name ("always", "batch", "none").
        batch_interval_ms: with ``sync="batch"``, the longest time between fsyncs.
        file_size_limit: a file is closed and a new one started once it reaches this many bytes.
        compression: None or "zstd" (payloads compressed per record; worth it for scalars, not
            for float vectors).
        on_damage: "raise" (default) stops reading at damage with :class:`CorruptionError`;
            "skip" steps over damaged ranges, reporting them in ``recovery.skipped`` and
            ``read_report``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        sync: SyncPolicy | str = SyncPolicy.ALWAYS,
        batch_interval_ms: float = 10.0,
        file_size_limit: int = DEFAULT_FILE_SIZE_LIMIT,
        compression: str | None = None,
        on_damage: str = "raise",
    ) -> None:
        try:
            self._policy = SyncPolicy(sync)
        except ValueError:
            raise InvalidArgument(
                f"unknown sync policy {sync!r}; use 'always', 'batch' or 'none'"
            ) from None
        if isinstance(batch_interval_ms, bool) or not isinstance(batch_interval_ms, (int, float)) \
                or not 0 < batch_interval_ms <= 60_000:
            raise InvalidArgument("batch_interval_ms must be a number in (0, 60000]")
        if isinstance(file_size_limit, bool) or not isinstance(file_size_limit, int) \
                or file_size_limit < 64 * 1024:
            raise InvalidArgument("file_size_limit must be an int of at least 65536 bytes")
        if compression not in (None, "zstd"):
            raise InvalidArgument(f"unknown compression {compression!r}; use None or 'zstd'")
        if on_damage not in ("raise", "skip"):
            raise InvalidArgument(f"on_damage must be 'raise' or 'skip', got {on_damage!r}")
        self._dir = Path(directory)
        self._limit = file_size_limit
        self._interval = batch_interval_ms / 1000.0
        self._skip = on_damage == "skip"
        self._zstd_c = self._zstd_d = None
        if compression == "zstd":
            import zstandard

            self._zstd_c = zstandard.ZstdCompressor(level=3)
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._cv = threading.Condition()
        self._written = 0  # bytes appended since open, over all files (monotonic)
        self._durable = 0  # of those, bytes known durable
        self._syncing = False
        self.appends = 0  # records appended since open
        self.syncs = 0  # fsyncs issued by appends and sync(): group commit keeps it below appends
        self._error: StorageError | None = None
        self._closed = False
        self.recovery = WalRecovery()
        self.read_report: list[SkippedRange] = []  # damage skipped by the last read()
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create WAL directory {self._dir}: {e}") from e
        self._writer, self._seq = self._recover()
        self._end = Position(self._seq, self._writer.offset)
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if self._policy is SyncPolicy.BATCH:
            self._flusher = threading.Thread(target=self._flush_loop, name="wal-flusher",
                                             daemon=True)
            self._flusher.start()

    # ---- opening -----------------------------------------------------------------------------

    def _files(self) -> list[int]:
        seqs = []
        for name in os.listdir(self._dir):
            m = _FILE_RE.match(name)
            if m:
                seqs.append(int(m.group(1)))
        return sorted(seqs)

    def _path(self, seq: int) -> Path:
        return self._dir / _file_name(seq)

    def _recover(self) -> tuple[_core.WalFileWriter, int]:
        seqs = self._files()
        if not seqs:
            return _core.WalFileWriter.create(str(self._path(1)), 1), 1
        seq = seqs[-1]
        path = self._path(seq)
        size = path.stat().st_size
        if size < _HEADER_BYTES and (size == 0 or not path.read_bytes().strip(b"\0")):
            # Created but its header never became durable: it cannot hold an acknowledged record.
            log.warning("removing WAL file %s of %d bytes left by an interrupted creation",
                        path, size)
            path.unlink()
            fsync_dir(self._dir)
            self.recovery.removed_empty_file = True
            return _core.WalFileWriter.create(str(path), seq), seq
        reader = _FileScan(path, seq, tail_file=True, skip=self._skip)
        for _ in reader.records():
            pass
        self.recovery = WalRecovery(
            tail_seq=seq,
            append_offset=reader.append_offset,
            torn_bytes_dropped=reader.dropped_bytes,
            skipped=reader.skipped,
        )
        if reader.dropped_bytes:
            failpoints.hit("wal.recover")
            log.warning("WAL %s: dropped a torn tail of %d bytes at offset %d (an unacknowledged "
                        "write interrupted by a crash)", path, reader.dropped_bytes,
                        reader.append_offset)
        writer = _core.WalFileWriter.open_for_append(str(path), reader.append_offset)
        return writer, seq

    # ---- writing -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgument(f"WAL {self._dir} is closed; open a new Wal to use it")
        if self._error is not None:
            raise StorageError(
                f"WAL {self._dir} refuses writes after an I/O error ({self._error.message}); "
                "close it and open it again to recover"
            )

    def _poison(self, e: VecstoreError) -> StorageError:
        err = e if isinstance(e, StorageError) else StorageError(str(e))
        with self._cv:
            if self._error is None:
                self._error = err
            self._cv.notify_all()
        return err

    def append(
        self,
        payload: object,
        *,
        type: RecordType | int = RecordType.INSERT,  # noqa: A002 - the record's type, as in the format
        ts_begin: int = 0,
        ts_end: int | None = None,
    ) -> Position:
        """Appends one record and returns its position, once the sync policy is satisfied (with
        "always": once it is durable). ``payload``: bytes-like, a list or tuple of bytes-like
        parts (the payload is their concatenation, written without joining them), or a pyarrow
        RecordBatch/Table (stored as an Arrow IPC stream). ``ts_begin``/``ts_end``: the
        timestamp range the record covers (ts_end defaults to ts_begin). Raises InvalidArgument
        for bad arguments (nothing written) and StorageError if the record could not be made
        durable (not acknowledged)."""
        return self.append_pending(payload, type=type, ts_begin=ts_begin, ts_end=ts_end).wait()

    def append_pending(
        self,
        payload: object,
        *,
        type: RecordType | int = RecordType.INSERT,  # noqa: A002
        ts_begin: int = 0,
        ts_end: int | None = None,
    ) -> PendingAppend:
        """Writes one record (in log order, as :meth:`append`) without waiting for the sync
        policy: the caller acknowledges it only after ``.wait()`` returns. Writers that hold their
        own lock across this call and wait after releasing it share fsyncs (group commit)."""
        try:
            rtype = RecordType(type)
        except ValueError:
            raise InvalidArgument(
                f"unknown record type {type!r}; use a vecstore.storage.wal.RecordType"
            ) from None
        end = ts_begin if ts_end is None else ts_end
        for name, v in (("ts_begin", ts_begin), ("ts_end", end)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**64:
                raise InvalidArgument(f"{name} must be an int in [0, 2**64), got {v!r}")
        if end < ts_begin:
            raise InvalidArgument(f"ts_end ({end}) is before ts_begin ({ts_begin})")
        parts = payload_parts(payload)
        flags = 0
        if self._zstd_c is not None:
            parts = [memoryview(self._zstd_c.compress(b"".join(parts)))]
            flags |= _FLAG_ZSTD
        self._check_open()
        with self._write_lock:
            self._check_open()
            try:
                if self._writer.offset >= self._limit:
                    self._rotate()
                if len(parts) == 1:
                    offset = self._writer.append(int(rtype), flags, ts_begin, end, parts[0])
                else:
                    offset = self._writer.append_parts(int(rtype), flags, ts_begin, end, parts)
            except VecstoreError as e:
                raise self._poison(e) from e
            seq = self._seq
            self._end = Position(seq, self._writer.offset)
            self.appends += 1
            self._written += 1 + (self._writer.offset - offset)  # +1: distinct even if empty
            target = self._written
        failpoints.hit("wal.after_write")
        return PendingAppend(self, Position(seq, offset), target)

    def _rotate(self) -> None:
        # Called with _write_lock held: no append runs; take _sync_lock so no leader uses the file.
        with self._sync_lock:
            self._writer.close()  # syncs: the closed file is complete and durable
            new_seq = self._seq + 1
            self._writer = _core.WalFileWriter.create(str(self._path(new_seq)), new_seq)
            self._seq = new_seq
            covered = self._written
        self._mark_durable(covered)

    def _mark_durable(self, covered: int) -> None:
        with self._cv:
            self._durable = max(self._durable, covered)
            self._cv.notify_all()

    def _sync_now(self) -> None:
        """Leader work: fsync the current file, covering everything written before the call."""
        with self._sync_lock:
            covered = self._written
            if covered <= self._durable:
                return
            if failpoints.hit("wal.before_sync"):
                raise StorageError(f"injected fsync failure in WAL {self._dir}")
            self._writer.sync()
            self.syncs += 1
        self._mark_durable(covered)

    def _await_durable(self, target: int) -> None:
        while True:
            with self._cv:
                while True:
                    if self._durable >= target:
                        return
                    if self._error is not None:
                        raise StorageError(
                            f"WAL append was not acknowledged: {self._error.message}"
                        )
                    if not self._syncing:
                        self._syncing = True
                        break
                    self._cv.wait()
            try:
                self._sync_now()
            except VecstoreError as e:
                raise self._poison(e) from e
            finally:
                with self._cv:
                    self._syncing = False
                    self._cv.notify_all()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._interval):
            if self._error is not None:
                return
            try:
                self._sync_now()
            except VecstoreError as e:
                self._poison(e)
                log.error("WAL %s: background fsync failed: %s", self._dir, e)
                return

    def sync(self) -> None:
        """Makes every append so far durable, whatever the policy."""
        self._check_open()
        try:
            self._sync_now()
        except VecstoreError as e:
            raise self._poison(e) from e

    # ---- reading -----------------------------------------------------------------------------

    def read(self, from_position: Position | None = None) -> Iterator[WalEntry]:
        """Yields the records from ``from_position`` (a position returned by append, or None for
        the oldest retained record) to the end of the log, in order. Damage raises
        CorruptionError naming the file and offset (or is skipped and reported in
        ``read_report`` with ``on_damage="skip"``). A torn tail of the newest file ends the
        iteration quietly: it holds only unacknowledged bytes."""
        self.read_report: list[SkippedRange] = []
        return read_log(self._dir, from_position, skip=self._skip, report=self.read_report)

    # ---- retention and lifecycle -------------------------------------------------------------

    def truncate_before(self, position: Position) -> int:
        """Deletes the log files that hold only records before ``position`` (everything before it
        is checkpointed elsewhere). Returns the number of files deleted. The current file is
        never deleted."""
        if not isinstance(position, Position):
            raise InvalidArgument(
                f"position must be a Position, got {type(position).__name__}"
            )
        self._check_open()
        with self._write_lock:
            doomed = [s for s in self._files() if s < position.seq and s < self._seq]
            for seq in doomed:
                failpoints.hit("wal.truncate")
                try:
                    self._path(seq).unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise StorageError(f"cannot delete WAL file {self._path(seq)}: {e}") from e
            if doomed:
                fsync_dir(self._dir)
        return len(doomed)

    def close(self) -> None:
        """Syncs and closes. Idempotent; later appends raise InvalidArgument."""
        if self._closed:
            return
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        with self._write_lock:
            self._closed = True
            with self._sync_lock:
                try:
                    self._writer.close()
                except VecstoreError as e:
                    if self._error is None:
                        raise StorageError(f"closing WAL {self._dir} failed: {e}") from e

    @property
    def end_position(self) -> Position:
        """Where the next record will start: just past the last record appended (or found at
        open). Reading from it yields only records appended later, so it is the checkpoint that
        covers everything appended so far."""
        return self._end

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def sync_policy(self) -> SyncPolicy:
        return self._policy

    def __enter__(self) -> FileWal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RawEntry:
    __slots__ = ("end", "flags", "payload", "position", "ts_begin", "ts_end", "type")

    def __init__(self, seq: int, rec: tuple) -> None:
        offset, end, rtype, flags, ts_begin, ts_end, payload = rec
        self.position = Position(seq, offset)
        self.end = Position(seq, end)
        try:
            self.type = RecordType(rtype)
        except ValueError:
            raise CorruptionError(
                f"WAL record at {self.position} has unknown type {rtype}"
            ) from None
        self.flags = flags
        self.ts_begin = ts_begin
        self.ts_end = ts_end
        self.payload = payload


class _FileScan:
    """Reads one file through a read-only mmap and the native reader."""

    def __init__(self, path: Path, seq: int, *, tail_file: bool, skip: bool) -> None:
        self.path, self.seq, self.tail_file, self.skip = path, seq, tail_file, skip
        self.append_offset = _HEADER_BYTES
        self.dropped_bytes = 0
        self.skipped: list[SkippedRange] = []

    def records(self, start: int | None = None) -> Iterator[_RawEntry]:
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise StorageError(f"cannot open WAL file {self.path}: {e}") from e
        with f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise CorruptionError(f"WAL file {self.path} is empty (no header)")
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
                reader = _core.WalFileReader(mm, str(self.path), self.tail_file, self.skip)
                try:
                    seq = reader.read_header()
                    if seq != self.seq:
                        raise CorruptionError(
                            f"WAL file {self.path} says it is file {seq}; its name says {self.seq}"
                        )
                    if start is not None:
                        reader.seek(start)
                    while (rec := reader.next()) is not None:
                        yield _RawEntry(self.seq, rec)
                    self.append_offset = reader.append_offset
                    self.dropped_bytes = reader.dropped_bytes
                    self.skipped = [SkippedRange(self.seq, o, n, why)
                                    for o, n, why in reader.skipped]
                finally:
                    del reader  # releases its view of the mmap before the mmap closes


def read_log(directory: str | os.PathLike[str], from_position: Position | None = None, *,
             skip: bool = False, report: list[SkippedRange] | None = None
             ) -> Iterator[WalEntry]:
    """The records of the log in ``directory`` from ``from_position`` on, read-only (no
    recovery, no lock): :meth:`FileWal.read` for the log's writer, and the reader of a log
    another process writes (a streaming node's), which made the records durable before
    acknowledging them. ``skip``: step over damage, appending it to ``report``."""
    if from_position is not None and not isinstance(from_position, Position):
        raise InvalidArgument(
            f"from_position must be a Position returned by append, got "
            f"{type(from_position).__name__}"
        )
    directory = Path(directory)
    seqs = sorted(int(m.group(1)) for m in map(_FILE_RE.match, os.listdir(directory)) if m)
    return _read_files(directory, seqs, from_position, skip,
                       report if report is not None else [])


def _read_files(directory: Path, seqs: list[int], from_position: Position | None, skip: bool,
                report: list[SkippedRange]) -> Iterator[WalEntry]:
    if from_position is not None:
        if seqs and from_position.seq < seqs[0]:
            raise InvalidArgument(
                f"{from_position} is before the oldest retained WAL file {seqs[0]} "
                "(truncated); read from a later position"
            )
        seqs = [s for s in seqs if s >= from_position.seq]
    zstd_d = None
    for i, seq in enumerate(seqs):
        start = from_position.offset if from_position and seq == from_position.seq else None
        scan = _FileScan(directory / _file_name(seq), seq, tail_file=i == len(seqs) - 1,
                         skip=skip)
        for entry in scan.records(start):
            payload = entry.payload
            if entry.flags & _FLAG_ZSTD:
                if zstd_d is None:
                    import zstandard

                    zstd_d = zstandard.ZstdDecompressor()
                try:
                    payload = zstd_d.decompress(payload)
                except Exception as e:  # zstandard.ZstdError: checksummed frame is damaged
                    raise CorruptionError(
                        f"WAL record at {entry.position} failed to decompress: {e}"
                    ) from e
            yield WalEntry(entry.position, entry.end, entry.type, entry.ts_begin,
                           entry.ts_end, payload)
        report.extend(scan.skipped)
