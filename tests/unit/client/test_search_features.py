"""MilvusClient.search's range, grouping and by-primary-key forms and search_iterator, embedded,
checked against an independent float64 numpy brute force, over flushed (sealed) and growing data
with deletes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.reference import random_vectors, ref_cdist
from vecstore import DataType, MilvusClient
from vecstore.client.milvus_client import NotSupported
from vecstore.errors import InvalidArgument

DIM = 16
HIGHER = {"IP", "COSINE"}


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "milvus.db"))
    yield c
    c.close()


def make(client, rng, metric="L2", n=600, dim=DIM, nullable_group=False, deletes=()):
    """A collection `c` with `n` rows: the first 60% flushed, the rest growing, then `deletes`.
    Returns (vectors, alive mask, group values, tags)."""
    binary = metric in ("HAMMING", "JACCARD")
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.BINARY_VECTOR if binary else DataType.FLOAT_VECTOR,
                     dim=dim)
    schema.add_field("grp", DataType.INT64, nullable=nullable_group)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    schema.add_field("score", DataType.FLOAT)
    schema.add_field("meta", DataType.JSON)
    index = MilvusClient.prepare_index_params()
    index.add_index("vector", index_type="BIN_FLAT" if binary else "FLAT", metric_type=metric)
    client.create_collection("c", schema=schema, index_params=index)
    vecs = random_vectors(rng, "binary" if binary else "float32", n, dim)
    groups = rng.integers(0, 25, size=n)
    null = (rng.random(n) < 0.1) if nullable_group else np.zeros(n, dtype=bool)
    tags = np.array([f"t{v}" for v in rng.integers(0, 6, size=n)])
    rows = [{"id": i, "vector": bytes(vecs[i]) if binary else vecs[i].tolist(),
             "grp": None if null[i] else int(groups[i]), "tag": str(tags[i]),
             "score": float(i), "meta": {"i": i}} for i in range(n)]
    cut = int(n * 0.6)
    client.insert("c", rows[:cut])
    client.flush("c")
    client.insert("c", rows[cut:])
    alive = np.ones(n, dtype=bool)
    if len(deletes):
        client.delete("c", ids=[int(i) for i in deletes])
        alive[list(deletes)] = False
    group_values = np.array([None if null[i] else int(groups[i]) for i in range(n)],
                            dtype=object)
    return vecs, alive, group_values, tags


def ranking(q, vecs, metric, allowed):
    """(ids, distances) of every allowed row, best first (float64 reference; ties by id)."""
    d = ref_cdist(np.asarray(q)[None], vecs, metric)[0]
    ids = np.flatnonzero(allowed)
    key = -d[ids] if metric in HIGHER else d[ids]
    order = np.lexsort((ids, key))
    return ids[order], d[ids[order]]


def gap_value(values, rank, metric):
    """A threshold halfway between the distance at `rank` of the ranking `values` and the next
    distinct one, far from every distance (float32 rounding cannot move a hit across it)."""
    uniq = np.unique(values)
    if metric in HIGHER:
        uniq = uniq[::-1]
    i = min(int(np.flatnonzero(uniq == values[min(rank, values.size - 1)])[0]), uniq.size - 2)
    return float((uniq[i] + uniq[i + 1]) / 2)


def ids_of(hits):
    return [h["id"] for h in hits]


# ---- range search -------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE", "HAMMING", "JACCARD"])
def test_range_search_matches_reference(client, rng, metric):
    dim = 64 if metric in ("HAMMING", "JACCARD") else DIM
    vecs, alive, _, _ = make(client, rng, metric, dim=dim, deletes=range(0, 600, 7))
    q = vecs[3] if metric in ("HAMMING", "JACCARD") else rng.standard_normal(dim).astype(
        np.float32)
    ids, dist = ranking(q, vecs, metric, alive)
    radius, range_filter = gap_value(dist, 200, metric), gap_value(dist, 40, metric)
    if metric in HIGHER:
        inside = (dist > radius) & (dist <= range_filter)
    else:
        inside = (dist >= range_filter) & (dist < radius)
    want = ids[inside]
    query = bytes(q) if metric in ("HAMMING", "JACCARD") else q.tolist()
    params = {"metric_type": metric, "params": {"radius": radius, "range_filter": range_filter}}
    hits = client.search("c", [query], limit=1000, search_params=params)[0]
    assert sorted(ids_of(hits)) == sorted(want.tolist())
    d = np.array([h["distance"] for h in hits])
    key = -d if metric in HIGHER else d
    assert np.all(np.diff(key) >= 0)
    # Top-level keys mean the same (pymilvus flattens search_params); limit keeps the best.
    flat = {"radius": radius, "range_filter": range_filter}
    top = client.search("c", [query], limit=10, search_params=flat)[0]
    assert top == hits[:10]
    if metric not in ("HAMMING", "JACCARD"):  # no ties: the order is the reference's
        assert ids_of(top) == want[:10].tolist()
        paged = client.search("c", [query], limit=5, offset=10, search_params=flat)[0]
        assert ids_of(paged) == want[10:15].tolist()
    # radius alone: everything closer than radius, from the closest.
    only = client.search("c", [query], limit=1000, search_params={"radius": radius})[0]
    closer = dist > radius if metric in HIGHER else dist < radius
    assert sorted(ids_of(only)) == sorted(ids[closer].tolist())


def test_range_search_with_filter_and_several_queries(client, rng):
    vecs, alive, _, tags = make(client, rng, "COSINE", deletes=[5, 6, 7])
    queries = rng.standard_normal((3, DIM)).astype(np.float32)
    res = client.search("c", queries, limit=20, filter='tag in ["t1", "t2"]',
                        search_params={"params": {"radius": 0.1, "range_filter": 0.6}},
                        output_fields=["tag"])
    allowed = alive & np.isin(tags, ["t1", "t2"])
    for q, hits in zip(queries, res):
        ids, dist = ranking(q, vecs, "COSINE", allowed)
        keep = (dist > 0.1) & (dist <= 0.6) & (np.abs(dist - 0.1) > 1e-5) & (
            np.abs(dist - 0.6) > 1e-5)
        want = ids[keep][:20]
        assert ids_of(hits)[:len(want)] == want.tolist()
        assert all(h["entity"]["tag"] in ("t1", "t2") for h in hits)


@pytest.mark.parametrize("metric,radius,rf,msg", [
    ("L2", 1.0, 2.0, "range_filter must be less than radius for L2/HAMMING/JACCARD"),
    ("L2", 1.0, 1.0, "range_filter must be less than radius"),
    ("IP", 0.5, 0.2, "range_filter must be greater than radius for IP/COSINE"),
    ("COSINE", 0.5, 0.5, "range_filter must be greater than radius"),
])
def test_range_search_bad_bounds(client, rng, metric, radius, rf, msg):
    make(client, rng, metric, n=20)
    with pytest.raises(InvalidArgument, match=msg):
        client.search("c", [[0.0] * DIM], search_params={"params": {
            "radius": radius, "range_filter": rf}})


def test_range_search_bad_values(client, rng):
    make(client, rng, "L2", n=20)
    q = [[0.0] * DIM]
    for params, msg in [({"params": {"range_filter": 1.0}}, "range_filter needs radius"),
                        ({"params": {"radius": "far"}}, "radius must be a finite number"),
                        ({"params": {"radius": float("nan")}}, "radius must be a finite"),
                        ({"radius": 2.0, "params": {"radius": 3.0}}, "ambiguous parameter"),
                        ({"params": {"radius": 2.0, "range_filter": True}}, "range_filter")]:
        with pytest.raises(InvalidArgument, match=msg):
            client.search("c", q, search_params=params)


# ---- grouping search ----------------------------------------------------------------------------


def reference_groups(ids, groups, limit, offset, size, strict):
    """Milvus's grouping over one ranking, written hit by hit (segcore's GroupByMap, then the
    proxy's offset/limit): returns the pks in output order."""
    taken: dict = {}
    order: list = []
    wanted = limit + offset
    for pk in ids.tolist():
        g = groups[pk]
        if g not in taken:
            if len(taken) >= wanted:
                continue
            taken[g] = []
            order.append(g)
        if len(taken[g]) < size:
            taken[g].append(pk)
        full = sum(len(v) >= size for v in taken.values())
        if len(taken) == wanted and (not strict or full == wanted):
            break
    return [pk for g in order[offset:] for pk in taken[g]]


@pytest.mark.parametrize("size,strict", [(1, False), (3, False), (3, True), (10, True)])
def test_grouping_matches_reference(client, rng, size, strict):
    deletes = rng.choice(600, size=80, replace=False)
    vecs, alive, groups, _ = make(client, rng, "L2", nullable_group=True, deletes=deletes)
    queries = rng.standard_normal((3, DIM)).astype(np.float32)
    for limit, offset in [(5, 0), (4, 2), (30, 0)]:  # 30 > the 26 groups (25 values + null)
        res = client.search("c", queries, limit=limit, offset=offset, group_by_field="grp",
                            group_size=size, strict_group_size=strict, output_fields=["grp"])
        for q, hits in zip(queries, res):
            ids, _ = ranking(q, vecs, "L2", alive)
            assert ids_of(hits) == reference_groups(ids, groups, limit, offset, size, strict)
            assert all(h["entity"]["grp"] == groups[h["id"]] for h in hits)


def test_grouping_on_varchar_with_filter_in_search_params(client, rng):
    vecs, alive, _, tags = make(client, rng, "IP", deletes=[1, 2, 3])
    q = rng.standard_normal(DIM).astype(np.float32)
    hits = client.search("c", [q], limit=3, filter="score > 100",
                         search_params={"group_by_field": "tag", "group_size": 2,
                                        "strict_group_size": True})[0]
    allowed = alive & (np.arange(600) > 100)
    ids, _ = ranking(q, vecs, "IP", allowed)
    assert ids_of(hits) == reference_groups(ids, tags, 3, 0, 2, True)
    assert hits[0]["entity"] == {}  # the group value comes back only as an output field
    # A range restricts the candidates before grouping.
    ranged = client.search("c", [q], limit=50, group_by_field="tag",
                           search_params={"params": {"radius": 1.0}})[0]
    ids_r, dist_r = ranking(q, vecs, "IP", alive)
    kept = ids_r[dist_r > 1.0]
    assert ids_of(ranged) == reference_groups(kept, tags, 50, 0, 1, False)


def test_grouping_bad_inputs(client, rng):
    make(client, rng, "L2", n=20)
    q = [[0.0] * DIM]
    for kwargs, msg in [({"group_by_field": "score"}, "unsupported data type FLOAT"),
                        ({"group_by_field": "meta"}, "unsupported data type JSON"),
                        ({"group_by_field": "vector"}, "unsupported data type"),
                        ({"group_by_field": "nope"}, r"groupBy field\(nope\) not found"),
                        ({"group_by_field": "grp", "group_size": 0}, "group_size"),
                        ({"group_by_field": "grp", "group_size": 11}, "group_size"),
                        ({"group_size": 2}, "need group_by_field"),
                        ({"group_by_field": "grp", "strict_group_size": "yes"}, "strict"),
                        ({"group_by_field": "grp", "search_params": {"group_by_field": "tag"}},
                         "ambiguous parameter")]:
        with pytest.raises(InvalidArgument, match=msg):
            client.search("c", q, **kwargs)


# ---- search by primary key ----------------------------------------------------------------------


def test_search_by_ids_equals_search_by_stored_vectors(client, rng):
    vecs, alive, _, _ = make(client, rng, "COSINE", deletes=[10, 11])
    pks = [3, 500, 3, 42]  # sealed, growing, repeated
    by_ids = client.search("c", ids=pks, limit=6, output_fields=["tag"], filter="score >= 2")
    by_data = client.search("c", [vecs[i] for i in pks], limit=6, output_fields=["tag"],
                            filter="score >= 2")
    assert by_ids == by_data
    assert by_ids[0][0]["id"] == 3  # the ids do not filter: the filter still applies
    grouped = client.search("c", ids=[500], limit=4, group_by_field="grp")[0]
    assert len({h["id"] for h in grouped}) == 4
    with pytest.raises(InvalidArgument, match=r"\[10, 9999\] not found"):
        client.search("c", ids=[1, 10, 9999])  # 10 is deleted
    with pytest.raises(InvalidArgument, match="not both"):
        client.search("c", [vecs[0]], ids=[1])
    with pytest.raises(InvalidArgument, match="needs data"):
        client.search("c")
    with pytest.raises(InvalidArgument, match="integers"):
        client.search("c", ids=["a"])


def test_search_by_string_ids(client, rng):
    client.create_collection("s", dimension=4, id_type="string", metric_type="L2")
    client.insert("s", [{"id": f"k{i}", "vector": [i, 0, 0, 0]} for i in range(10)])
    hits = client.search("s", ids=["k4"], limit=3)[0]
    assert ids_of(hits) == ["k4", "k3", "k5"]


# ---- search_iterator ----------------------------------------------------------------------------


def drain(it):
    pages = []
    while True:
        page = it.next()
        if not page:
            return pages
        pages.append(page)


@pytest.mark.parametrize("metric", ["L2", "IP", "HAMMING"])
def test_iterator_exhausts_the_ranking(client, rng, metric):
    binary = metric == "HAMMING"
    n = 1500
    vecs, alive, _, tags = make(client, rng, metric, n=n, dim=32 if binary else DIM,
                                deletes=range(0, n, 11))
    q = vecs[0] if binary else rng.standard_normal(DIM).astype(np.float32)
    query = [bytes(q)] if binary else [q.tolist()]
    it = client.search_iterator("c", query, batch_size=128, filter='tag != "t0"',
                                output_fields=["tag"])
    pages = drain(it)
    assert it.next() == []
    hits = [h for p in pages for h in p]
    allowed = alive & (tags != "t0")
    ids, dist = ranking(q, vecs, metric, allowed)
    assert len(pages) > 5 and all(len(p) == 128 for p in pages[:-1])
    got = ids_of(hits)
    assert len(got) == len(set(got)) == ids.size and set(got) == set(ids.tolist())
    d = np.array([h["distance"] for h in hits])
    key = -d if metric in HIGHER else d
    assert np.all(np.diff(key) >= 0)  # closest first across page boundaries
    np.testing.assert_allclose(d, dist, rtol=1e-4, atol=1e-4)
    assert all(h["entity"]["tag"] != "t0" for h in hits)


def test_iterator_limit_range_and_rounding(client, rng):
    vecs, alive, _, _ = make(client, rng, "L2", n=400)
    q = rng.standard_normal(DIM).astype(np.float32)
    ids, dist = ranking(q, vecs, "L2", alive)
    it = client.search_iterator("c", [q], batch_size=30, limit=100, round_decimal=2)
    pages = drain(it)
    assert [len(p) for p in pages] == [30, 30, 30, 10]
    hits = [h for p in pages for h in p]
    assert ids_of(hits) == ids[:100].tolist()
    assert all(h["distance"] == round(h["distance"], 2) for h in hits)
    radius, rf = gap_value(dist, 250, "L2"), gap_value(dist, 50, "L2")
    ranged = drain(client.search_iterator("c", [q], batch_size=64, search_params={
        "params": {"radius": radius, "range_filter": rf}}))
    want = ids[(dist >= rf) & (dist < radius)]
    assert ids_of([h for p in ranged for h in p]) == want.tolist()
    closed = client.search_iterator("c", [q], batch_size=10)
    closed.close()
    assert closed.next() == []


def test_iterator_goes_past_16384(client, rng):
    n = 20000
    client.create_collection("big", dimension=4, metric_type="IP")
    vecs = rng.standard_normal((n, 4)).astype(np.float32)
    for s in range(0, n, 5000):
        client.insert("big", {"id": np.arange(s, s + 5000), "vector": vecs[s:s + 5000]})
        if s == 10000:
            client.flush("big")
    q = rng.standard_normal(4).astype(np.float32)
    hits = [h for p in drain(client.search_iterator("big", [q], batch_size=4000)) for h in p]
    ids, _ = ranking(q, vecs, "IP", np.ones(n, dtype=bool))
    assert len(hits) == n and len(set(ids_of(hits))) == n
    assert set(ids_of(hits)) == set(ids.tolist())


def test_iterator_bad_inputs(client, rng):
    make(client, rng, "L2", n=20)
    q = [[0.0] * DIM]
    for kwargs, err, msg in [
            ({"data": [[0.0] * DIM] * 2}, InvalidArgument, "multiple vectors"),
            ({"batch_size": 0}, InvalidArgument, "batch_size"),
            ({"batch_size": 16385}, InvalidArgument, "batch_size"),
            ({"limit": -2}, InvalidArgument, "limit"),
            ({"offset": 3}, InvalidArgument, "offset"),
            ({"group_by_field": "grp"}, InvalidArgument, "group_by_field"),
            ({"ids": [1]}, InvalidArgument, "ids"),
            ({"round_decimal": 9}, InvalidArgument, "round_decimal"),
            ({"filter": "id >"}, InvalidArgument, None),
            ({"external_filter_func": len}, NotSupported, "external_filter_func")]:
        args = {"data": q, **kwargs}
        with pytest.raises(err, match=msg):
            client.search_iterator("c", **args)


# ---- search parameters --------------------------------------------------------------------------


def test_search_params_validation(client, rng):
    vecs, _, _, _ = make(client, rng, "L2", n=50)
    q = [vecs[1].tolist()]
    base = client.search("c", q, limit=3)
    for harmless in ({"params": {"ef": 64}}, {"nprobe": 8}, {"params": {"level": 2}},
                     {"metric_type": "L2", "offset": 0, "hints": "iterative_filter"}):
        assert client.search("c", q, limit=3, search_params=harmless) == base
    with pytest.raises(InvalidArgument, match=r"unknown search parameter\(s\) \['efs'\]"):
        client.search("c", q, search_params={"params": {"efs": 64}})
    with pytest.raises(InvalidArgument, match="metric type not match"):
        client.search("c", q, search_params={"metric_type": "IP"})
    with pytest.raises(InvalidArgument, match="round_decimal"):
        client.search("c", q, round_decimal=7)
    with pytest.raises(InvalidArgument, match="params"):
        client.search("c", q, search_params={"params": [1]})
    with pytest.raises(NotSupported, match="ignore_growing"):
        client.search("c", q, search_params={"ignore_growing": True})
