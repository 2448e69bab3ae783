"""Index declarations through MilvusClient: create/list/describe/drop_index with Milvus's rules
(one index per field, drop only when released, unsupported types refused by name)."""

from __future__ import annotations

import pytest

from vecstore import DataType, MilvusClient
from vecstore.client.milvus_client import CollectionNotLoaded, NotSupported
from vecstore.errors import InvalidArgument


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("n", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("b", DataType.BINARY_VECTOR, dim=16)
    c.create_collection("c", schema=schema)
    yield c
    c.close()


def test_declare_describe_and_drop(client):
    with pytest.raises(InvalidArgument, match="index not found"):
        client.load_collection("c")
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", index_name="v_idx", metric_type="IP", params={})
    idx.add_index("b", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_index("c", idx)
    client.create_index("c", idx)  # the same declaration again: a no-op, as in Milvus
    assert sorted(client.list_indexes("c")) == ["b", "v_idx"]
    assert client.list_indexes("c", field_name="v") == ["v_idx"]
    client.load_collection("c")
    client.insert("c", [{"id": i, "n": i, "v": [1.0, 0, 0, float(i)], "b": b"\x01\x02"}
                        for i in range(5)])
    d = client.describe_index("c", "v_idx")
    assert d == {"index_type": "FLAT", "metric_type": "IP", "field_name": "v",
                 "index_name": "v_idx", "total_rows": 5, "indexed_rows": 5,
                 "pending_index_rows": 0, "state": "Finished"}
    assert client.search("c", [[0, 0, 0, 1.0]], anns_field="v", limit=1)[0][0]["id"] == 4
    with pytest.raises(InvalidArgument, match="index not found"):
        client.describe_index("c", "nope")
    with pytest.raises(InvalidArgument, match="release it first"):
        client.drop_index("c", "v_idx")
    client.release_collection("c")
    client.drop_index("c", "v_idx")
    client.drop_index("c", "v_idx")  # dropping a missing index succeeds
    assert client.list_indexes("c") == ["b"]
    with pytest.raises(CollectionNotLoaded):
        client.search("c", [[0, 0, 0, 1.0]], anns_field="v")


def test_bad_declarations_are_refused_and_change_nothing(client):
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index("c", idx)
    bad = [("v", "DISKANN", "L2", NotSupported, "supported: FLAT, HNSW"),
           ("v", "FLAT", "HAMMING", InvalidArgument, "metric type HAMMING"),
           ("b", "FLAT", "HAMMING", NotSupported, "BIN_FLAT, BIN_IVF_FLAT"),
           ("n", "HNSW", None, NotSupported, "scalar fields take INVERTED"),
           ("zz", "FLAT", "L2", InvalidArgument, "unknown field"),
           ("v", "FLAT", "IP", InvalidArgument, "one distinct index")]
    for field, kind, metric, err, match in bad:
        p = client.prepare_index_params()
        p.add_index(field, index_type=kind, metric_type=metric)
        with pytest.raises(err, match=match):
            client.create_index("c", p)
    assert client.list_indexes("c") == ["v"]
    assert client.describe_index("c", "v")["metric_type"] == "L2"


def test_properties_maintenance_and_server_info(client, tmp_path):
    client.alter_collection_properties("c", {"collection.ttl.seconds": 60, "x": "1"})
    client.drop_collection_properties("c", ["x", "absent"])
    assert client.describe_collection("c")["properties"] == {"collection.ttl.seconds": "60"}
    with pytest.raises(InvalidArgument, match="managed by vecstore"):
        client.drop_collection_properties("c", ["vecstore.loaded"])
    client.create_database("d")
    client.alter_database_properties("d", {"database.max.collections": 5})
    client.alter_database_properties("default", {"k": "v"})
    client.drop_database_properties("d", ["nope"])
    assert client.describe_database("d")["database.max.collections"] == "5"
    assert client.describe_database("default")["k"] == "v"
    client.insert("c", [{"id": 1, "n": 1, "v": [1.0, 0, 0, 0], "b": b"\x00\x01"}])
    client.flush_all()
    assert client.get_flush_all_state() is True
    assert client.get_server_type() == "milvus"
    assert client.get_server_version().startswith("vecstore-")
    f = MilvusClient.create_field_schema("t", DataType.VARCHAR, max_length=8)
    assert f.name == "t" and f.dtype == DataType.VARCHAR
    client.using_database("d")
    assert client.list_collections() == []
