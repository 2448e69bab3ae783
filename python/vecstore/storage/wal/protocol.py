"""The ``Wal`` protocol: what roles (streaming nodes) see of a write-ahead log.

:class:`~vecstore.storage.wal.FileWal` implements it on local files (embedded and standalone
modes); a cluster wiring implements it on object storage. Callers depend on this protocol only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from vecstore.storage.wal.records import Position, RecordType, WalEntry


class PendingRecord(Protocol):
    position: Position

    def wait(self) -> Position:
        """Returns once the record is acknowledged (durable under "always"); StorageError if it
        could not be made durable."""


@runtime_checkable
class Wal(Protocol):
    def append(
        self,
        payload: object,
        *,
        type: RecordType | int = RecordType.INSERT,  # noqa: A002
        ts_begin: int = 0,
        ts_end: int | None = None,
    ) -> Position:
        """Appends one record; returns its position once the sync policy holds (by default:
        durable). Raises InvalidArgument before writing anything for bad arguments, and
        StorageError when the record could not be made durable (then it is not acknowledged and
        the log refuses further writes until reopened)."""

    def append_pending(
        self,
        payload: object,
        *,
        type: RecordType | int = RecordType.INSERT,  # noqa: A002
        ts_begin: int = 0,
        ts_end: int | None = None,
    ) -> PendingRecord:
        """Writes one record in log order without waiting for the sync policy; the record is
        acknowledged only once the returned object's ``wait()`` returns (group commit: callers
        wait outside their own locks)."""

    def read(self, from_position: Position | None = None) -> Iterator[WalEntry]:
        """The records from a position (None: the oldest retained) to the end, in order."""

    @property
    def end_position(self) -> Position:
        """Just past the last record appended: a checkpoint covering everything so far."""

    def truncate_before(self, position: Position) -> int:
        """Drops whole files of records before ``position``; returns how many were dropped."""

    def sync(self) -> None:
        """Makes every append so far durable."""

    def close(self) -> None:
        """Syncs and closes; idempotent."""
