"""Bulk import of a Parquet file: rows/s and peak RSS against the batch size.

Data: ``n`` = 1M x 128 float32 vectors + int64 ids at full size (``VECSTORE_BENCH_SCALE``
scales n), written once per session as a Parquet file (row groups of 64 Ki rows) in a temp dir.
Each measurement imports it into a fresh data directory in a child process (FLAT index, so no
index build runs), which reports the import's wall time and its peak RSS (``VmHWM`` of
/proc/self/status, or ``ru_maxrss``) next to its RSS just before the import: a child measures
only itself, never the parent's copy of the data.

Memory model: one batch of decoded rows, the segment being filled (up to the data node's seal
size, 64 MiB by default) and one vector file image while a segment is written. The peak RSS
measured is higher: it also counts the imported segments' mapped pages once the query node
loads (and checksums) them after the commit, and what Arrow's allocator keeps after a batch.

    python -m pytest bench/bench_bulk_import.py -s --benchmark-group-by=group
    python bench/bench_bulk_import.py [BATCH ...]     # a table for several batch sizes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

DIM = 128
CHUNK = 1 << 16
BATCHES = (8192, 65536)


def rows_for(scale: float) -> int:
    return max(2_000, round(1_000_000 * scale))


def write_parquet(path: str, n: int, seed: int = 7) -> None:
    """n rows (id int64, vector fixed_size_list<float32>[DIM]) in row groups of CHUNK rows,
    generated a chunk at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([("id", pa.int64()), ("vector", pa.list_(pa.float32(), DIM))])
    with pq.ParquetWriter(path, schema) as w:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            vecs = rng.standard_normal((m, DIM), dtype=np.float32)
            w.write_table(pa.table({
                "id": np.arange(start, start + m, dtype=np.int64),
                "vector": pa.FixedSizeListArray.from_arrays(vecs.reshape(-1), DIM)},
                schema=schema))


def _peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def child(parquet: str, data: str, batch: int) -> dict:
    """One import in this process (run as a child): timings and memory."""
    from vecstore import MilvusClient

    with MilvusClient(data) as c:
        c.create_collection("bench", dimension=DIM, metric_type="L2",
                            index_params=[{"field_name": "vector", "index_type": "FLAT",
                                           "metric_type": "L2"}])
        before = _rss_bytes()
        start = time.perf_counter()
        job = c.bulk_import("bench", [parquet], batch_size=batch)
        state = c.wait_for_import(job)
        seconds = time.perf_counter() - start
        peak = _peak_rss_bytes()
        rows = c.get_collection_stats("bench")["row_count"]
    return {"state": state["state"], "reason": state["reason"], "rows": rows,
            "seconds": seconds, "rows_per_s": rows / seconds, "rss_before": before,
            "peak_rss": peak, "batch_bytes": batch * (DIM * 4 + 8)}


def measure(parquet: str, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(os.path.dirname(__file__), "..", "python"), env.get("PYTHONPATH", "")])
        out = subprocess.run([sys.executable, __file__, "--child", parquet,
                              os.path.join(tmp, "db"), str(batch)],
                             check=True, capture_output=True, text=True, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory, sizes):
    n = rows_for(sizes.scale)
    path = str(tmp_path_factory.mktemp("bulk") / "rows.parquet")
    write_parquet(path, n)
    return path, n


@pytest.mark.parametrize("batch", BATCHES)
def test_bulk_import_parquet(benchmark, parquet_file, batch):
    path, n = parquet_file
    benchmark.group = "bulk-import"
    result = benchmark.pedantic(measure, args=(path, batch), rounds=1, iterations=1)
    assert result["state"] == "Completed", result["reason"]
    assert result["rows"] == n
    benchmark.extra_info.update(n=n, dim=DIM, batch=batch, rows_per_s=round(result["rows_per_s"]),
                                peak_rss_mib=round(result["peak_rss"] / (1 << 20)),
                                rss_before_mib=round(result["rss_before"] / (1 << 20)))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        print(json.dumps(child(argv[1], argv[2], int(argv[3]))))
        return 0
    scale = float(os.environ.get("VECSTORE_BENCH_SCALE", "1.0"))
    n = rows_for(scale)
    batches = [int(a) for a in argv] or list(BATCHES)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.parquet")
        t = time.perf_counter()
        write_parquet(path, n)
        print(f"{n:,} x {DIM} float32 + int64 id: Parquet {_mib(os.path.getsize(path))}, "
              f"written in {time.perf_counter() - t:.1f} s")
        print(f"{'batch':>8} {'batch data':>11} {'seconds':>8} {'rows/s':>10} "
              f"{'RSS before':>11} {'peak RSS':>10} {'peak - before':>14}")
        for batch in batches:
            r = measure(path, batch)
            if r["state"] != "Completed":
                print(f"{batch:>8} failed: {r['reason']}")
                continue
            print(f"{batch:>8} {_mib(r['batch_bytes']):>11} {r['seconds']:>8.1f} "
                  f"{r['rows_per_s']:>10,.0f} {_mib(r['rss_before']):>11} "
                  f"{_mib(r['peak_rss']):>10} {_mib(r['peak_rss'] - r['rss_before']):>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
