"""truncate_collection: every row gone (sealed, growing, pending deletes), the collection's
definition kept, durable across reopening, writes after it kept."""

from __future__ import annotations

import numpy as np

from tests.unit.data_node.model import NAME, Model, check, create, segment_ids
from vecstore import MilvusClient


def open_client(path) -> MilvusClient:
    return MilvusClient(str(path / "db"))


def test_truncate_removes_rows_and_keeps_the_definition(tmp_path, env, rng):
    env()
    client = open_client(tmp_path)
    cid = create(client)
    client.create_partition(NAME, "p1")
    client.create_alias(NAME, "docs_alias")
    client.alter_collection_properties(NAME, {"collection.ttl.seconds": 3600})
    model = Model(rng)
    queries = rng.standard_normal((3, 8)).astype(np.float32)
    model.insert(client, list(range(50)))
    client.flush(NAME)
    model.insert(client, list(range(50, 70)))  # growing
    model.delete(client, [1, 60])
    described = client.describe_collection(NAME)
    indexes = client.list_indexes(NAME)

    client.truncate_collection(NAME)
    model.rows.clear()
    check(client, model, queries)
    assert segment_ids(client, cid) == []
    assert client._dep.datadir.objects.list(f"{cid}/") == []
    assert client.describe_collection(NAME) == described
    assert client.list_indexes(NAME) == indexes
    assert client.list_partitions(NAME) == ["_default", "p1"]
    assert client.list_aliases(NAME)["aliases"] == ["docs_alias"]

    model.insert(client, [1, 60, 500])  # a deleted-before-truncate key comes back as new
    check(client, model, queries)
    client.close()
    client = open_client(tmp_path)
    check(client, model, queries)
    client.flush(NAME)
    check(client, model, queries)
    client.close()


def test_truncate_is_durable_when_the_files_survive_a_crash(tmp_path, env, rng, monkeypatch):
    from vecstore.transport import embedded

    env()
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    model.insert(client, list(range(30)))
    client.flush(NAME)
    # As if the process died right after the commit: files and WAL are still there.
    monkeypatch.setattr(embedded, "remove_prefix", lambda store, prefix: None)
    client.truncate_collection(NAME)
    monkeypatch.undo()
    client.close()
    client = open_client(tmp_path)
    assert client._dep.datadir.objects.list(f"{cid}/") == []
    model.rows.clear()
    check(client, model, rng.standard_normal((2, 8)).astype(np.float32))
    client.close()
