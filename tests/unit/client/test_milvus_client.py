"""MilvusClient, embedded: pymilvus's calls and return shapes, checked against a numpy oracle,
across flushes and reopening."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.reference import ref_cdist
from vecstore import DataType, MilvusClient
from vecstore.client.milvus_client import CollectionNotLoaded, NotSupported
from vecstore.coordinator.errors import CollectionNotFound
from vecstore.errors import InvalidArgument
from vecstore.storage.lock import DataDirLocked

DIM = 16


def rows_for(rng, start, n):
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    return [{"id": start + i, "vector": vecs[i].tolist(), "color": ["red", "blue", "green"][i % 3],
             "n": start + i} for i in range(n)], vecs


def oracle(query, vecs, ids, metric, k):
    d = ref_cdist(np.asarray(query, np.float32)[None], vecs, metric)[0]
    order = np.argsort(-d if metric in ("IP", "COSINE") else d, kind="stable")[:k]
    return [int(ids[i]) for i in order], d[order]


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "milvus.db"))
    yield c
    c.close()


def test_quick_setup_insert_search_get_delete(client, rng):
    client.create_collection("docs", dimension=DIM, metric_type="L2")
    assert client.has_collection("docs") and client.list_collections() == ["docs"]
    rows, vecs = rows_for(rng, 0, 300)
    res = client.insert("docs", rows)
    assert res == {"insert_count": 300, "ids": list(range(300))}
    q = vecs[7]
    hits = client.search("docs", [q.tolist()], limit=5)
    assert len(hits) == 1 and len(hits[0]) == 5
    assert set(hits[0][0]) == {"id", "distance", "entity"} and hits[0][0]["entity"] == {}
    want_ids, want_d = oracle(q, vecs, np.arange(300), "L2", 5)
    assert [h["id"] for h in hits[0]] == want_ids
    np.testing.assert_allclose([h["distance"] for h in hits[0]], want_d, rtol=1e-4, atol=1e-4)
    got = client.get("docs", [7, 8], output_fields=["color", "n"])
    assert got == [{"id": 7, "color": "blue", "n": 7}, {"id": 8, "color": "green", "n": 8}]
    assert client.delete("docs", ids=[7]) == {"delete_count": 1}
    assert 7 not in [h["id"] for h in client.search("docs", [q.tolist()], limit=5)[0]]
    assert client.get_collection_stats("docs") == {"row_count": 299}


def test_filters_partitions_offset_and_output_fields(client, rng):
    client.create_collection("docs", dimension=DIM, metric_type="COSINE")
    client.create_partition("docs", "p1")
    rows, vecs = rows_for(rng, 0, 200)
    client.insert("docs", rows[:100])
    client.insert("docs", rows[100:], partition_name="p1")
    q = vecs[3]
    hits = client.search("docs", [q], limit=4, filter='color == "red" and n >= 30',
                         output_fields=["color", "n"])[0]
    allowed = np.array([r["color"] == "red" and r["n"] >= 30 for r in rows])
    ids, _ = oracle(q, vecs[allowed], np.arange(200)[allowed], "COSINE", 4)
    assert [h["id"] for h in hits] == ids
    assert all(h["entity"]["color"] == "red" and h["entity"]["n"] >= 30 for h in hits)
    only_p1 = client.search("docs", [q], limit=3, partition_names=["p1"])[0]
    ids_p1, _ = oracle(q, vecs[100:], np.arange(100, 200), "COSINE", 3)
    assert [h["id"] for h in only_p1] == ids_p1
    batch = client.search("docs", vecs[:3], limit=2)  # a 2-D array: three queries
    assert len(batch) == 3 and batch[1][0]["id"] == 1
    page = client.search("docs", [q], limit=2, offset=2)[0]
    full, _ = oracle(q, vecs, np.arange(200), "COSINE", 4)
    assert [h["id"] for h in page] == full[2:4]
    rounded = client.search("docs", [q], limit=1, round_decimal=2)[0][0]["distance"]
    assert rounded == round(rounded, 2)
    assert client.query("docs", filter="n < 3", output_fields=["color"]) == [
        {"id": 0, "color": "red"}, {"id": 1, "color": "blue"}, {"id": 2, "color": "green"}]
    assert client.query("docs", filter="", output_fields=["count(*)"]) == [{"count(*)": 200}]
    assert client.query("docs", filter="n >= {lo}", filter_params={"lo": 195},
                        output_fields=["n"], limit=2, offset=1) == [
        {"id": 196, "n": 196}, {"id": 197, "n": 197}]
    assert client.delete("docs", filter='color == "green"')["delete_count"] == 66
    assert client.query("docs", filter="", output_fields=["count(*)"]) == [{"count(*)": 134}]


def test_durable_across_flush_and_reopen(tmp_path, rng):
    path = str(tmp_path / "data")
    c = MilvusClient(path)
    c.create_collection("docs", dimension=DIM, metric_type="IP")
    rows, vecs = rows_for(rng, 0, 400)
    c.insert("docs", rows[:250])
    c.delete("docs", ids=[1, 2])
    c.flush("docs")
    c.insert("docs", rows[250:])
    c.delete("docs", ids=[300, 5])
    c.flush("docs")
    c.insert("docs", [{"id": 1000, "vector": [0.5] * DIM, "color": "x", "n": 0}])
    c.delete("docs", ids=[6])
    before = c.search("docs", [vecs[10]], limit=8)
    c.close()
    c = MilvusClient(path)
    assert c.get_collection_stats("docs") == {"row_count": 401 - 5}
    assert c.search("docs", [vecs[10]], limit=8) == before
    gone = c.get("docs", [1, 2, 5, 6, 300])
    assert gone == []
    assert c.get("docs", [1000], output_fields=["color"]) == [{"id": 1000, "color": "x"}]
    c.close()


def test_columnar_insert_auto_id_and_string_keys(client, rng):
    schema = MilvusClient.create_schema(auto_id=True)
    schema.add_field("pk", DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("bits", DataType.BINARY_VECTOR, dim=32)
    index = MilvusClient.prepare_index_params()
    index.add_index("emb", index_type="FLAT", metric_type="L2")
    index.add_index("bits", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection("auto", schema=schema, index_params=index)
    emb = rng.standard_normal((50, 4)).astype(np.float32)
    bits = rng.integers(0, 256, (50, 4), dtype=np.uint8)
    res = client.insert("auto", {"emb": emb, "bits": list(bits)})
    assert res["insert_count"] == 50 and len(set(res["ids"])) == 50
    hit = client.search("auto", [bits[9].tobytes()], anns_field="bits", limit=1)[0][0]
    assert hit["id"] == res["ids"][9] and hit["distance"] == 0
    with pytest.raises(InvalidArgument, match="multiple anns_fields"):
        client.search("auto", [emb[0]], limit=1)
    with pytest.raises(InvalidArgument, match="metric type not match"):
        client.search("auto", [emb[0]], anns_field="emb", search_params={"metric_type": "IP"})
    client.create_collection("s", dimension=4, id_type="string", max_length=16)
    client.insert("s", [{"id": "a", "vector": [1, 0, 0, 0]}, {"id": "b", "vector": [0, 1, 0, 0]}])
    assert client.search("s", [[1, 0, 0, 0]], limit=1)[0][0]["id"] == "a"
    assert client.delete("s", ids=["a"]) == {"delete_count": 1}
    assert [r["id"] for r in client.query("s", filter="", limit=10)] == ["b"]


def test_ddl_and_describe_shape(client):
    client.create_collection("a", dimension=8)
    d = client.describe_collection("a")
    for key in ("collection_name", "collection_id", "description", "fields", "aliases",
                "consistency_level", "properties", "num_shards", "num_partitions",
                "enable_dynamic_field", "created_timestamp", "auto_id", "functions"):
        assert key in d
    assert d["enable_dynamic_field"] is True and d["consistency_level"] == 2  # Bounded
    assert [f["name"] for f in d["fields"]] == ["id", "vector"]
    client.create_alias("a", "prod")
    assert client.describe_collection("prod")["collection_name"] == "a"
    client.drop_alias("prod")
    client.rename_collection("a", "b")
    assert client.list_collections() == ["b"]
    client.create_database("other")
    client.use_database("other")
    assert client.list_collections() == []
    client.use_database("default")
    client.release_collection("b")
    with pytest.raises(CollectionNotLoaded):
        client.search("b", [[0.0] * 8])
    client.load_collection("b")
    client.drop_collection("b")
    assert not client.has_collection("b")
    with pytest.raises(CollectionNotFound):
        client.describe_collection("b")


def test_bad_input_changes_nothing(client, rng):
    client.create_collection("docs", dimension=4)
    client.insert("docs", [{"id": 1, "vector": [1, 2, 3, 4]}])
    for bad in ([{"id": 2, "vector": [1, 2, 3]}],
                [{"id": 2, "vector": [1, 2, 3, float("nan")]}],
                [{"id": 3, "vector": [0, 0, 0, 1]}, {"id": 3, "vector": [1, 0, 0, 0]}],
                [{"vector": [1, 2, 3, 4]}]):
        with pytest.raises(InvalidArgument):
            client.insert("docs", bad)
    assert client.get_collection_stats("docs") == {"row_count": 1}
    with pytest.raises(InvalidArgument, match="dim"):
        client.search("docs", [[1, 2, 3]])
    with pytest.raises(InvalidArgument, match="ids or filter"):
        client.delete("docs", ids=[1], filter="id > 0")
    with pytest.raises(InvalidArgument):
        client.query("docs", filter="id >")
    with pytest.raises(NotSupported, match="server"):
        MilvusClient("tcp://localhost:19530")


def test_one_client_per_directory(tmp_path):
    with MilvusClient(str(tmp_path / "d")):
        with pytest.raises(DataDirLocked):
            MilvusClient(str(tmp_path / "d"))


def test_arrow_table_insert(client, rng):
    client.create_collection("t", dimension=4)
    table = pa.table({
        "id": pa.array([10, 11], pa.int64()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array([1, 0, 0, 0, 0, 1, 0, 0],
                                                             pa.float32()), 4),
    })
    assert client.insert("t", table)["ids"] == [10, 11]
    assert client.search("t", [[0, 1, 0, 0]], limit=1)[0][0]["id"] == 11


def test_upsert_replaces_atomically_and_survives_reopen(tmp_path, rng):
    path = str(tmp_path / "db")
    c = MilvusClient(path)
    c.create_collection("docs", dimension=4, metric_type="L2")
    c.insert("docs", [{"id": i, "vector": [i, 0, 0, 0], "v": 1} for i in range(5)])
    c.flush("docs")  # the old versions are sealed; the upsert lands in growing data
    res = c.upsert("docs", [{"id": 2, "vector": [100, 0, 0, 0], "v": 2},
                            {"id": 9, "vector": [9, 0, 0, 0], "v": 2}])
    assert res == {"upsert_count": 2, "ids": [2, 9]}

    def check(client):
        assert client.query("docs", filter="", output_fields=["count(*)"]) == [{"count(*)": 6}]
        assert client.get("docs", [2], output_fields=["v"]) == [{"id": 2, "v": 2}]
        hit = client.search("docs", [[2, 0, 0, 0]], limit=1)[0][0]
        assert hit["id"] != 2  # the old vector [2, 0, 0, 0] is gone
        assert client.search("docs", [[100, 0, 0, 0]], limit=1)[0][0]["id"] == 2

    check(c)
    c.close()
    c = MilvusClient(path)  # replayed from the WAL: the delete and insert come back together
    check(c)
    c.flush("docs")
    check(c)
    c.close()
