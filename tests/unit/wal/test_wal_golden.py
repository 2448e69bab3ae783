"""The WAL v1.0 golden file: written once by ``python -m tests.unit.wal.test_wal_golden`` and kept
in tests/data/wal/v1.0/; every later version of vecstore must read it back unchanged."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from vecstore.storage.wal import FileWal, RecordType

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "wal" / "v1.0"


def golden_records() -> list[tuple[RecordType, int, int, bytes]]:
    """Records that cross every fragment kind: FULL, FIRST + LAST, FIRST + MIDDLE + LAST."""
    return [
        (RecordType.DDL, 1, 1, b'{"create_collection": "docs"}'),
        (RecordType.INSERT, 2, 5, bytes(range(256)) * 200),  # 51,200 bytes: FIRST, MIDDLE, LAST
        (RecordType.DELETE, 6, 6, b"pk:42"),
        (RecordType.TIME_TICK, 7, 7, b""),
        (RecordType.INSERT, 8, 9, b"\x00\xff" * 15_000),
    ]


def test_golden_v1_0_log_still_reads(tmp_path):
    d = tmp_path / "wal"
    shutil.copytree(GOLDEN, d)
    with FileWal(d) as wal:
        assert wal.recovery.torn_bytes_dropped == 0
        got = [(e.type, e.ts_begin, e.ts_end, e.payload) for e in wal.read()]
    assert got == golden_records()


def write_golden(directory: Path) -> None:
    with FileWal(directory) as wal:
        for rtype, t0, t1, payload in golden_records():
            wal.append(payload, type=rtype, ts_begin=t0, ts_end=t1)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN
    if target.exists():
        sys.exit(f"{target} exists: golden files are written once per format version")
    write_golden(target)
