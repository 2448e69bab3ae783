"""Bulk import of a Parquet file: rows/s and peak RSS against the batch size.

Data: ``n`` = 1M x 128 float32 vectors + int64 ids at full size (``VECSTORE_BENCH_SCALE``
scales n), written once per session as a Parquet file (row groups of 64 Ki rows) in a temp dir.
Each measurement imports it into a fresh data directory in a child process (FLAT index, so no
index build runs), which reports the import's wall time and its peak RSS (``VmHWM`` of
/proc/self/status, or ``ru_maxrss``) next to its RSS just before the import: a child measures
only itself, never the parent's copy of the data.

The bar (issue 7): the import runs in bounded memory, peak RSS increase under 2 x one batch of
decoded rows plus the index (0 here: FLAT builds none). The child reports the peak twice:
``import peak`` is VmHWM just before the commit (reading, validating, writing segments: what
the bar is about), ``peak`` is VmHWM at the end, which also counts the imported segments' file
pages that the query node maps and checksums when it loads them after the commit (file-backed,
clean, reclaimable page cache: ~1x the data imported, shown as ``RssFile`` growth).

Memory model: one batch of decoded rows, the Parquet reader's own buffers (pre-buffering off, a
1 MiB read buffer), the keys and scalar columns of the segment being filled; vector rows are
written to the segment's files batch by batch and not held.

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
from pathlib import Path

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


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (0 where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_bytes() -> int:
    return _status("VmRSS")


def child(parquet: str, data: str, batch: int) -> dict:
    """One import in this process (run as a child): timings and memory."""
    from vecstore import MilvusClient
    from vecstore.transport.embedded import EmbeddedDeployment

    at_commit: dict = {}
    commit = EmbeddedDeployment.commit_import

    def measured_commit(self, *args, **kwargs):  # the import's own peak, before segments load
        at_commit.update(peak=_peak_rss_bytes(), file=_status("RssFile"))
        return commit(self, *args, **kwargs)

    EmbeddedDeployment.commit_import = measured_commit
    with MilvusClient(data) as c:
        c.create_collection("bench", dimension=DIM, metric_type="L2",
                            index_params=[{"field_name": "vector", "index_type": "FLAT",
                                           "metric_type": "L2"}])
        before, file_before = _rss_bytes(), _status("RssFile")
        start = time.perf_counter()
        job = c.bulk_import("bench", [parquet], batch_size=batch)
        state = c.wait_for_import(job)
        seconds = time.perf_counter() - start
        peak, file_after = _peak_rss_bytes(), _status("RssFile")
        rows = c.get_collection_stats("bench")["row_count"]
    return {"state": state["state"], "reason": state["reason"], "rows": rows,
            "seconds": seconds, "rows_per_s": rows / seconds, "rss_before": before,
            "peak_rss": peak, "import_peak_rss": at_commit.get("peak", peak),
            "file_rss_before": file_before, "file_rss_at_commit": at_commit.get("file", 0),
            "file_rss_after": file_after, "batch_bytes": batch * (DIM * 4 + 8),
            "bar_bytes": 2 * batch * (DIM * 4 + 8)}  # 2 x one batch + index (FLAT: none)


def measure(parquet: str, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        # The same vecstore as this process (installed, or the source tree with its _core).
        import vecstore

        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(vecstore.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
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
    growth = result["import_peak_rss"] - result["rss_before"]
    benchmark.extra_info.update(n=n, dim=DIM, batch=batch, rows_per_s=round(result["rows_per_s"]),
                                peak_rss_mib=round(result["peak_rss"] / (1 << 20)),
                                import_peak_rss_mib=round(result["import_peak_rss"] / (1 << 20)),
                                rss_before_mib=round(result["rss_before"] / (1 << 20)),
                                bar_mib=round(result["bar_bytes"] / (1 << 20)),
                                bar_met=growth <= result["bar_bytes"])


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
        print("bar: import peak RSS - RSS before < 2 x batch data + index (FLAT: 0)")
        print(f"{'batch':>8} {'batch data':>11} {'seconds':>8} {'rows/s':>10} "
              f"{'RSS before':>11} {'import peak':>12} {'growth':>9} {'bar':>8} {'':>4} "
              f"{'peak after load':>16} {'file pages loaded':>18}")
        for batch in batches:
            r = measure(path, batch)
            if r["state"] != "Completed":
                print(f"{batch:>8} failed: {r['reason']}")
                continue
            growth = r["import_peak_rss"] - r["rss_before"]
            verdict = "pass" if growth <= r["bar_bytes"] else "FAIL"
            print(f"{batch:>8} {_mib(r['batch_bytes']):>11} {r['seconds']:>8.1f} "
                  f"{r['rows_per_s']:>10,.0f} {_mib(r['rss_before']):>11} "
                  f"{_mib(r['import_peak_rss']):>12} {_mib(growth):>9} "
                  f"{_mib(r['bar_bytes']):>8} {verdict:>4} {_mib(r['peak_rss']):>16} "
                  f"{_mib(r['file_rss_after'] - r['file_rss_at_commit']):>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
