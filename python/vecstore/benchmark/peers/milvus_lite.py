"""Milvus Lite through pymilvus' MilvusClient (a path ending in ``.db`` starts Milvus Lite).

Ingestion: rows (a list of dicts), the only form pymilvus' ``insert`` takes, into a FLAT/L2
collection, then ``flush``. Milvus Lite's own WAL policy is not configurable from the client;
under strace (milvus-lite 3.2) inserts made no fsync and ``flush`` did, so rows are durable at
the flush.
Search: its HNSW index (faiss inside Milvus Lite) with M, efConstruction as vecstore's; ``ef``
is the knob. Build seconds are ``create_index`` plus ``load_collection`` (rows inserted and
flushed before, untimed).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODULES = ("pymilvus", "milvus_lite")
COLLECTION = "bench"
BATCH = 10_000
K = 10  # as indexes.K; recall@10 throughout


def _client(root: Path) -> Any:
    import pymilvus

    return pymilvus.MilvusClient(str(root / "milvus_lite.db"))


def _create(client: Any, dim: int, index: bool) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    params = None
    if index:
        params = client.prepare_index_params()
        params.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(COLLECTION, schema=schema, index_params=params)


def rows(ids: np.ndarray, vectors: np.ndarray) -> list[dict]:
    return [{"id": int(i), "vector": v} for i, v in zip(ids, vectors)]


class Sink:
    name = "Milvus Lite (pymilvus)"
    form = "rows"
    durability = "fsync at flush, not per insert (strace)"

    def __init__(self, root: Path, dim: int) -> None:
        self.client = _client(root)
        _create(self.client, dim, index=True)

    def prepare(self, ids: np.ndarray, vectors: np.ndarray) -> list[dict]:
        return rows(ids, vectors)

    def insert(self, batch: list[dict]) -> None:
        self.client.insert(COLLECTION, batch)

    def flush(self) -> None:
        self.client.flush(COLLECTION)

    def count(self) -> int:
        res = self.client.query(COLLECTION, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def close(self) -> None:
        self.client.close()


class Search:
    name = "Milvus Lite HNSW (pymilvus)"
    knob = "ef"

    def __init__(self, m: int, ef_construction: int) -> None:
        self.m, self.ef_construction = m, ef_construction

    def build(self, base: np.ndarray) -> float:
        self.dir = tempfile.mkdtemp(prefix="vecstore-bench-milvus-lite-")
        c = self.client = _client(Path(self.dir))
        _create(c, base.shape[1], index=False)
        for start in range(0, base.shape[0], BATCH):
            stop = min(base.shape[0], start + BATCH)
            c.insert(COLLECTION, rows(np.arange(start, stop), base[start:stop]))
        c.flush(COLLECTION)
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="L2",
                      params={"M": self.m, "efConstruction": self.ef_construction})
        start = time.perf_counter()
        c.create_index(COLLECTION, idx)
        c.load_collection(COLLECTION)
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        return self.client.search(COLLECTION, queries, limit=K, output_fields=[],
                                  search_params={"metric_type": "L2", "params": {"ef": value}})

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        out = np.full((len(queries), K), -1, np.int64)
        for i, hits in enumerate(self.run(queries, value)):
            got = [h["id"] for h in hits]
            out[i, :len(got)] = got
        return out

    def close(self) -> None:
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)
