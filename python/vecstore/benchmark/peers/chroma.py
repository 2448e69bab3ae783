"""Chroma (``chromadb.PersistentClient(path)``), embedded, on a local directory.

Ingestion: ``collection.add(ids=[str], embeddings=array)``; Chroma caps one call at
``client.get_max_batch_size()`` rows (5,461 here), so each 10,000-row batch is split into calls
below that. Chroma indexes (HNSW) as it ingests, so its ingestion includes the index build;
there is no separate flush. Durability is Chroma's default (SQLite log + HNSW files); under
strace (chromadb 1.5) ``add`` calls fsync.
Search: its HNSW (``space`` l2, ``max_neighbors`` = M, ``ef_construction``), ``ef_search`` set
per ladder step with ``collection.modify(configuration=...)``; Chroma 1.5 applies a new
``ef_search`` only when the collection is opened again, so a change also clears Chroma's client
cache and reopens it (untimed: the first call at a new ef is a warm-up). Build seconds are the whole
``add`` (the index is built during it). Ids come back as strings and are parsed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODULES = ("chromadb",)
BATCH = 10_000
K = 10  # as indexes.K


def _collection(root: Path, m: int = 16, ef_construction: int = 200) -> tuple[Any, Any]:
    import chromadb

    client = chromadb.PersistentClient(path=str(root / "chroma"))
    cfg = {"hnsw": {"space": "l2", "max_neighbors": m, "ef_construction": ef_construction}}
    return client, client.create_collection("bench", configuration=cfg)


class Sink:
    name = "Chroma"
    form = "ids + embeddings"
    durability = "fsyncs during each add (strace)"

    def __init__(self, root: Path, dim: int) -> None:
        self.client, self.collection = _collection(root)
        self.max_batch = int(self.client.get_max_batch_size())

    def prepare(self, ids: np.ndarray, vectors: np.ndarray) -> list[tuple[list[str], Any]]:
        step = min(self.max_batch, len(ids))
        return [([str(i) for i in ids[s:s + step]], vectors[s:s + step])
                for s in range(0, len(ids), step)]

    def insert(self, batch: list[tuple[list[str], Any]]) -> None:
        for ids, vectors in batch:
            self.collection.add(ids=ids, embeddings=vectors)

    def flush(self) -> None:
        pass

    def count(self) -> int:
        return int(self.collection.count())

    def close(self) -> None:
        pass


class Search:
    name = "Chroma HNSW"
    knob = "ef_search"

    def __init__(self, m: int, ef_construction: int) -> None:
        self.m, self.ef_construction = m, ef_construction
        self.ef: int | None = None

    def build(self, base: np.ndarray) -> float:
        self.dir = tempfile.mkdtemp(prefix="vecstore-bench-chroma-")
        self.client, self.collection = _collection(Path(self.dir), self.m, self.ef_construction)
        step = min(BATCH, int(self.client.get_max_batch_size()))
        start = time.perf_counter()
        for s in range(0, base.shape[0], step):
            stop = min(base.shape[0], s + step)
            self.collection.add(ids=[str(i) for i in range(s, stop)], embeddings=base[s:stop])
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        ef = max(value, K)
        if ef != self.ef:
            self._reopen(ef)
        return self.collection.query(query_embeddings=queries, n_results=K, include=[])

    def _reopen(self, ef: int) -> None:
        import chromadb
        from chromadb.api.shared_system_client import SharedSystemClient

        self.collection.modify(configuration={"hnsw": {"ef_search": ef}})
        SharedSystemClient.clear_system_cache()
        self.client = chromadb.PersistentClient(path=str(Path(self.dir) / "chroma"))
        self.collection = self.client.get_collection("bench")
        self.ef = ef

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        out = np.full((len(queries), K), -1, np.int64)
        for i, got in enumerate(self.run(queries, value)["ids"]):
            out[i, :len(got)] = [int(x) for x in got]
        return out

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
