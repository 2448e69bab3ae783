"""Shard: one channel's write path and growing data — WAL first, then the growing segment.

Every insert and delete is (1) given a timestamp by the TSO and written to the shard's WAL, and an
insert's rows are copied (staged, invisible) into the growing segment, all under the shard lock;
(2) made durable, outside the lock, so that writers from several threads share one fsync (group
commit) instead of queueing behind each other's; (3) published under the lock, in the order of
step 1: inserts become visible in the growing segment, deletes enter the shard's delete buffer.
So WAL order, timestamp order and publish order are the same, and a reader never sees a row the
WAL does not hold durably. ``serviceable_ts`` is the newest published timestamp: a read at a
snapshot at or below it sees a complete prefix of the log. Rotation and truncation wait until no
write is between steps 1 and 3.

Opening a shard replays its WAL from a checkpoint position (everything before it is in sealed
segments), so every acknowledged write is back after a crash; a torn tail holds only writes that
were never acknowledged (see FileWal).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa

from vecstore.common.pools import pool
from vecstore.coordinator.tso import TimestampOracle
from vecstore.errors import InvalidArgument, StorageError
from vecstore.storage.wal import Position, RecordType, Wal
from vecstore.streaming_node.growing import GrowingSegment, GrowingView, VectorSpec
from vecstore.streaming_node.records import (
    decode_delete,
    decode_insert,
    encode_delete,
    encode_insert,
)


@dataclass(frozen=True)
class ShardSnapshot:
    """What a read at ``snapshot`` needs from a shard: its growing data (the segment being filled
    first, then any being sealed) and its deletes."""

    snapshot: int
    growing: GrowingView
    delete_pks: np.ndarray
    delete_ts: np.ndarray
    sealing: tuple[tuple[int, GrowingView], ...] = ()
    growing_id: int = -1
    # (segment id, rows, field, queries, k, metric, allow) -> (rows, distances) or None: the
    # vector search of a growing segment run by the streaming node that logs it (None when it
    # cannot: the reader then searches the view); None when the shard's log has no node.
    search_growing: Callable[..., tuple[np.ndarray, np.ndarray] | None] | None = None

    def views(self) -> list[tuple[int, GrowingView]]:
        """(segment id, view) of every growing segment to search, the current one last. A reader
        that also lists sealed segments skips a view whose id a sealed segment covers: between
        loading a sealed copy and :meth:`Shard.sealed`, and for a reader whose listing comes
        after a flush or compaction, both hold the same rows."""
        return [*self.sealing, (self.growing_id, self.growing)]


@dataclass(frozen=True)
class Sealed:
    """A growing segment taken out of the write path by :meth:`Shard.rotate`: its rows, the WAL
    checkpoint that covers them, and the deletes logged up to that checkpoint."""

    segment: GrowingSegment
    view: GrowingView
    checkpoint: Position
    delete_pks: np.ndarray
    delete_ts: np.ndarray


T = TypeVar("T")


def _no_deletes(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    pk, ts = np.empty(0, dtype), np.empty(0, np.uint64)
    pk.flags.writeable = ts.flags.writeable = False
    return pk, ts


# What Shard._deletes returns while no delete is buffered, by pk kind (shared, read-only).
_NO_DELETES = {"int64": _no_deletes(np.dtype(np.int64)), "string": _no_deletes(np.dtype(str))}

# From this payload size an insert starts its fsync in a pool thread before staging its rows, so
# the copy overlaps the disk; below it, handing off costs more than the copy it would overlap.
_OVERLAP_BYTES = 1 << 20


def _in_background(fn: Callable[[], T]) -> Future[T]:
    return pool("wal", 4).submit(fn)


class _Write:
    """A WAL write run in a pool thread: ``run`` writes the record, signals that the write is
    done (successfully or not), then waits for its durability and returns its position."""

    def __init__(self, wal: Wal, parts: list, ts: int, extra: dict) -> None:
        self._wal, self._parts, self._ts, self._extra = wal, parts, ts, extra
        self._done = threading.Event()
        self._ok = False

    def run(self) -> Position:
        try:
            pending = self._wal.append_pending(self._parts, type=RecordType.INSERT,
                                               ts_begin=self._ts, ts_end=self._ts, **self._extra)
            self._ok = True
        finally:
            self._done.set()
        return pending.wait()

    def written(self) -> bool:
        """Waits for the write; True if it succeeded (the record is in the log)."""
        self._done.wait()
        return self._ok


class Shard:
    """One channel of one collection. ``segment_id`` names the growing segment it fills."""

    def __init__(self, wal: Wal, tso: TimestampOracle, specs: dict[str, VectorSpec], *,
                 pk_kind: str = "int64", segment_id: int = 1,
                 checkpoint: Position | None = None) -> None:
        self._wal = wal
        # A log written by a streaming node also keeps the growing vectors, and serves their
        # searches (vecstore.streaming_node.remote): its inserts say where their rows go.
        self._serves_growing = bool(getattr(wal, "serves_growing", False))
        self._tso = tso
        self._specs = dict(specs)
        # What each insert's append tells the node of the vector fields (JSON-able).
        self._wire_specs = {n: [v.kind, v.dim] for n, v in self._specs.items()}
        self._pk_kind = pk_kind
        self._mu = threading.Lock()
        self._turn = threading.Condition(self._mu)  # signalled whenever a write publishes
        # Writes that passed step 1 and step 3 (module docstring); a write's ticket is the
        # value of _issued it took, and it publishes when _published reaches it.
        self._issued = 0
        self._published = 0
        self._draining = False  # a rotation or truncation waits for in-flight writes: hold new ones
        self.growing = GrowingSegment(segment_id, specs, pk_kind)
        self._sealing: dict[int, GrowingSegment] = {}
        self._del_pk: list[np.ndarray] = []
        self._del_ts: list[np.ndarray] = []
        self.serviceable_ts = 0
        self._broken: BaseException | None = None  # the first write whose record failed
        self.replayed = 0
        self._last_snapshot: ShardSnapshot | None = None  # see snapshot()
        # Called (outside the lock, with this shard) after each insert: the wiring's hook for
        # the seal policy, so a size limit is noticed without polling.
        self.on_insert: Callable[[Shard], None] | None = None
        for entry in wal.read(checkpoint):
            self._replay(entry.type, entry.payload, entry.ts_begin)
            self.replayed += 1
        # Everything written before this open (sealed or replayed) is older than a fresh
        # timestamp, so reads may start there even when the WAL tail is empty.
        self.serviceable_ts = max(self.serviceable_ts, tso.now())

    def _replay(self, rtype: RecordType, payload: bytes, ts: int) -> None:
        if rtype is RecordType.INSERT:
            pks, vectors, scalars, upsert, replaces = decode_insert(payload, self._specs)
            if replaces is not None:
                self._apply_delete(replaces, ts)
            stamps = np.full(pks.shape[0], ts, np.uint64)
            batches = self.growing.check_batch(pks, stamps, vectors, scalars)
            self._apply_insert(pks, vectors, batches, ts, upsert)
        elif rtype is RecordType.DELETE:
            self._apply_delete(decode_delete(payload), ts)
        self.serviceable_ts = max(self.serviceable_ts, ts)

    def _apply_insert(self, pks: np.ndarray, vectors: dict[str, np.ndarray],
                      batches: list[pa.RecordBatch], ts: int, upsert: bool) -> None:
        if upsert:
            # Same timestamp: the delete hides older versions only (mvcc: ts < delete ts).
            self._apply_delete(pks, ts)
        self.growing.append_checked(pks, np.full(pks.shape[0], ts, np.uint64), vectors, batches)

    def _apply_delete(self, pks: np.ndarray, ts: int) -> None:
        self._del_pk.append(pks.copy())  # the caller keeps its array
        self._del_ts.append(np.full(pks.shape[0], ts, np.uint64))

    def insert(self, pks: np.ndarray, vectors: dict[str, np.ndarray],
               scalars: pa.RecordBatch | None = None, *, upsert: bool = False,
               replaces: np.ndarray | None = None) -> int:
        """Durably inserts a validated batch; returns its timestamp. The batch is visible to
        reads at that timestamp or later once this returns. With ``upsert``, rows already stored
        under the batch's primary keys are replaced, atomically (one WAL record); ``replaces``
        deletes other keys in the same record (an auto_id upsert's old keys). Safe to call from
        several threads: their fsyncs are shared.

        A batch of more than ``RECORD_BYTES`` is written as several records of consecutive rows,
        pipelined (one record's fsync overlaps the next one's write and copy). Each record is
        atomic; the batch as a whole is not: readers may see its first records before the call
        returns, and a crash during the call may keep some of them (never acknowledged), as with
        Milvus's own split inserts. Returns the last record's timestamp."""
        if pks.ndim != 1 or pks.shape[0] == 0:
            raise InvalidArgument("an insert needs a non-empty 1-D array of primary keys")
        n = int(pks.shape[0])
        row_bytes = max(1, sum(a.nbytes for a in vectors.values()) // n + pks.itemsize
                        + (scalars.nbytes // n if scalars is not None else 0))
        step = max(1, self.RECORD_BYTES // row_bytes)
        pending = None
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            cut = (pks[lo:hi], {k: v[lo:hi] for k, v in vectors.items()},
                   scalars.slice(lo, hi - lo) if scalars is not None else None) \
                if step < n else (pks, vectors, scalars)
            # The first record carries the replaced keys; later records of this call skip the
            # admission wait (a draining rotation waits for this call's records, not vice versa).
            begun = self._begin_insert(*cut, upsert=upsert, replaces=replaces if lo == 0 else None,
                                       continuing=pending is not None)
            if pending is not None:
                try:
                    self._finish(*pending)
                except BaseException:
                    # The next record has its ticket: settle it too, or every later write and
                    # rotation would wait for it forever. Its own outcome cannot change ours.
                    with contextlib.suppress(BaseException):
                        self._finish(*begun)
                    raise
            pending = begun
        assert pending is not None
        self._finish(*pending)
        hook = self.on_insert
        if hook is not None:
            hook(self)
        return pending[1]

    # Largest WAL record an insert writes; bigger batches are split (see insert).
    RECORD_BYTES = 64 << 20

    def _begin_insert(self, pks: np.ndarray, vectors: dict[str, np.ndarray],
                      scalars: pa.RecordBatch | None, *, upsert: bool,
                      replaces: np.ndarray | None, continuing: bool
                      ) -> tuple[int, int, Callable[[], object], Callable[[], None],
                                 GrowingSegment]:
        """Step 1 of an insert (module docstring); returns _finish's arguments."""
        parts = encode_insert(pks, vectors, scalars, upsert=upsert, replaces=replaces)
        big = sum(memoryview(p).nbytes for p in parts) >= _OVERLAP_BYTES
        with self._mu:
            if not continuing:
                self._admit()
            # Checked under the lock, before the WAL: a record that could not be applied must
            # never be logged, or every replay would fail on it.
            batches = self.growing.check_batch(pks, np.zeros(pks.shape[0], np.uint64), vectors,
                                               scalars)
            ts = self._tso.now()
            stamps = np.full(pks.shape[0], ts, np.uint64)
            segment = self.growing
            extra = {"growing": [segment.segment_id, segment.staged_rows, self._wire_specs]
                     } if self._serves_growing else {}
            # The rows are applied from the caller's arrays, not by decoding the payload just
            # encoded: staged (copied, invisible until published). A big batch's WAL write and
            # fsync run in a pool thread meanwhile; the lock is kept until the write is done,
            # so log order stays ticket order, and the fsync is waited for after releasing it.
            if big:
                write = _Write(self._wal, parts, ts, extra)
                durable = _in_background(write.run)
                try:
                    staged = segment.stage(pks, stamps, vectors)
                finally:
                    written = write.written()
                if not written:
                    segment.unstage(staged, int(pks.shape[0]))  # the newest staged: this one
                    durable.result()  # raises the write's error: nothing was logged
                wait = durable.result
            else:
                wait = self._wal.append_pending(parts, type=RecordType.INSERT, ts_begin=ts,
                                                ts_end=ts, **extra).wait
                staged = segment.stage(pks, stamps, vectors)
            ticket = self._issued
            self._issued += 1

        def publish() -> None:
            if upsert:
                # Same timestamp: the delete hides older versions only (mvcc: ts < delete ts).
                self._apply_delete(pks, ts)
            if replaces is not None:
                self._apply_delete(replaces, ts)
            segment.publish(staged, pks, stamps, vectors, batches)

        return ticket, ts, wait, publish, segment

    def _finish(self, ticket: int, ts: int, wait: Callable[[], object],
                publish: Callable[[], None], segment: GrowingSegment | None = None) -> None:
        """Steps 2 and 3 of a write (module docstring): waits for durability outside the lock,
        then publishes in ticket order. If the record was not made durable, nothing is published
        and the staged rows are dropped, this write's and every later one's, and no later write
        of this shard is acknowledged (a FileWal refuses them anyway; a log written by another
        process may still report a later record durable, which its replay then brings back);
        the StorageError propagates."""
        error: BaseException | None = None
        try:
            wait()
        except BaseException as e:  # noqa: BLE001 - re-raised below, after taking our turn
            error = e
        with self._turn:
            while self._published != ticket:
                self._turn.wait()
            if error is None and self._broken is not None:
                # Its staged rows went with the failed write's (unstage drops them all).
                error = StorageError(f"an earlier write to this shard's log failed "
                                     f"({self._broken}); this one is not acknowledged")
            if error is None:
                publish()
                self.serviceable_ts = ts
            else:
                if self._broken is None:
                    self._broken = error
                if segment is not None:
                    segment.unstage()
            self._published += 1
            self._turn.notify_all()
        if error is not None:
            raise error

    def _quiesce(self) -> None:
        """Waits (holding ``_mu``, which the wait releases) until every issued write has
        published, so the growing segment and the WAL's end hold the same writes. New writes wait
        meanwhile (:meth:`_admit`), so a steady stream of them cannot starve the caller."""
        self._draining = True
        try:
            while self._published != self._issued:
                self._turn.wait()
        finally:
            self._draining = False
            self._turn.notify_all()

    def _admit(self) -> None:
        """Step 1's entry, holding ``_mu``: waits while a rotation or truncation drains."""
        while self._draining:
            self._turn.wait()

    def delete(self, pks: np.ndarray) -> int:
        """Durably deletes rows by primary key; returns the delete timestamp."""
        if pks.ndim != 1:
            raise InvalidArgument("delete needs a 1-D array of primary keys")
        payload = encode_delete(pks)
        with self._mu:
            self._admit()
            ts = self._tso.now()
            pending = self._wal.append_pending(payload, type=RecordType.DELETE, ts_begin=ts,
                                               ts_end=ts)
            ticket = self._issued
            self._issued += 1
        self._finish(ticket, ts, pending.wait, lambda: self._apply_delete(pks, ts))
        return ts

    def _deletes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every buffered delete as one (pk, ts) pair of arrays. Called under ``_mu``. The lists
        are folded into one read-only pair of arrays, so a read that follows no new delete (every
        read snapshot takes these) costs no copy."""
        if not self._del_pk:
            return _NO_DELETES[self._pk_kind]
        if len(self._del_pk) > 1 or self._del_pk[0].flags.writeable:
            dpk, dts = np.concatenate(self._del_pk), np.concatenate(self._del_ts)
            dpk.flags.writeable = False
            dts.flags.writeable = False
            self._del_pk, self._del_ts = [dpk], [dts]
        return self._del_pk[0], self._del_ts[0]

    @property
    def specs(self) -> dict[str, VectorSpec]:
        return dict(self._specs)

    @property
    def pk_kind(self) -> str:
        return self._pk_kind

    def snapshot(self, ts: int | None = None) -> ShardSnapshot:
        """The growing data and deletes for a read at ``ts`` (default: everything applied).
        Snapshots are immutable: while nothing changed since the last one (the same timestamp,
        growing view, deletes and nothing being sealed), that one is returned again."""
        with self._mu:
            snap = self.serviceable_ts if ts is None else ts
            view = self.growing.view()
            dpk, dts = self._deletes()
            last = self._last_snapshot
            if last is not None and not self._sealing and not last.sealing and \
                    last.snapshot == snap and last.growing is view and last.delete_pks is dpk \
                    and last.delete_ts is dts:
                return last
            sealing = tuple((sid, seg.view()) for sid, seg in self._sealing.items())
            gid = self.growing.segment_id
            remote = self._wal.search_growing if self._serves_growing else None  # type: ignore[attr-defined]
            self._last_snapshot = ShardSnapshot(snap, view, dpk, dts, sealing, gid, remote)
            return self._last_snapshot

    def growing_stats(self) -> tuple[int, int, float | None]:
        """(rows, estimated bytes, time.monotonic() of the first row or None) of the growing
        segment being filled: what the seal policy decides on."""
        with self._mu:
            g = self.growing
            return g.rows, g.nbytes, g.first_row_at

    def rotate(self, new_segment_id: int) -> Sealed | None:
        """Starts a new growing segment and hands back the old one for sealing (None when it is
        empty). The old segment stays searchable (in ``sealing``) until :meth:`sealed` says its
        sealed copy is loaded, so no read ever misses its rows."""
        with self._mu:
            self._quiesce()
            old = self.growing
            if old.rows == 0:
                return None
            self.growing = GrowingSegment(new_segment_id, self._specs, self._pk_kind)
            self._sealing[old.segment_id] = old
            dpk, dts = self._deletes()
            return Sealed(old, old.view(), self._wal.end_position, dpk, dts)

    def sealed(self, segment_id: int, deletes_through: int | None = None) -> None:
        """The sealed copy of ``segment_id`` is loaded elsewhere: stop searching the growing one.
        ``deletes_through``: deletes at or before this timestamp are now in a loaded delete log,
        so the shard's buffer drops them."""
        with self._mu:
            self._sealing.pop(segment_id, None)
            if deletes_through is not None and self._del_pk:
                dpk, dts = self._deletes()
                keep = dts > np.uint64(deletes_through)
                self._del_pk, self._del_ts = [dpk[keep]], [dts[keep]]
        if self._serves_growing:
            self._wal.release_growing([segment_id])  # type: ignore[attr-defined]

    def truncate(self, new_segment_id: int, commit: Callable[[Position], None]) -> None:
        """Empties the shard: ``commit(position)`` records durably that the WAL before
        ``position`` (its current end) holds nothing to replay, then the growing, sealing and
        delete buffers are dropped. Both happen under the shard lock, so no write lands between
        the position and the reset: a write either precedes the truncation (and is gone) or
        follows it (and is kept). If ``commit`` raises, nothing changes."""
        with self._mu:
            self._quiesce()
            commit(self._wal.end_position)
            dropped = [self.growing.segment_id, *self._sealing]
            self.growing = GrowingSegment(new_segment_id, self._specs, self._pk_kind)
            self._sealing.clear()
            self._del_pk, self._del_ts = [], []
        if self._serves_growing:
            self._wal.release_growing(dropped)  # type: ignore[attr-defined]
