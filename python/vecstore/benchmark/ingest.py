"""Ingestion benchmark: durable inserts of N x dim float32 rows with an int64 id, in 10,000-row
batches then a flush, vecstore beside Milvus Lite, LanceDB and Chroma and beside the disk itself.

Every system gets the same rows (``clustered(n, dim)``), one system at a time, each in its own
fresh directory under one parent directory (``--dir``, default the temp dir), deleted after it:

- ``disk``: ``os.write`` + ``os.fdatasync`` of one batch's bytes (10,000 x (4 x dim + 8)) per
  batch into a file in that parent directory, measured before and after the systems; the faster
  of the two gives the bandwidth, and bandwidth / bytes-per-row the rows/s ceiling for inserts
  that are acknowledged only once on disk;
- ``vecstore (columns)``: ``MilvusClient.insert`` of a dict of numpy arrays per batch, then
  ``flush``. The WAL's sync policy is ``always`` (``FileWal``'s default; the streaming node opens
  channel WALs without options, so an insert returns only after its record is fsynced); the
  policy is read back from the open WAL and reported;
- ``vecstore (rows)``: the same with a list of dicts per batch (pymilvus' form);
- the peers (:mod:`vecstore.benchmark.peers`), each only if importable. Slow peers (Milvus Lite
  and Chroma) stop after ``budget_s`` seconds of inserting; their rows/s is over the rows done.

Turning a batch into the system's input form (dicts, pyarrow tables, string ids) is not timed;
rows/s = rows inserted / (insert seconds + flush seconds). Setup (creating the collection) is
not timed either. Bars (issue 7): vecstore columns >= 30x Milvus Lite, >= 1.0x LanceDB, >= 3x
Chroma, >= 50% of the disk's write+fdatasync rows/s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vecstore import DataType, MilvusClient
from vecstore.benchmark import peers

BATCH = 10_000
COLLECTION = "bench"
# (peer, minimum vecstore/peer ratio); "disk" is a fraction of the ceiling.
BARS = {"milvus_lite": 30.0, "lance": 1.0, "chroma": 3.0, "disk": 0.5}
SLOW = ("milvus_lite", "chroma")


def bytes_per_row(dim: int) -> int:
    return 4 * dim + 8


def disk_rows_per_s(directory: Path, n: int, dim: int) -> dict[str, Any]:
    """Sequential os.write + os.fdatasync of one batch's bytes per batch, for n rows' worth
    (at least 10 batches, at most 1 GB)."""
    chunk = np.random.default_rng(5).integers(0, 255, BATCH * bytes_per_row(dim), np.uint8)
    count = max(10, min(n // BATCH, (1 << 30) // chunk.nbytes))
    path = directory / "disk-bandwidth.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(chunk)
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, view)
            os.fdatasync(fd)
        took = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()
    return {"mb_per_s": chunk.nbytes * count / took / 1e6, "rows_per_s": BATCH * count / took,
            "bytes": chunk.nbytes * count}


class VecstoreSink:
    """vecstore's MilvusClient on its own directory, FLAT/L2 collection ``id`` + ``vector``."""

    def __init__(self, root: Path, dim: int, form: str) -> None:
        self.form = form
        self.name = f"vecstore ({form})"
        self.durability = "fsync per insert (WAL), segments at flush"
        self.client = MilvusClient(str(root / "vecstore"))
        schema = self.client.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        idx = self.client.prepare_index_params()
        idx.add_index("vector", index_type="FLAT", metric_type="L2")
        self.client.create_collection(COLLECTION, schema=schema, index_params=idx)

    def prepare(self, ids: np.ndarray, vectors: np.ndarray) -> Any:
        if self.form == "columns":
            return {"id": ids, "vector": vectors}
        return [{"id": int(i), "vector": v} for i, v in zip(ids, vectors)]

    def insert(self, batch: Any) -> None:
        self.client.insert(COLLECTION, batch)

    def flush(self) -> None:
        self.client.flush(COLLECTION)

    def count(self) -> int:
        res = self.client.query(COLLECTION, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def wal_policies(self) -> list[str]:
        """The sync policy of each open WAL (reads the embedded deployment's data directory)."""
        datadir = getattr(getattr(self.client, "_dep", None), "datadir", None)
        wals = getattr(datadir, "_wals", {}) or {}
        return sorted({str(w.sync_policy.value) for w in wals.values()})

    def close(self) -> None:
        self.client.close()


def drive(sink: Any, ids: np.ndarray, vectors: np.ndarray, budget_s: float) -> dict[str, Any]:
    """Inserts batch after batch (until all rows, or until ``budget_s`` seconds of inserting
    when it is > 0), then flushes; returns rows, seconds and rows/s."""
    insert_s, done = 0.0, 0
    for start in range(0, len(ids), BATCH):
        stop = min(len(ids), start + BATCH)
        batch = sink.prepare(ids[start:stop], vectors[start:stop])
        t = time.perf_counter()
        sink.insert(batch)
        insert_s += time.perf_counter() - t
        done = stop
        if budget_s > 0 and insert_s >= budget_s:
            break
    t = time.perf_counter()
    sink.flush()
    flush_s = time.perf_counter() - t
    return {"rows": done, "insert_s": insert_s, "flush_s": flush_s,
            "rows_per_s": done / (insert_s + flush_s)}


def one_system(key: str, make: Any, parent: Path, ids: np.ndarray, vectors: np.ndarray,
               budget_s: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=parent))
    try:
        sink = make(root)
        try:
            row = {"key": key, "system": sink.name, "form": sink.form,
                   "durability": sink.durability,
                   **drive(sink, ids, vectors, budget_s)}
            row["count_check"] = sink.count() == row["rows"]
            if isinstance(sink, VecstoreSink):
                row["wal_sync"] = ",".join(sink.wal_policies()) or "unknown"
        finally:
            sink.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return row


def run(n: int, dim: int, budget_s: float, directory: str | None = None,
        log: Any = print, repeat: int = 1) -> dict[str, Any]:
    """The whole ingestion comparison; returns the JSON-able result (see ``table``). With
    ``repeat`` > 1 the systems run in interleaved rounds (so that load from elsewhere hits all
    of them) and each keeps its best round; ``rounds`` lists every round's rows/s."""
    from vecstore.benchmark.indexes import clustered

    vectors = clustered(n, 0, dim)[0]
    ids = np.arange(n, dtype=np.int64)
    parent = Path(tempfile.mkdtemp(prefix="vecstore-bench-ingest-", dir=directory))
    systems: list[tuple[str, Any, float]] = [
        ("vecstore", lambda r: VecstoreSink(r, dim, "columns"), 0.0),
        ("vecstore_rows", lambda r: VecstoreSink(r, dim, "rows"), 0.0),
    ]
    skipped = []
    for name in peers.PEERS:
        module = peers.load(name)
        if module is None:
            skipped.append(name)
            continue
        systems.append((name, lambda r, m=module: m.Sink(r, dim),
                        budget_s if name in SLOW else 0.0))
    result: dict[str, Any] = {"n": n, "dim": dim, "batch": BATCH, "budget_s": budget_s,
                              "bytes_per_row": bytes_per_row(dim), "dir": str(parent),
                              "repeat": repeat, "skipped": skipped, "systems": []}
    best: dict[str, dict[str, Any]] = {}
    disks: list[dict[str, Any]] = []

    def disk() -> None:
        disks.append(disk_rows_per_s(parent, n, dim))
        log(f"  disk write+fdatasync: {disks[-1]['mb_per_s']:.0f} MB/s", flush=True)

    try:
        for _ in range(max(1, repeat)):
            disk()
            for key, make, budget in systems:
                row = one_system(key, make, parent, ids, vectors, budget)
                rounds = best.get(key, {}).get("rounds", []) + [row["rows_per_s"]]
                if key not in best or row["rows_per_s"] > best[key]["rows_per_s"]:
                    best[key] = row
                best[key]["rounds"] = rounds
                log(f"  {row['system']}: {row['rows']:,} rows, {row['rows_per_s']:,.0f} "
                    "rows/s", flush=True)
        disk()
        result["systems"] = [best[key] for key, _, _ in systems]
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    result["disk_runs"] = disks
    result["disk"] = max(disks, key=lambda d: d["rows_per_s"])
    result["bars"] = bars(result)
    return result


def bars(result: dict[str, Any]) -> list[dict[str, Any]]:
    """vecstore (columns) against each bar: ratio, target, pass."""
    by_key = {r["key"]: r for r in result["systems"]}
    us = by_key["vecstore"]["rows_per_s"]
    out = []
    for key, target in BARS.items():
        if key == "disk":
            ratio, name = us / result["disk"]["rows_per_s"], "disk write+fdatasync ceiling"
        elif key in by_key:
            ratio, name = us / by_key[key]["rows_per_s"], by_key[key]["system"]
        else:
            continue
        out.append({"against": name, "ratio": ratio, "target": target, "pass": ratio >= target})
    return out


def table(result: dict[str, Any]) -> str:
    n, dim = result["n"], result["dim"]
    disk = result["disk"]
    us = next(r for r in result["systems"] if r["key"] == "vecstore")["rows_per_s"]
    lines = [
        f"Ingestion: {n:,} x {dim} float32 rows + int64 id (generated, clustered), "
        f"{result['batch']:,}-row batches then flush; rows/s = rows / (insert + flush seconds). "
        f"Slow peers stop after {result['budget_s']:.0f} s of inserting."
        + (f" Best of {result['repeat']} interleaved rounds." if result["repeat"] > 1 else ""),
        "",
        "| system | input form | durability | rows inserted | insert s | flush s | rows/s "
        "| vecstore (columns) / this |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["systems"]:
        form = r["form"] + (f", WAL sync={r['wal_sync']}" if "wal_sync" in r else "")
        lines.append(f"| {r['system']} | {form} | {r['durability']} | {r['rows']:,} | "
                     f"{r['insert_s']:.2f} | "
                     f"{r['flush_s']:.2f} | {r['rows_per_s']:,.0f} | "
                     f"{us / r['rows_per_s']:.2f}x |")
    lines.append(f"| disk write+fdatasync ceiling | {disk['mb_per_s']:,.0f} MB/s / "
                 f"{result['bytes_per_row']} B per row | fdatasync per batch | | | | "
                 f"{disk['rows_per_s']:,.0f} | "
                 f"{us / disk['rows_per_s']:.2f}x |")
    lines += ["", "| bar (issue 7) | measured | target | result |", "|---|---:|---:|---|"]
    for b in result["bars"]:
        if b["against"].startswith("disk"):
            what, got, want = "vecstore share of disk bandwidth", f"{b['ratio']:.0%}", \
                f">= {b['target']:.0%}"
        else:
            what, got, want = f"vecstore / {b['against']}", f"{b['ratio']:.2f}x", \
                f">= {b['target']:g}x"
        lines.append(f"| {what} | {got} | {want} | {'PASS' if b['pass'] else 'FAIL'} |")
    if result["skipped"]:
        lines.append("")
        lines.append(f"Not installed, skipped: {', '.join(result['skipped'])}.")
    return "\n".join(lines)
