"""Crash harness: a writer child is SIGKILLed at random moments and at every failpoint (including
during recovery); after each kill the parent checks that every acknowledged batch is present
exactly once with identical bytes and that every visible record is a whole batch.

The quick variant runs in the default test run; the 200-kill variant is marked slow (run it with
``pytest -m slow tests/crash``; CI runs it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.crash.batches import batch_id, decode, make_batch
from vecstore.storage.wal import FileWal, Position

pytestmark = pytest.mark.crash

ROOT = Path(__file__).resolve().parents[2]
FAILPOINTS = [
    "wal.after_write=kill",   # written, not yet fsynced: may or may not survive, never acked
    "wal.mid_write=kill",     # half a record on disk: a real torn tail
    "wal.before_sync=kill",
    "wal.after_ack=kill",     # durable but the ACK line never printed
    "wal.recover=kill",       # dies while recovering the previous torn tail
]


def run_child(directory: Path, run_id: int, *, failpoint: str | None, kill_after: float | None,
              batches: int | None = None) -> tuple[dict[tuple[int, int], int], int]:
    """Runs one writer child; returns {(run, batch): file seq} of its acknowledged batches and its
    exit code."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    env.pop("VECSTORE_FAILPOINT", None)
    if failpoint:
        env["VECSTORE_FAILPOINT"] = failpoint
    args = [sys.executable, "-m", "tests.crash.wal_writer_child", str(directory), str(run_id)]
    if batches is not None:
        args.append(str(batches))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=ROOT)
    lines: list[str] = []
    opened = threading.Event()

    def pump() -> None:
        for raw in proc.stdout:  # type: ignore[union-attr]
            line = raw.decode()
            lines.append(line)
            if line.startswith("OPEN"):
                opened.set()
        opened.set()  # EOF: the child is gone (possibly killed while recovering)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if kill_after is not None:
        # The random window starts once the WAL is open: interpreter start-up and imports are
        # not what the harness is testing, and on a loaded machine they can take most of a second.
        opened.wait(timeout=60)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    reader.join(timeout=120)
    err = proc.stderr.read()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    acked = {}
    for line in lines:
        parts = line.split()
        if parts and parts[0] == "ACK":
            acked[(int(parts[1]), int(parts[2]))] = int(parts[3])
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}): {err.decode()[-2000:]}")
    return acked, proc.returncode


def verify(directory: Path, acked: dict[tuple[int, int], int] | set[tuple[int, int]]
           ) -> dict[tuple[int, int], int]:
    """Checks the log against the acknowledged batches; returns {batch: file seq} of all held."""
    seen: dict[tuple[int, int], int] = {}
    with FileWal(directory, file_size_limit=1 << 20) as wal:
        for entry in wal.read():
            batch = decode(entry.payload)  # a partial batch fails here
            key = batch_id(batch)
            assert key not in seen, f"batch {key} appears twice"
            seen[key] = entry.position.seq
            assert batch.equals(make_batch(*key)), f"batch {key} has different bytes"
    missing = set(acked) - seen.keys()
    assert not missing, f"acknowledged batches lost: {sorted(missing)[:10]}"
    return seen


def retire_checked_files(directory: Path, acked: dict[tuple[int, int], int],
                         seen: dict[tuple[int, int], int], retired: set[tuple[int, int]]) -> None:
    """Drops the files before the newest one once they have been verified, remembering their
    batches in ``retired`` (a batch seen again later is a duplicate), so each round reads a bounded
    log; the newest file is always kept and re-checked."""
    with FileWal(directory, file_size_limit=1 << 20) as wal:
        newest = max(int(p.stem) for p in directory.glob("*.log"))
        wal.truncate_before(Position(newest, 0))
    retired.update(k for k, seq in seen.items() if seq < newest)
    for key in [k for k, seq in acked.items() if seq < newest]:
        del acked[key]


def crash_rounds(tmp_path: Path, rounds: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    directory = tmp_path / "wal"
    acked: dict[tuple[int, int], int] = {}
    retired: set[tuple[int, int]] = set()
    stats = {"kills": 0, "acked": 0, "failpoint_kills": 0}
    for run_id in range(1, rounds + 1):
        use_fp = rng.random() < 0.4
        failpoint = None
        if use_fp:
            name, action = FAILPOINTS[int(rng.integers(len(FAILPOINTS)))].split("=")
            failpoint = f"{name}={action}@{int(rng.integers(1, 6))}"
        got, code = run_child(directory, run_id, failpoint=failpoint,
                              kill_after=float(rng.uniform(0.2, 0.9)))
        stats["kills"] += code == -signal.SIGKILL
        stats["failpoint_kills"] += use_fp and code == -signal.SIGKILL
        acked.update(got)
        stats["acked"] += len(got)
        seen = verify(directory, acked)
        assert not (seen.keys() & retired), "a batch reappeared after its file was checked"
        retire_checked_files(directory, acked, seen, retired)
    return stats


def test_wal_survives_sigkill_quick(tmp_path):
    stats = crash_rounds(tmp_path, rounds=8, seed=7)
    assert stats["kills"] >= 7 and stats["acked"] > 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_wal_survives_200_sigkills(tmp_path):
    stats = crash_rounds(tmp_path, rounds=230, seed=2026)
    print(f"\nWAL crash harness: {stats}")
    assert stats["kills"] >= 200


def test_every_failpoint_then_clean_recovery(tmp_path):
    directory = tmp_path / "wal"
    acked: dict[tuple[int, int], int] = {}
    for run_id, fp in enumerate(FAILPOINTS, start=1):
        if fp.startswith("wal.recover"):
            # Needs a torn tail to recover: leave one (a kill mid-write), then die recovering it.
            run_child(directory, 100 + run_id, failpoint="wal.mid_write=kill@2", kill_after=30)
            got, code = run_child(directory, run_id, failpoint=fp, kill_after=30)
        else:
            got, code = run_child(directory, run_id, failpoint=fp.replace("=kill", "=kill@3"),
                                  kill_after=30)
        assert code == -signal.SIGKILL, fp
        acked.update(got)
        verify(directory, acked)
    got, code = run_child(directory, 99, failpoint=None, kill_after=None, batches=3)
    assert code == 0 and len(got) == 3
    verify(directory, {**acked, **got})


def test_full_tmpfs_keeps_acknowledged_writes(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        from vecstore.errors import StorageError

        acked = set()
        wal = FileWal(mnt / "wal", file_size_limit=1 << 20)
        with pytest.raises(StorageError):
            for i in range(1000):
                wal.append(make_batch(1, i))
                acked.add((1, i))
        with pytest.raises(StorageError, match="refuses writes"):
            wal.append(make_batch(1, 999))
        assert len(acked) > 10
        seen = {batch_id(decode(e.payload)) for e in wal.read()}
        assert acked <= seen
        wal.close()  # a poisoned Wal closes without claiming durability
        # Reopening recovers: any torn tail is truncated, every acknowledged batch is there.
        assert set(acked) <= verify(mnt / "wal", acked).keys()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
