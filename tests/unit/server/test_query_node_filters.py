"""With the sealed segments' vector searches on a query-node process (``--query-nodes``), every
query, count and filtered search equals the in-process answer, for filters on scalars, JSON,
arrays, dynamic fields, a scalar index and template parameters (the filter's mask travels with
each search)."""

from __future__ import annotations

import numpy as np
import pytest

import vecstore
from vecstore.query_node import remote
from vecstore.transport import embedded

pytest.importorskip("grpc")

DIM = 8
FILTERS = [
    ("n > 3", None),
    ("tag in ['a0', 'c1', 'b3'] and n != 2", None),
    ("meta['k'] == 1", None),
    ("array_contains(arr, 3)", None),
    ("extra > 5", None),
    ("tag like 'b%'", None),
    ("n < {x} or meta['k'] in {ks}", {"x": 2, "ks": [0]}),
    ("n >= 2 and n <= 5 and id % 2 == 0", None),
]


def _fill(client, rng) -> None:
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", vecstore.DataType.INT64, is_primary=True)
    schema.add_field("vec", vecstore.DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("n", vecstore.DataType.INT64)
    schema.add_field("tag", vecstore.DataType.VARCHAR, max_length=8)
    schema.add_field("meta", vecstore.DataType.JSON)
    schema.add_field("arr", vecstore.DataType.ARRAY, element_type=vecstore.DataType.INT64,
                     max_capacity=4)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    ip.add_index("n", index_type="STL_SORT")
    client.create_collection("c", schema=schema, index_params=ip)
    for lo in (0, 150, 300):  # three sealed segments
        client.insert("c", [{"id": i, "vec": rng.standard_normal(DIM).tolist(), "n": i % 7,
                             "tag": "abc"[i % 3] + str(i % 5), "meta": {"k": i % 3},
                             "arr": [i % 4, i % 5], "extra": i % 9}
                            for i in range(lo, lo + 150)])
        client.flush("c")
    client.delete("c", ids=list(range(0, 450, 11)))


def _answers(client, queries) -> list:
    out = []
    for text, params in FILTERS:
        kw = {"filter_params": params} if params else {}
        ids = sorted(r["id"] for r in client.query("c", filter=text, output_fields=["id"],
                                                   limit=1000, **kw))
        count = client.query("c", filter=text, output_fields=["count(*)"], **kw)[0]["count(*)"]
        hits = client.search("c", queries, limit=5, filter=text, anns_field="vec", **kw)
        out.append((text, ids, count, [[h["id"] for h in q] for q in hits]))
    return out


def test_filtered_reads_with_query_nodes_give_the_in_process_answers(tmp_path, monkeypatch):
    queries = np.random.default_rng(1).standard_normal((3, DIM)).tolist()
    local = vecstore.MilvusClient(str(tmp_path / "local"))
    _fill(local, np.random.default_rng(0))
    want = _answers(local, queries)
    local.close()
    monkeypatch.setattr(embedded, "QUERY_NODE_FACTORY", remote.factory(1))
    served = vecstore.MilvusClient(str(tmp_path / "served"))
    _fill(served, np.random.default_rng(0))
    got = _answers(served, queries)
    assert got == want
    assert all(ids for _, ids, _, _ in want), [(t, len(i)) for t, i, _, _ in want]
    dep = next(v for v in vars(served).values() if isinstance(v, embedded.EmbeddedDeployment))
    sealed = dep.query.segments(served.describe_collection("c")["collection_id"])
    assert len(sealed) == 3 and all(getattr(s, "remote", False) for _, s in sealed)
    served.close()
