"""MilvusClient.compact / get_compaction_state / truncate_collection: pymilvus's shapes and
errors, with the background thread running as it does for users."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vecstore import MilvusClient
from vecstore.client.milvus_client import NotSupported
from vecstore.coordinator.errors import CollectionNotFound
from vecstore.errors import InvalidArgument

DIM = 8


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("VECSTORE_DATA_NODE_POLL_S", "0.01")
    c = MilvusClient(str(tmp_path / "milvus.db"))
    yield c
    c.close()


def fill(client, rng, batches=3, rows=20):
    client.create_collection("docs", dimension=DIM, consistency_level="Strong")
    for b in range(batches):
        vecs = rng.standard_normal((rows, DIM)).astype(np.float32)
        client.insert("docs", [{"id": b * rows + i, "vector": vecs[i].tolist()}
                               for i in range(rows)])
        client.delete("docs", ids=[b * rows])
        client.flush("docs")


def wait_completed(client, job):
    deadline = time.monotonic() + 60
    while client.get_compaction_state(job) != "Completed" and time.monotonic() < deadline:
        time.sleep(0.01)
    return client.get_compaction_state(job)


def test_compact_returns_a_job_that_completes(client, rng):
    fill(client, rng)
    before = client.query("docs", filter="id >= 0", output_fields=["id"])
    job = client.compact("docs")
    assert isinstance(job, int) and not isinstance(job, bool)
    assert client.get_compaction_state(job) in ("Executing", "Completed")
    assert wait_completed(client, job) == "Completed"
    assert client.compact("docs") != job  # every call is a new job
    after = client.query("docs", filter="id >= 0", output_fields=["id"])
    assert sorted(r["id"] for r in after) == sorted(r["id"] for r in before)
    assert client.get_collection_stats("docs") == {"row_count": 57}


def test_compaction_state_of_unknown_job_and_bad_arguments(client, rng):
    fill(client, rng, batches=1)
    assert client.get_compaction_state(123456) == "UndefiedState"
    with pytest.raises(InvalidArgument, match="job_id"):
        client.get_compaction_state("1")
    with pytest.raises(NotSupported, match="clustering"):
        client.compact("docs", is_clustering=True)
    with pytest.raises(CollectionNotFound):
        client.compact("nope")
    with pytest.raises(CollectionNotFound):
        client.truncate_collection("nope")


def test_truncate_collection(client, rng):
    fill(client, rng, batches=2)
    client.insert("docs", [{"id": 999, "vector": [0.0] * DIM}])
    client.truncate_collection("docs")
    assert client.query("docs", filter="id >= 0") == []
    assert client.search("docs", [[0.0] * DIM], limit=3) == [[]]
    assert client.get_collection_stats("docs") == {"row_count": 0}
    client.insert("docs", [{"id": 5, "vector": [1.0] * DIM}])
    assert [r["id"] for r in client.query("docs", filter="id >= 0")] == [5]


def test_drop_collection_while_jobs_are_queued(client, rng):
    fill(client, rng)
    job = client.compact("docs")
    client.drop_collection("docs")
    assert wait_completed(client, job) == "Completed"
    assert not client.has_collection("docs")
