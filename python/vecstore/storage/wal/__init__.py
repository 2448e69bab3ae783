"""The write-ahead log: one directory of log files per channel (shard), the durability point of
every write. Format: cpp/wal/wal_format.h and docs/formats.md; the encoder and decoder are native
(_core).

    wal = FileWal("data/wal/ch0", sync="always")
    pos = wal.append(batch, type=RecordType.INSERT, ts_begin=t0, ts_end=t1)  # durable on return
    for entry in wal.read(from_position=checkpoint):
        ...
    wal.truncate_before(checkpoint)
    wal.close()
"""

from vecstore.storage.wal.log import FileWal, read_log
from vecstore.storage.wal.protocol import Wal
from vecstore.storage.wal.records import (
    Position,
    RecordType,
    SkippedRange,
    SyncPolicy,
    WalEntry,
    WalRecovery,
)

__all__ = [
    "FileWal",
    "read_log",
    "Position",
    "RecordType",
    "SkippedRange",
    "SyncPolicy",
    "Wal",
    "WalEntry",
    "WalRecovery",
]
