"""pymilvus's own MilvusClient against `vecstore serve`, side by side with the embedded client.

Every workflow runs the same MilvusClient calls on both clients over an identical data set and
compares the answers: same ids and entities, distances within 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymilvus")

from pymilvus import AnnSearchRequest, DataType, RRFRanker, WeightedRanker  # noqa: E402

DIM = 8
N = 300


def norm(x):
    """Answers in a comparable shape: numbers rounded, sequences as lists, dicts by key."""
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()}
    if isinstance(x, (bytes, str, bool)) or x is None:
        return x
    if isinstance(x, np.ndarray):
        return norm(x.tolist())
    if isinstance(x, list) and len(x) == 1 and isinstance(x[0], bytes):
        return x[0]  # pymilvus hands a binary vector back as a one-element list
    if isinstance(x, (list, tuple)) or type(x).__name__ in ("HybridExtraList", "SearchResult",
                                                            "Hits", "ExtraList"):
        return [norm(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return round(float(x), 4)
    if isinstance(x, (int, np.integer)):
        return int(x)
    return norm(dict(x)) if hasattr(x, "keys") else x


def assert_hits(remote_hits, local_hits):
    assert len(remote_hits) == len(local_hits)
    for rq, lq in zip(remote_hits, local_hits):
        assert [h["id"] for h in rq] == [h["id"] for h in lq]
        np.testing.assert_allclose([h["distance"] for h in rq], [h["distance"] for h in lq],
                                   rtol=1e-5, atol=1e-5)
        assert [norm(h["entity"]) for h in rq] == [norm(h["entity"]) for h in lq]


def assert_rows(remote_rows, local_rows):
    assert [norm(dict(r)) for r in remote_rows] == [norm(dict(r)) for r in local_rows]


def make_schema(client):
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("vec2", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    schema.add_field("n", DataType.INT32)
    schema.add_field("score", DataType.DOUBLE, nullable=True)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    return schema


def rows(rng, start, n):
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs2 = rng.standard_normal((n, 4)).astype(np.float32)
    out = []
    for i in range(n):
        k = start + i
        out.append({"id": k, "vec": vecs[i].tolist(), "vec2": vecs2[i].tolist(),
                    "tag": "abc"[k % 3], "n": k % 7, "score": None if k % 5 == 0 else k / 10,
                    "meta": {"k": k, "even": k % 2 == 0}, "arr": [k, k + 1],
                    "color": ["red", "blue"][k % 2]})
    return out


@pytest.fixture(scope="module")
def both(remote, local):
    """The same collection, written by the same calls, through both clients."""
    rng_rows = rows(np.random.default_rng(7), 0, N)
    upserts = rows(np.random.default_rng(8), N - 10, 20)
    for client in (remote, local):
        ip = client.prepare_index_params()
        ip.add_index("vec", index_type="FLAT", metric_type="L2")
        ip.add_index("vec2", index_type="FLAT", metric_type="IP")
        client.create_collection("wf", schema=make_schema(client), index_params=ip,
                                 consistency_level="Strong")
        assert client.insert("wf", rng_rows[:200])["insert_count"] == 200
        assert client.insert("wf", rng_rows[200:])["insert_count"] == N - 200
        assert client.upsert("wf", upserts)["upsert_count"] == 20
        assert client.delete("wf", ids=[1, 2, 3])["delete_count"] == 3
        client.delete("wf", filter="n == 6 and id > 250")
    return remote, local


def test_reads_match_embedded(both):
    remote, local = both
    for kw in [dict(filter="id < 20", output_fields=["*"]),
               dict(filter="tag == 'a' and n > 2", output_fields=["tag", "n", "color"],
                    limit=7),
               dict(filter="color == 'red'", output_fields=["meta", "arr", "score"], limit=5,
                    offset=3),
               dict(filter="id in [0, 5, 299, 305]", output_fields=["vec", "vec2"]),
               dict(filter="", output_fields=["count(*)"]),
               dict(filter="n < 3", output_fields=["count(*)"]),
               dict(filter="id > 1000", output_fields=["tag"])]:
        assert_rows(remote.query("wf", **kw), local.query("wf", **kw))
    assert_rows(remote.get("wf", ids=[0, 1, 4, 305]), local.get("wf", ids=[0, 1, 4, 305]))
    kw = dict(filter="meta['k'] < {x}", filter_params={"x": 4}, output_fields=["n"])
    assert_rows(remote.query("wf", **kw), local.query("wf", **kw))


def test_search_matches_embedded(both):
    remote, local = both
    q = np.random.default_rng(9).standard_normal((3, DIM)).astype(np.float32).tolist()
    cases = [dict(limit=5),
             dict(limit=4, filter="tag == 'b'", output_fields=["tag", "color", "meta"]),
             dict(limit=3, output_fields=["*"], offset=2, anns_field="vec"),
             dict(limit=6, search_params={"metric_type": "L2",
                                          "params": {"radius": 20.0, "range_filter": 4.0}}),
             dict(limit=3, group_by_field="tag", output_fields=["tag"]),
             dict(limit=5, filter="n in {ns}", filter_params={"ns": [1, 2]}, round_decimal=2)]
    for kw in cases:
        kw.setdefault("anns_field", "vec")
        assert_hits(remote.search("wf", q, **kw), local.search("wf", q, **kw))
    q2 = [[0.5, -0.5, 1.0, 0.0]]
    kw = dict(anns_field="vec2", limit=5, output_fields=["n"])
    assert_hits(remote.search("wf", q2, **kw), local.search("wf", q2, **kw))
    for ranker in (RRFRanker(30), WeightedRanker(0.7, 0.3)):
        reqs = [AnnSearchRequest(q[:1], "vec", {"metric_type": "L2"}, 10, expr="n > 1"),
                AnnSearchRequest(q2, "vec2", {"metric_type": "IP"}, 10)]
        assert_hits(remote.hybrid_search("wf", reqs, ranker, limit=5, output_fields=["tag"]),
                    local.hybrid_search("wf", reqs, ranker, limit=5, output_fields=["tag"]))


def _drain(it):
    out = []
    while True:
        page = it.next()
        if not page:
            break
        out.append(list(page))
    it.close()
    return out


def test_iterators_match_embedded(both):
    remote, local = both
    kw = dict(batch_size=40, filter="n != 3", output_fields=["tag", "color"])
    r, lo = _drain(remote.query_iterator("wf", **kw)), _drain(local.query_iterator("wf", **kw))
    assert [len(p) for p in r] == [len(p) for p in lo]
    assert_rows([x for p in r for x in p], [x for p in lo for x in p])
    q = [[0.1] * DIM]
    kw = dict(batch_size=25, limit=120, output_fields=["n"], anns_field="vec")
    r = _drain(remote.search_iterator("wf", q, **kw))
    lo = _drain(local.search_iterator("wf", q, **kw))
    assert sum(map(len, r)) == 120
    assert_hits([[h for p in r for h in p]], [[h for p in lo for h in p]])


def test_catalog_workflows(both):
    remote, local = both
    for c in (remote, local):
        c.create_partition("wf", "p1")
        assert c.has_partition("wf", "p1")
        assert sorted(c.list_partitions("wf")) == ["_default", "p1"]
        c.insert("wf", rows(np.random.default_rng(3), 1000, 5), partition_name="p1")
        c.create_alias("wf", "wf_alias")
        assert c.describe_alias("wf_alias")["collection_name"] == "wf"
        assert c.list_aliases("wf")["aliases"] == ["wf_alias"]
        assert c.query("wf_alias", filter="id >= 1000", output_fields=["count(*)"],
                       partition_names=["p1"])[0]["count(*)"] == 5
        c.release_partitions("wf", ["p1"])
        c.drop_partition("wf", "p1")
        assert not c.has_partition("wf", "p1")
        c.drop_alias("wf_alias")
    d_r, d_l = remote.describe_collection("wf"), local.describe_collection("wf")
    for key in ("collection_name", "auto_id", "num_shards", "enable_dynamic_field",
                "consistency_level"):
        assert d_r[key] == d_l[key], key
    strip = [{k: v for k, v in f.items()} for f in d_l["fields"]]
    assert [norm(f) for f in d_r["fields"]] == [norm(f) for f in strip]
    assert remote.get_collection_stats("wf") == local.get_collection_stats("wf")
    assert remote.list_indexes("wf") == local.list_indexes("wf")
    i_r, i_l = remote.describe_index("wf", "vec"), local.describe_index("wf", "vec")
    for key in ("index_type", "metric_type", "field_name", "index_name", "state"):
        assert i_r[key] == i_l[key]


def test_index_load_and_rename(remote):
    remote.create_collection("quick", dimension=4, metric_type="IP", auto_id=True)
    res = remote.insert("quick", [{"vector": [1, 0, 0, i]} for i in range(5)])
    assert res["insert_count"] == 5 and len(res["ids"]) == 5
    remote.flush("quick")
    assert remote.get_load_state("quick")["state"].name == "Loaded"
    remote.release_collection("quick")
    assert remote.get_load_state("quick")["state"].name == "NotLoad"
    from pymilvus import MilvusException

    with pytest.raises(MilvusException) as e:
        remote.search("quick", [[1, 0, 0, 0]])
    assert e.value.code == 101
    remote.drop_index("quick", "vector")
    assert remote.list_indexes("quick") == []
    ip = remote.prepare_index_params()
    ip.add_index("vector", index_type="HNSW", metric_type="IP", params={"M": 8,
                                                                        "efConstruction": 64})
    remote.create_index("quick", ip)
    assert remote.describe_index("quick", "vector")["index_type"] == "HNSW"
    remote.load_collection("quick")
    hits = remote.search("quick", [[0, 0, 0, 1]], limit=2, search_params={"params": {"ef": 16}})
    assert len(hits[0]) == 2
    remote.rename_collection("quick", "quick2")
    assert "quick2" in remote.list_collections() and not remote.has_collection("quick")
    remote.drop_collection("quick2")
    assert not remote.has_collection("quick2")


def test_databases(remote, server):
    from pymilvus import MilvusClient

    remote.create_database("db2")
    assert "db2" in remote.list_databases()
    other = MilvusClient(server["uri"], db_name="db2")
    other.create_collection("c", dimension=2)
    assert other.list_collections() == ["c"]
    assert "c" not in remote.list_collections()
    other.drop_collection("c")
    other.close()
    remote.drop_database("db2")
    assert "db2" not in remote.list_databases()


def test_vector_types_round_trip(remote, local):
    sch = {}
    for c in (remote, local):
        s = c.create_schema()
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=8)
        s.add_field("h", DataType.FLOAT16_VECTOR, dim=4)
        s.add_field("b", DataType.BINARY_VECTOR, dim=16)
        ip = c.prepare_index_params()
        ip.add_index("h", index_type="FLAT", metric_type="L2")
        ip.add_index("b", index_type="BIN_FLAT", metric_type="HAMMING")
        c.create_collection("vt", schema=s, index_params=ip, consistency_level="Strong")
        data = [{"id": f"k{i}", "h": np.array([i, 1, 0, 0.5], dtype=np.float16),
                 "b": bytes([i, 255 - i])} for i in range(6)]
        c.insert("vt", data)
        sch[c] = c.query("vt", filter="id in ['k1', 'k4']", output_fields=["b"])
    assert_rows(sch[remote], sch[local])
    qh = [np.array([2, 1, 0, 0], dtype=np.float16)]
    kw = dict(anns_field="h", limit=3)
    assert_hits(remote.search("vt", qh, **kw), local.search("vt", qh, **kw))
    qb = [bytes([3, 250])]
    kw = dict(anns_field="b", limit=3, search_params={"metric_type": "HAMMING"})
    assert_hits(remote.search("vt", qb, **kw), local.search("vt", qb, **kw))
