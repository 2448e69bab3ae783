"""Reads that span several calls pin one snapshot: iterators (as pymilvus's pin their first
query's timestamp) and hybrid search's sub-searches. Writes made meanwhile are not seen."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore import AnnSearchRequest, MilvusClient, RRFRanker

DIM = 4


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    c.create_collection("c", dimension=DIM, metric_type="L2")
    c.insert("c", [{"id": i, "vector": [float(i)] * DIM} for i in range(50)])
    yield c
    c.close()


def test_query_iterator_reads_its_first_snapshot(client):
    it = client.query_iterator("c", batch_size=10)
    seen = [r["id"] for r in it.next()]
    client.delete("c", ids=[45, 46])
    client.insert("c", [{"id": 1000 + i, "vector": [0.0] * DIM} for i in range(5)])
    client.flush("c")  # moving rows between parts must not matter either
    while page := it.next():
        seen += [r["id"] for r in page]
    assert seen == list(range(50))
    assert [r["id"] for r in client.query("c", "id >= 40")] == [40, 41, 42, 43, 44, 47, 48, 49,
                                                               1000, 1001, 1002, 1003, 1004]


def test_search_iterator_reads_its_first_snapshot(client):
    it = client.search_iterator("c", [[0.0] * DIM], batch_size=7)
    seen = [h["id"] for h in it.next()]
    client.insert("c", [{"id": 1000 + i, "vector": [0.5] * DIM} for i in range(5)])
    client.delete("c", ids=[30])
    while page := it.next():
        seen += [h["id"] for h in page]
    assert seen == list(range(50))


def test_hybrid_sub_searches_share_one_snapshot(client, monkeypatch):
    """A write landing between two sub-searches is seen by neither."""
    proxy = client._proxy
    real = proxy.search
    calls = []

    def search(*args, **kwargs):
        calls.append(kwargs.get("snapshot_ts"))
        if len(calls) == 1:
            out = real(*args, **kwargs)
            client.insert("c", [{"id": 999, "vector": [3.0] * DIM}])  # between the two
            return out
        return real(*args, **kwargs)

    monkeypatch.setattr(proxy, "search", search)
    reqs = [AnnSearchRequest([[3.0] * DIM], "vector", {}, 5),
            AnnSearchRequest([[3.1] * DIM], "vector", {}, 5)]
    hits = client.hybrid_search("c", reqs, RRFRanker(), limit=5)[0]
    assert calls[0] is not None and calls[0] == calls[1]
    assert 999 not in [h["id"] for h in hits]
    assert np.isin(999, [h["id"] for h in client.search("c", [[3.0] * DIM], limit=3)[0]])
