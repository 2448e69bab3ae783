"""Partitions (drop semantics, partial loads, partition key routing) and partial upsert, through
MilvusClient, checked against what Milvus documents."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore import DataType, MilvusClient
from vecstore.client.milvus_client import CollectionNotLoaded
from vecstore.errors import InvalidArgument, VecstoreError
from vecstore.proxy.partitions import PartitionNotLoaded, key_buckets

DIM = 4


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    yield c
    c.close()


def _rows(start, n, **extra):
    return [{"id": i, "vector": [float(i)] * DIM, **extra} for i in range(start, start + n)]


def _ids(rows):
    return sorted(r["id"] for r in rows)


def test_dropped_partition_rows_vanish_and_never_come_back(client):
    client.create_collection("c", dimension=DIM, metric_type="L2")
    client.create_partition("c", "p")
    client.insert("c", _rows(0, 5))
    client.insert("c", _rows(100, 5), partition_name="p")
    assert client.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 10
    with pytest.raises(InvalidArgument, match="release it first"):
        client.drop_partition("c", "p")
    client.release_partitions("c", ["p"])
    client.drop_partition("c", "p")
    client.load_collection("c")
    assert _ids(client.query("c", "id >= 0")) == list(range(5))
    client.create_partition("c", "p")  # same name, new incarnation: empty
    assert client.query("c", "id >= 0", partition_names=["p"]) == []
    client.insert("c", _rows(200, 2), partition_name="p")
    assert _ids(client.query("c", "id >= 0", partition_names=["p"])) == [200, 201]
    client.flush("c")
    assert _ids(client.query("c", "id >= 0")) == [0, 1, 2, 3, 4, 200, 201]


def test_load_and_release_partitions(client):
    client.create_collection("c", dimension=DIM, metric_type="L2")
    client.create_partition("c", "a")
    client.create_partition("c", "b")
    client.insert("c", _rows(0, 3), partition_name="a")
    client.insert("c", _rows(10, 3), partition_name="b")
    client.release_collection("c")
    assert client.get_load_state("c")["state"].name == "NotLoad"
    with pytest.raises(CollectionNotLoaded):
        client.query("c", "id >= 0")
    client.load_partitions("c", ["a"])
    assert client.get_load_state("c")["state"].name == "Loaded"
    assert client.get_load_state("c", partition_name="a")["state"].name == "Loaded"
    assert client.get_load_state("c", partition_name="b")["state"].name == "NotLoad"
    assert _ids(client.query("c", "id >= 0")) == [0, 1, 2]
    hits = client.search("c", [[10.0] * DIM], limit=10)[0]
    assert sorted(h["id"] for h in hits) == [0, 1, 2]
    with pytest.raises(PartitionNotLoaded, match="partition not loaded"):
        client.query("c", "id >= 0", partition_names=["b"])
    client.load_partitions("c", "b")
    assert _ids(client.query("c", "id >= 0")) == [0, 1, 2, 10, 11, 12]
    client.release_partitions("c", ["a"])
    assert _ids(client.query("c", "id >= 0")) == [10, 11, 12]
    client.drop_partition("c", "a")  # released: may go
    with pytest.raises(InvalidArgument, match="partition not found"):
        client.load_partitions("c", ["zzz"])


@pytest.fixture
def keyed(client):
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=32, is_partition_key=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vector", metric_type="L2")
    client.create_collection("k", schema=schema, index_params=index, num_partitions=4)
    return client


def test_partition_key_routes_rows_and_refuses_manual_partitions(keyed):
    c = keyed
    assert c.list_partitions("k") == [f"_default_{i}" for i in range(4)]
    assert c.describe_collection("k")["num_partitions"] == 4
    tenants = [f"t{i % 7}" for i in range(70)]
    c.insert("k", [{"id": i, "tenant": t, "vector": [float(i)] * DIM}
                   for i, t in enumerate(tenants)])
    got = c.query("k", 'tenant == "t3"', output_fields=["tenant"])
    assert _ids(got) == [i for i, t in enumerate(tenants) if t == "t3"]
    for bad in (lambda: c.insert("k", [{"id": 999, "tenant": "x", "vector": [0.0] * DIM}],
                                 partition_name="_default_1"),
                lambda: c.query("k", "id >= 0", partition_names=["_default_0"]),
                lambda: c.create_partition("k", "extra"),
                lambda: c.drop_partition("k", "_default_0")):
        with pytest.raises(InvalidArgument, match="partition key"):
            bad()
    assert c.query("k", "", output_fields=["count(*)"])[0]["count(*)"] == 70
    c.flush("k")
    assert _ids(c.query("k", 'tenant in ["t1", "t2"]')) == \
        [i for i, t in enumerate(tenants) if t in ("t1", "t2")]


def test_partition_key_buckets_spread_and_are_stable():
    import pyarrow as pa

    ints = key_buckets(pa.chunked_array([pa.array(np.arange(10_000))]), 16)
    counts = np.bincount(ints, minlength=16)
    assert counts.min() > 400  # near-uniform spread of 10k consecutive keys
    strs = key_buckets(pa.chunked_array([pa.array(["a", "b", "a", None])]), 8)
    assert strs[0] == strs[2] and 0 <= strs.min() and strs.max() < 8
    again = key_buckets(pa.chunked_array([pa.array(np.arange(10_000))]), 16)
    np.testing.assert_array_equal(ints, again)


def test_partition_key_defaults_and_errors(client):
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("g", DataType.INT64, is_partition_key=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("d", schema=schema)
    assert len(client.list_partitions("d")) == 16
    with pytest.raises(InvalidArgument, match="num_partitions"):
        client.create_collection("e", dimension=DIM, num_partitions=4)
    with pytest.raises(InvalidArgument, match="num_partitions"):
        client.create_collection("f", schema=schema, num_partitions=0)


@pytest.fixture
def docs(client):
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("n", DataType.INT64, nullable=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vector", metric_type="L2")
    client.create_collection("docs", schema=schema, index_params=index)
    client.insert("docs", [{"id": i, "title": f"t{i}", "n": i, "vector": [float(i)] * DIM,
                            "author": "a", "year": 2000 + i} for i in range(5)])
    return client


def test_partial_upsert_merges_fields_and_dynamic_keys(docs):
    res = docs.upsert("docs", [{"id": 1, "title": "new"}, {"id": 3, "year": 1999, "genre": "x"}
                               ][:1], partial_update=True)
    assert res["upsert_count"] == 1 and res["ids"] == [1]
    row = docs.get("docs", [1])[0]
    assert row["title"] == "new" and row["n"] == 1 and row["vector"] == [1.0] * DIM
    assert row["author"] == "a" and row["year"] == 2001
    docs.upsert("docs", [{"id": 3, "year": 1999, "genre": "x"}], partial_update=True)
    row = docs.get("docs", [3])[0]
    assert row["title"] == "t3" and row["year"] == 1999 and row["genre"] == "x"
    assert row["author"] == "a"
    assert docs.query("docs", "", output_fields=["count(*)"])[0]["count(*)"] == 5
    # Columnar input, a stored key and a new key carrying every required field.
    docs.upsert("docs", {"id": np.array([2, 9]), "title": ["two", "nine"],
                         "vector": np.full((2, DIM), 7.0, np.float32)}, partial_update=True)
    got = {r["id"]: r for r in docs.get("docs", [2, 9])}
    assert got[2]["title"] == "two" and got[2]["n"] == 2 and got[2]["vector"] == [7.0] * DIM
    assert got[9]["title"] == "nine" and got[9]["n"] is None
    docs.flush("docs")
    assert docs.get("docs", [1])[0]["title"] == "new"


def test_partial_upsert_bad_batches_change_nothing(docs):
    before = docs.query("docs", "id >= 0", output_fields=["*"])
    bad = [
        [{"id": 50, "title": "no vector"}],  # a new key must carry the vector
        [{"title": "no key"}],
        [{"id": 1, "title": "a"}, {"id": 2, "n": 3}],  # different field sets
        [{"id": 1, "title": 5}],  # wrong type
    ]
    for rows in bad:
        with pytest.raises(VecstoreError):
            docs.upsert("docs", rows, partial_update=True)
    with pytest.raises(InvalidArgument, match="partial_update"):
        docs.upsert("docs", [{"id": 1}], partial_update="yes")
    assert docs.query("docs", "id >= 0", output_fields=["*"]) == before


def test_stats_count_every_partition_loaded_or_not(client):
    client.create_collection("c", dimension=DIM)
    client.create_partition("c", "p")
    client.insert("c", _rows(0, 3))
    client.insert("c", _rows(10, 4), partition_name="p")
    client.release_partitions("c", ["p"])
    assert client.get_collection_stats("c") == {"row_count": 7}
    assert client.get_partition_stats("c", "p") == {"row_count": 4}
    assert client.get_partition_stats("c", "_default") == {"row_count": 3}
    with pytest.raises(InvalidArgument, match="partition not found"):
        client.get_partition_stats("c", "nope")


def test_unknown_parameters_are_refused_not_ignored(client):
    from vecstore.client.milvus_client import NotSupported

    client.create_collection("c", dimension=DIM)
    for call in (lambda: client.create_partition("c", "p", replica_number=2),
                 lambda: client.list_partitions("c", bogus=1),
                 lambda: client.describe_collection("c", verbose=True),
                 lambda: client.load_collection("c", refresh=True),
                 lambda: client.has_collection("c", bogus=1),
                 lambda: client.create_alias("c", "a", bogus=1)):
        with pytest.raises(NotSupported, match="not supported"):
            call()
    assert client.list_partitions("c", timeout=5) == ["_default"]
    assert not client.has_partition("c", "p")


def test_upsert_into_an_auto_id_collection_replaces_under_a_new_key(tmp_path):
    """Milvus 2.6 override mode: the request names the entity it replaces by its key; the
    replacement gets a newly generated key, in one atomic write (also after reopening)."""
    path = str(tmp_path / "auto")
    c = MilvusClient(path)
    c.create_collection("a", dimension=DIM, auto_id=True, metric_type="L2")
    ids = c.insert("a", [{"vector": [float(i)] * DIM, "tag": "old"} for i in range(3)])["ids"]
    res = c.upsert("a", [{"id": ids[1], "vector": [9.0] * DIM, "tag": "new"}])
    assert res["upsert_count"] == 1 and len(res["ids"]) == 1
    new_id = res["ids"][0]
    assert new_id not in ids
    rows = {r["id"]: r for r in c.query("a", "id >= 0", output_fields=["tag", "vector"])}
    assert set(rows) == {ids[0], ids[2], new_id}
    assert rows[new_id]["tag"] == "new" and rows[new_id]["vector"] == [9.0] * DIM
    with pytest.raises(InvalidArgument, match="primary key"):
        c.upsert("a", [{"vector": [1.0] * DIM}])
    c.close()
    c = MilvusClient(path)  # replayed from the WAL: the same three entities
    assert {r["id"] for r in c.query("a", "id >= 0")} == {ids[0], ids[2], new_id}
    c.upsert("a", [{"id": new_id, "tag": "merged"}], partial_update=True)
    got = c.query("a", 'tag == "merged"', output_fields=["vector"])
    assert len(got) == 1 and got[0]["id"] not in (new_id, *ids) and got[0]["vector"] == [9.0] * DIM
    assert c.get_collection_stats("a") == {"row_count": 3}
    c.close()
