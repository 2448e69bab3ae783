"""Random operation sequences against a reference model (a dict of live rows plus numpy brute
force): inserts, deletes (also of rows later re-inserted), flushes and reopenings, checked after
every step through count(*), get and search."""

from __future__ import annotations

import numpy as np
import pytest

from tests.reference import ref_cdist
from vecstore import MilvusClient

DIM = 8


def check(client, model, rng, metric):
    assert client.query("c", filter="", output_fields=["count(*)"]) == [{"count(*)": len(model)}]
    if not model:
        return
    ids = np.array(sorted(model))
    vecs = np.stack([model[i][0] for i in ids])
    sample = rng.choice(ids, size=min(5, ids.size), replace=False).tolist()
    got = client.get("c", sample, output_fields=["tag", "vector"])
    assert sorted(r["id"] for r in got) == sorted(sample)
    for r in got:
        assert r["tag"] == model[r["id"]][1]
        np.testing.assert_array_equal(np.asarray(r["vector"], np.float32), model[r["id"]][0])
    q = rng.standard_normal(DIM).astype(np.float32)
    k = min(6, ids.size)
    hits = client.search("c", [q], limit=k)[0]
    d = ref_cdist(q[None], vecs, metric)[0]
    key = -d if metric in ("IP", "COSINE") else d
    order = np.lexsort((ids, key))
    want = ids[order[:k]]
    got_ids = [h["id"] for h in hits]
    assert len(got_ids) == k and len(set(got_ids)) == k
    # Tie-aware: every hit's distance is its row's true distance, and no hit is worse than the
    # true k-th best (so the set equals the oracle's up to rows tied at the boundary).
    kth = key[order[k - 1]]
    for h in hits:
        true = d[np.searchsorted(ids, h["id"])]
        assert h["distance"] == pytest.approx(true, rel=1e-4, abs=1e-4)
        assert (-true if metric in ("IP", "COSINE") else true) <= kth + 1e-4
    assert len(set(got_ids) - set(want.tolist())) <= 1  # at most a boundary tie swaps


@pytest.mark.parametrize("seed,metric", [(1, "L2"), (2, "COSINE"), (3, "IP")])
def test_random_sequences_match_the_model(tmp_path, seed, metric):
    rng = np.random.default_rng(seed)
    path = str(tmp_path / "db")
    client = MilvusClient(path)
    client.create_collection("c", dimension=DIM, metric_type=metric)
    model: dict[int, tuple[np.ndarray, str]] = {}
    next_id = 0
    try:
        for step in range(40):
            op = rng.choice(["insert", "insert", "delete", "reinsert", "flush", "reopen"])
            if op == "insert":
                n = int(rng.integers(1, 40))
                vecs = rng.standard_normal((n, DIM)).astype(np.float32)
                rows = [{"id": next_id + i, "vector": vecs[i], "tag": f"t{step}"}
                        for i in range(n)]
                client.insert("c", rows)
                for i in range(n):
                    model[next_id + i] = (vecs[i], f"t{step}")
                next_id += n
            elif op == "delete" and model:
                victims = rng.choice(sorted(model), size=min(len(model), 5), replace=False)
                assert client.delete("c", ids=victims.tolist())["delete_count"] == victims.size
                for v in victims.tolist():
                    model.pop(v)
            elif op == "reinsert" and next_id:
                pk = int(rng.integers(0, next_id))
                if pk in model:
                    continue  # duplicates of a live key are out of this model's scope
                vec = rng.standard_normal(DIM).astype(np.float32)
                client.insert("c", [{"id": pk, "vector": vec, "tag": f"re{step}"}])
                model[pk] = (vec, f"re{step}")
            elif op == "flush":
                client.flush("c")
            elif op == "reopen":
                client.close()
                client = MilvusClient(path)
            check(client, model, rng, metric)
    finally:
        client.close()
