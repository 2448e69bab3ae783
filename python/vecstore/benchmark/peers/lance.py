"""LanceDB (``lancedb.connect(dir)``), embedded, on a local directory.

Ingestion: ``create_table`` with the schema (untimed), then ``table.add(pyarrow.Table)`` per
batch; every ``add`` commits a new table version (a data file and a manifest per call). There is
no separate flush, and no fsync: under strace, lancedb 0.40 ``add`` calls made no fsync,
fdatasync or sync_file_range on any thread, so its rows/s is page-cache speed, not durable.
Search: ``IVF_HNSW_FLAT`` (``lancedb.index.HnswFlat``) with one partition, so one HNSW graph
over the float32 vectors (the closest of Lance's indexes to vecstore's HNSW), ``m`` and
``ef_construction`` as vecstore's; ``ef`` is the knob, ``nprobes`` is 1 (all partitions).
Build seconds are ``create_index``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODULES = ("lancedb", "pyarrow")
BATCH = 10_000
K = 10  # as indexes.K


def arrow_batch(ids: np.ndarray, vectors: np.ndarray) -> Any:
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.table({"id": pa.array(ids, pa.int64()),
                     "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})


def _table(root: Path, dim: int) -> Any:
    import lancedb

    db = lancedb.connect(str(root / "lancedb"))
    schema = arrow_batch(np.zeros(0, np.int64), np.zeros((0, dim), np.float32)).schema
    return db.create_table("bench", schema=schema)


class Sink:
    name = "LanceDB"
    form = "pyarrow table"
    durability = "no fsync seen (strace, lancedb 0.40): page cache only"

    def __init__(self, root: Path, dim: int) -> None:
        self.table = _table(root, dim)

    def prepare(self, ids: np.ndarray, vectors: np.ndarray) -> Any:
        return arrow_batch(ids, vectors)

    def insert(self, batch: Any) -> None:
        self.table.add(batch)

    def flush(self) -> None:
        pass  # each add is its own committed version

    def count(self) -> int:
        return int(self.table.count_rows())

    def close(self) -> None:
        pass


class Search:
    name = "LanceDB IVF_HNSW_FLAT"
    knob = "ef"

    def __init__(self, m: int, ef_construction: int) -> None:
        self.m, self.ef_construction = m, ef_construction

    def build(self, base: np.ndarray) -> float:
        self.dir = tempfile.mkdtemp(prefix="vecstore-bench-lance-")
        self.table = _table(Path(self.dir), base.shape[1])
        for start in range(0, base.shape[0], BATCH):
            stop = min(base.shape[0], start + BATCH)
            self.table.add(arrow_batch(np.arange(start, stop), base[start:stop]))
        from lancedb.index import HnswFlat

        config = HnswFlat(distance_type="l2", num_partitions=1, m=self.m,
                          ef_construction=self.ef_construction)
        start = time.perf_counter()
        self.table.create_index("vector", config=config)
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        q = queries[0] if len(queries) == 1 else queries
        return (self.table.search(q).limit(K).nprobes(1).ef(max(value, K))
                .select(["id", "_distance"]).to_arrow())

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        res = self.run(queries, value)
        out = np.full((len(queries), K), -1, np.int64)
        got = res["id"].to_numpy()
        which = (res["query_index"].to_numpy() if "query_index" in res.column_names
                 else np.zeros(len(got), np.int64))
        dist = res["_distance"].to_numpy()
        for i in range(len(queries)):
            sel = np.flatnonzero(which == i)
            sel = sel[np.argsort(dist[sel], kind="stable")][:K]
            out[i, :len(sel)] = got[sel]
        return out

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
