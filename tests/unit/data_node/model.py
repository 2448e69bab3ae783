"""A Python dict model of one quick-setup collection ("id" int64 pk, "vector", dynamic "n") and
the checks that compare a MilvusClient against it with numpy brute force."""

from __future__ import annotations

import numpy as np

from vecstore import MilvusClient

DIM = 8
NAME = "docs"


class Model:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.rows: dict[int, tuple[np.ndarray, int]] = {}
        self.version = 0

    def rows_for(self, ids: list[int]) -> list[dict]:
        """New row values for ``ids`` (each call a new version), recorded in the model."""
        self.version += 1
        vecs = self.rng.standard_normal((len(ids), DIM)).astype(np.float32)
        out = []
        for i, pk in enumerate(ids):
            self.rows[pk] = (vecs[i], self.version)
            out.append({"id": pk, "vector": vecs[i].tolist(), "n": self.version})
        return out

    def insert(self, client: MilvusClient, ids: list[int]) -> None:
        client.insert(NAME, self.rows_for(ids))

    def upsert(self, client: MilvusClient, ids: list[int]) -> None:
        client.upsert(NAME, self.rows_for(ids))

    def delete(self, client: MilvusClient, ids: list[int]) -> None:
        client.delete(NAME, ids=ids)
        for pk in ids:
            self.rows.pop(pk, None)


def create(client: MilvusClient) -> int:
    client.create_collection(NAME, dimension=DIM, metric_type="L2", consistency_level="Strong")
    return client.describe_collection(NAME)["collection_id"]


def all_rows(client: MilvusClient) -> dict[int, int]:
    got = client.query(NAME, filter="id >= 0", output_fields=["id", "n"],
                       consistency_level="Strong")
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)), "a row is visible twice"
    return {r["id"]: r["n"] for r in got}


def check(client: MilvusClient, model: Model, queries: np.ndarray, k: int = 10) -> None:
    """Every live row once with its latest version; search = numpy brute force."""
    assert all_rows(client) == {pk: v for pk, (_, v) in model.rows.items()}
    ids = np.array(sorted(model.rows), dtype=np.int64)
    res = client.search(NAME, queries.tolist(), limit=k, consistency_level="Strong")
    if ids.size == 0:
        assert all(len(h) == 0 for h in res)
        return
    vecs = np.stack([model.rows[int(pk)][0] for pk in ids]).astype(np.float64)
    for q, hits in zip(queries, res):
        d = ((vecs - q.astype(np.float64)) ** 2).sum(axis=1)
        want = ids[np.argsort(d, kind="stable")[:k]].tolist()
        assert [h["id"] for h in hits] == want


def stored_rows(client: MilvusClient, cid: int) -> int:
    """Rows physically held by the collection's sealed segments."""
    return sum(s.segment.rows for _, s in client._dep.query.segments(cid))


def segment_ids(client: MilvusClient, cid: int) -> list[int]:
    return [sid for sid, _ in client._dep.query.segments(cid)]
