"""Value types of the WAL API: positions, entries, record types, sync policies, recovery reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class RecordType(enum.IntEnum):
    """What a record carries (the record type byte of the format)."""

    INSERT = 1
    DELETE = 2
    DDL = 3
    TIME_TICK = 4


class SyncPolicy(str, enum.Enum):
    """When an append is acknowledged.

    ALWAYS  after fsync (default). Concurrent appenders share one fsync (group commit).
    BATCH   after the write; a background thread fsyncs at least every ``batch_interval_ms``.
            A power loss can drop the last interval's appends; a process crash loses nothing.
    NONE    after the write; fsync only on rotation and close. A power loss can drop any
            unsynced tail. Never corrupting: recovery truncates a torn tail to the last whole
            record.
    """

    ALWAYS = "always"
    BATCH = "batch"
    NONE = "none"


@dataclass(frozen=True, order=True)
class Position:
    """Where a record starts: the log file's sequence number and the byte offset in that file.
    Positions order like the log."""

    seq: int
    offset: int


@dataclass(frozen=True)
class WalEntry:
    """One record read back. ``payload`` is decompressed already."""

    position: Position
    end: Position
    type: RecordType
    ts_begin: int
    ts_end: int
    payload: bytes


@dataclass(frozen=True)
class SkippedRange:
    """Damaged bytes that a reader in ``on_damage="skip"`` mode stepped over."""

    seq: int
    offset: int
    length: int
    reason: str


@dataclass
class WalRecovery:
    """What opening the WAL found at the end of its newest file."""

    tail_seq: int = 0
    append_offset: int = 0
    torn_bytes_dropped: int = 0
    removed_empty_file: bool = False
    skipped: list[SkippedRange] = field(default_factory=list)
