"""WAL append throughput beside the disk's own sequential-write-with-fsync speed, same run.

Each case appends 10,000-row batches of 128-d float32 vectors (5.1 MB records) into a fresh WAL
in a temporary directory on the same file system as the baseline:

- ``disk``: os.write + os.fdatasync of the same bytes per batch: the ceiling for sync="always";
- ``wal-always`` / ``wal-batch`` / ``wal-none``: ``Wal.append`` under each sync policy;
- ``wal-always-4threads``: four threads appending 2,500-row batches (group commit).

Run: ``python -m pytest bench/bench_wal.py --benchmark-group-by=group`` or, for a table of
ratios, ``python bench/bench_wal.py [--scale 1.0]``. Size scales with VECSTORE_BENCH_SCALE
(total bytes written per case: 200 MB x scale, at least 2 batches).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vecstore.storage.wal import FileWal

ROWS = 10_000
DIM = 128
BATCH = np.random.default_rng(5).standard_normal((ROWS, DIM)).astype(np.float32)
BATCH_BYTES = BATCH.nbytes


def batches_for(scale: float) -> int:
    return max(2, int(200e6 * scale) // BATCH_BYTES)


def write_disk(directory: Path, n: int) -> None:
    fd = os.open(directory / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(BATCH).cast("B")
        for _ in range(n):
            os.write(fd, view)
            os.fdatasync(fd)
    finally:
        os.close(fd)


def write_wal(directory: Path, n: int, policy: str, threads: int = 1) -> None:
    wal = FileWal(directory / "wal", sync=policy, file_size_limit=256 << 20)
    try:
        if threads == 1:
            for _ in range(n):
                wal.append(BATCH)
        else:
            part = BATCH[: ROWS // threads]

            def work():
                for _ in range(n):
                    wal.append(part)

            ts = [threading.Thread(target=work) for _ in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
    finally:
        wal.close()


CASES = {
    "disk": lambda d, n: write_disk(d, n),
    "wal-always": lambda d, n: write_wal(d, n, "always"),
    "wal-batch": lambda d, n: write_wal(d, n, "batch"),
    "wal-none": lambda d, n: write_wal(d, n, "none"),
    "wal-always-4threads": lambda d, n: write_wal(d, n, "always", threads=4),
}


def fresh_dir(base: Path, name: str) -> Path:
    d = base / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


@pytest.mark.parametrize("case", list(CASES))
def test_wal_append(benchmark, tmp_path, case):
    n = batches_for(float(os.environ.get("VECSTORE_BENCH_SCALE", "1.0")))
    benchmark.group = "wal append: 10k x 128 float32 batches"
    benchmark.extra_info.update(rows=ROWS * n, dim=DIM, batch_bytes=BATCH_BYTES, batches=n)
    counter = iter(range(10**6))
    benchmark.pedantic(lambda: CASES[case](fresh_dir(tmp_path, f"r{next(counter)}"), n),
                       rounds=2, iterations=1, warmup_rounds=0)
    if benchmark.stats is not None:
        mbps = BATCH_BYTES * n / benchmark.stats.stats.min / 1e6
        benchmark.extra_info["MB_per_s"] = round(mbps, 1)
        benchmark.extra_info["rows_per_s"] = round(ROWS * n / benchmark.stats.stats.min)
    if case.startswith("wal"):
        # The WAL holds exactly what was appended.
        wal_dir = next(tmp_path.glob("r*/wal"))
        with FileWal(wal_dir) as wal:
            assert sum(len(e.payload) for e in wal.read()) == BATCH_BYTES * n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default=None, help="directory on the disk to measure (default: tmp)")
    args = p.parse_args()
    n = batches_for(args.scale)
    base = Path(tempfile.mkdtemp(prefix="vecstore-bench-wal-", dir=args.dir))
    best: dict[str, float] = {}
    try:
        for _ in range(args.repeat):  # interleaved rounds, so drift hits every case alike
            for name, fn in CASES.items():
                d = fresh_dir(base, name)
                t = time.perf_counter()
                fn(d, n)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
                shutil.rmtree(d)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    disk = BATCH_BYTES * n / best["disk"] / 1e6
    print(f"{n} batches of {ROWS:,} x {DIM} float32 ({BATCH_BYTES / 1e6:.1f} MB each), best of "
          f"{args.repeat}, file system of {base.parent}\n")
    print("| case | MB/s | rows/s | vs disk write+fdatasync |")
    print("|---|---|---|---|")
    for name, secs in best.items():
        mbps = BATCH_BYTES * n / secs / 1e6
        print(f"| {name} | {mbps:,.0f} | {ROWS * n / secs:,.0f} | {mbps / disk:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
