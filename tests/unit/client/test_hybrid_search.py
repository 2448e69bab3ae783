"""MilvusClient.hybrid_search: RRF and weighted fusion of several vector searches, checked against
a numpy brute force per request and a plain-Python fusion written from Milvus's definitions
(RRF: sum of 1/(k+rank); weighted: sum of w * normalised score), over sealed and growing data
with deletes, per-request filters, offset, limit, output fields, VARCHAR keys and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.reference import ref_cdist
from vecstore import AnnSearchRequest, DataType, MilvusClient, RRFRanker, WeightedRanker
from vecstore.client.milvus_client import CollectionNotLoaded, NotSupported
from vecstore.errors import InvalidArgument, VecstoreError
from vecstore.schema.collection import Function
from vecstore.schema.types import FunctionType

N = 300
FIELDS = {"a": ("L2", 8), "b": ("COSINE", 6), "c": ("IP", 5)}
COLORS = ["red", "green", "blue"]


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    yield c
    c.close()


def make_collection(client, rng, pk_type=DataType.INT64):
    """Rows 0..N-1 on three vector fields: the first 200 flushed, the rest growing, some of each
    deleted. Returns the reference model: {pk: row} of the live rows and the vectors by field."""
    schema = MilvusClient.create_schema()
    if pk_type == DataType.INT64:
        schema.add_field("pk", DataType.INT64, is_primary=True)
    else:
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=32)
    for f, (_, dim) in FIELDS.items():
        schema.add_field(f, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("n", DataType.INT64)
    schema.add_field("color", DataType.VARCHAR, max_length=8)
    index = MilvusClient.prepare_index_params()
    for f, (metric, _) in FIELDS.items():
        index.add_index(f, index_type="FLAT", metric_type=metric)
    client.create_collection("h", schema=schema, index_params=index)
    vecs = {f: rng.standard_normal((N, dim)).astype(np.float32) for f, (_, dim) in FIELDS.items()}
    keys = list(range(N)) if pk_type == DataType.INT64 else [f"k{(i * 37) % N:03d}é"
                                                               for i in range(N)]
    rows = [{"pk": keys[i], **{f: vecs[f][i] for f in FIELDS}, "n": i, "color": COLORS[i % 3]}
            for i in range(N)]
    client.insert("h", rows[:200])
    client.delete("h", ids=[keys[i] for i in (3, 50, 120)])
    client.flush("h")
    client.insert("h", rows[200:])
    client.delete("h", ids=[keys[i] for i in (5, 210, 299)])
    live = [i for i in range(N) if i not in (3, 50, 120, 5, 210, 299)]
    return keys, live, vecs


def brute_force(query, field, vecs, allowed, limit):
    """The request's top ``limit`` (row index, distance), best first, from float64 distances."""
    metric = FIELDS[field][0]
    d = ref_cdist(np.asarray(query, np.float32)[None], vecs[field][allowed], metric)[0]
    order = np.argsort(-d if metric in ("IP", "COSINE") else d, kind="stable")[:limit]
    return [(int(allowed[i]), float(d[i])) for i in order]


def norm(metric, d):
    if metric == "COSINE":
        return (1 + d) / 2
    if metric == "IP":
        return 0.5 + math.atan(d) / math.pi
    return 1 - 2 * math.atan(d) / math.pi


def ref_rrf(lists, k):
    """RRF with Milvus's float32 arithmetic: float32(1/(k+rank)) summed in request order."""
    scores: dict = {}
    for hits in lists:
        for rank, (key, _) in enumerate(hits, start=1):
            term = np.float32(1) / (np.float32(k) + np.float32(rank))
            scores[key] = np.float32(scores[key] + term) if key in scores else term
    return {key: float(s) for key, s in scores.items()}


def ref_weighted(lists, metrics, weights, norm_score):
    larger = [m in ("IP", "COSINE") for m in metrics]
    mixed = any(larger) and not all(larger)
    scores: dict = {}
    for hits, metric, w, big in zip(lists, metrics, weights, larger):
        for key, d in hits:
            s = norm(metric, d) if norm_score or (mixed and not big) else d
            scores[key] = scores.get(key, 0.0) + w * s
    return scores, norm_score or mixed or all(larger)


def check(got, scores, limit, offset, descending=True, exact=False, tol=1e-4):
    """``got`` (one query's hits) is the reference ranking's [offset, offset+limit) slice: equal
    scores order by key; with ``exact`` False, ids may differ only inside near-ties."""
    order = sorted(scores, key=lambda key: (-scores[key] if descending else scores[key], key))
    want = order[offset:offset + limit]
    assert len(got) == len(want)
    if exact:
        assert [h["id"] for h in got] == want
    for h, key in zip(got, want):
        assert h["distance"] == pytest.approx(scores[key], abs=tol)
        assert h["id"] == key or abs(scores[h["id"]] - scores[key]) < tol


def test_rrf_two_fields_filters_offset_output_fields(client, rng):
    keys, live, vecs = make_collection(client, rng)
    qa = rng.standard_normal((2, 8)).astype(np.float32)
    qb = rng.standard_normal((2, 6)).astype(np.float32)
    reqs = [AnnSearchRequest(qa, "a", {"metric_type": "L2"}, 20),
            AnnSearchRequest(qb.tolist(), "b", {}, 15, expr="n >= {lo} and color != 'red'",
                             expr_params={"lo": 40})]
    got = client.hybrid_search("h", reqs, RRFRanker(k=10), limit=12, offset=3,
                               output_fields=["n", "color"])
    assert len(got) == 2
    allowed_b = np.array([i for i in live if i >= 40 and COLORS[i % 3] != "red"])
    for q in range(2):
        lists = [brute_force(qa[q], "a", vecs, np.array(live), 20),
                 brute_force(qb[q], "b", vecs, allowed_b, 15)]
        check(got[q], ref_rrf(lists, 10), 12, 3, exact=True)
        for h in got[q]:
            assert set(h) == {"id", "distance", "entity"}
            assert h["entity"] == {"n": h["id"], "color": COLORS[h["id"] % 3]}
    # RRF scores depend only on ranks: an id first in both lists scores 2/(k+1) exactly.
    same = client.hybrid_search("h", [AnnSearchRequest([vecs["a"][7]], "a", {}, 5),
                                      AnnSearchRequest([vecs["b"][7]], "b", {}, 5)],
                                RRFRanker(), limit=1)
    assert same[0][0]["id"] == 7
    assert same[0][0]["distance"] == pytest.approx(2 / 61, rel=1e-6)
    assert same[0][0]["entity"] == {}


@pytest.mark.parametrize("norm_score", [True, False])
def test_weighted_three_metrics(client, rng, norm_score):
    _, live, vecs = make_collection(client, rng)
    q = {f: rng.standard_normal((1, dim)).astype(np.float32) for f, (_, dim) in FIELDS.items()}
    weights = (0.6, 0.3, 0.1)
    reqs = [AnnSearchRequest(q[f], f, {}, 10 + i * 5) for i, f in enumerate(FIELDS)]
    got = client.hybrid_search("h", reqs, WeightedRanker(*weights, norm_score=norm_score),
                               limit=15, output_fields=["n"])[0]
    lists = [brute_force(q[f][0], f, vecs, np.array(live), 10 + i * 5)
             for i, f in enumerate(FIELDS)]
    scores, descending = ref_weighted(lists, [m for m, _ in FIELDS.values()], weights,
                                      norm_score)
    assert descending  # normalised, or L2 mixed with IP/COSINE
    check(got, scores, 15, 0)
    assert all(h["entity"] == {"n": h["id"]} for h in got)


def test_weighted_raw_smaller_is_better_sorts_ascending(client, rng):
    _, live, vecs = make_collection(client, rng)
    q = rng.standard_normal((2, 8)).astype(np.float32)
    reqs = [AnnSearchRequest([q[0]], "a", {}, 12), AnnSearchRequest([q[1]], "a", {}, 12)]
    got = client.hybrid_search("h", reqs, WeightedRanker(0.5, 1.0, norm_score=False), limit=30)
    lists = [brute_force(q[i], "a", vecs, np.array(live), 12) for i in range(2)]
    scores, descending = ref_weighted(lists, ["L2", "L2"], (0.5, 1.0), False)
    assert not descending  # Milvus keeps raw L2 sums smallest first
    check(got[0], scores, 30, 0, descending=False)
    dist = [h["distance"] for h in got[0]]
    assert dist == sorted(dist)


def test_varchar_keys_pymilvus_objects_and_rerank_functions(client, rng):
    keys, live, vecs = make_collection(client, rng, DataType.VARCHAR)
    qa, qc = vecs["a"][11] + 0.1, vecs["c"][40]
    lists = [brute_force(qa, "a", vecs, np.array(live), 10),
             brute_force(qc, "c", vecs, np.array(live), 10)]
    lists = [[(keys[i], d) for i, d in hits] for hits in lists]
    ours = client.hybrid_search("h", [AnnSearchRequest([qa], "a", {}, 10),
                                      AnnSearchRequest([qc], "c", {}, 10)], RRFRanker(5),
                                limit=8, output_fields=["pk"])
    check(ours[0], ref_rrf(lists, 5), 8, 0, exact=True)
    assert all(h["entity"] == {"pk": h["id"]} for h in ours[0])
    fn = Function("rrf", FunctionType.RERANK, [], params={"reranker": "rrf", "k": 5})
    assert client.hybrid_search("h", [AnnSearchRequest([qa], "a", {}, 10),
                                      AnnSearchRequest([qc], "c", {}, 10)], fn, limit=8,
                                output_fields=["pk"]) == ours
    weighted = Function("w", FunctionType.RERANK, [],
                        params={"reranker": "weighted", "weights": [0.2, 0.8], "norm_score": True})
    by_fn = client.hybrid_search("h", [AnnSearchRequest([qa], "a", {}, 10),
                                       AnnSearchRequest([qc], "c", {}, 10)], weighted, limit=5)
    scores, _ = ref_weighted(lists, ["L2", "IP"], (0.2, 0.8), True)
    check(by_fn[0], scores, 5, 0)
    pymilvus = pytest.importorskip("pymilvus")
    theirs = client.hybrid_search("h", [pymilvus.AnnSearchRequest([qa], "a", {}, 10),
                                        pymilvus.AnnSearchRequest([qc], "c", {}, 10)],
                                  pymilvus.RRFRanker(5), limit=8, output_fields=["pk"])
    assert theirs == ours
    assert client.hybrid_search("h", [pymilvus.AnnSearchRequest([qa], "a", {}, 10),
                                      pymilvus.AnnSearchRequest([qc], "c", {}, 10)],
                                pymilvus.WeightedRanker(0.2, 0.8), limit=5) == by_fn


def test_partitions_round_decimal_and_short_results(client, rng):
    _, live, vecs = make_collection(client, rng)
    q = vecs["b"][20]
    none = client.hybrid_search("h", [AnnSearchRequest([q], "b", {}, 5, expr="n < 0"),
                                      AnnSearchRequest([q], "b", {}, 5, filter="n > 1000")],
                                RRFRanker())
    assert none == [[]]
    few = client.hybrid_search("h", [AnnSearchRequest([q], "b", {}, 3),
                                     AnnSearchRequest([q], "b", {}, 2, expr="n in [1, 2]")],
                               RRFRanker(), limit=50)[0]
    assert len(few) == 5  # 3 + 2 distinct hits, fewer than the limit
    # Row 20 leads one list and row 1 or 2 the other: equal scores, the smaller key first.
    assert few[0]["id"] in (1, 2) and few[1]["id"] == 20
    assert few[0]["distance"] == few[1]["distance"]
    rounded = client.hybrid_search("h", [AnnSearchRequest([q], "b", {}, 5),
                                         AnnSearchRequest([vecs["a"][20]], "a", {}, 5)],
                                   WeightedRanker(0.5, 0.5), round_decimal=3)[0]
    assert all(h["distance"] == round(h["distance"], 3) for h in rounded)
    assert client.hybrid_search("h", [AnnSearchRequest([q], "b", {}, 5)], RRFRanker(),
                                partition_names=["_default"]) == \
        client.hybrid_search("h", [AnnSearchRequest([q], "b", {}, 5)], RRFRanker())


def test_bad_input_raises_and_changes_nothing(client, rng):
    make_collection(client, rng)
    q8, q6 = [0.1] * 8, [0.2] * 6
    good = [AnnSearchRequest([q8], "a", {}, 5), AnnSearchRequest([q6], "b", {}, 5)]
    before = client.hybrid_search("h", good, RRFRanker(), limit=7, output_fields=["n"])
    count = client.query("h", output_fields=["count(*)"])
    ctor_errors = [
        lambda: RRFRanker(0), lambda: RRFRanker(16384), lambda: RRFRanker("60"),
        lambda: WeightedRanker(), lambda: WeightedRanker(1.5), lambda: WeightedRanker(True),
        lambda: WeightedRanker(0.5, norm_score="yes"),
        lambda: AnnSearchRequest([q8], "a", {}, 0), lambda: AnnSearchRequest([q8], "a", {}, 16385),
        lambda: AnnSearchRequest([q8], "a", "L2", 5), lambda: AnnSearchRequest([q8], 3, {}, 5),
        lambda: AnnSearchRequest([q8], "a", {}, 5, expr=1),
        lambda: AnnSearchRequest([q8], "a", {}, 5, expr="n > 1", filter="n > 2"),
        lambda: AnnSearchRequest([q8], "a", {}, 5, expr_params=[1]),
    ]
    for make in ctor_errors:
        with pytest.raises(InvalidArgument):
            make()
    calls = [
        (InvalidArgument, dict(reqs=[])),
        (InvalidArgument, dict(reqs=good[0])),
        (InvalidArgument, dict(reqs=[{"data": [q8]}])),
        (InvalidArgument, dict(reqs=[good[0]] * 1025)),
        (InvalidArgument, dict(ranker=WeightedRanker(0.5))),
        (InvalidArgument, dict(ranker=WeightedRanker(0.5, 0.2, 0.3))),
        (InvalidArgument, dict(ranker="rrf")),
        (NotSupported, dict(ranker=Function("d", FunctionType.RERANK, [],
                                            params={"reranker": "decay"}))),
        (InvalidArgument, dict(reqs=[good[0], AnnSearchRequest([q6, q6], "b", {}, 5)])),
        (InvalidArgument, dict(reqs=[AnnSearchRequest([q8], "nope", {}, 5)])),
        (InvalidArgument, dict(reqs=[AnnSearchRequest([q6], "a", {}, 5)])),
        (InvalidArgument, dict(reqs=[AnnSearchRequest([q8], "a", {}, 5, expr="n >")])),
        (InvalidArgument, dict(reqs=[AnnSearchRequest([q8], "a", {"metric_type": "IP"}, 5)])),
        (InvalidArgument, dict(reqs=[AnnSearchRequest([q8], None, {}, 5)])),
        (InvalidArgument, dict(reqs=[AnnSearchRequest([q8], "a", {"params": {
            "metric_type": "COSINE"}}, 5)])),
        (InvalidArgument, dict(reqs=[AnnSearchRequest([q8], "a", {"group_by_field": "n"}, 5)])),
        (InvalidArgument, dict(limit=0)),
        (InvalidArgument, dict(limit=16000, offset=1000)),
        (InvalidArgument, dict(round_decimal=7)),
        (InvalidArgument, dict(output_fields=["missing"])),
        (InvalidArgument, dict(partition_names=["missing"])),
        (NotSupported, dict(group_by_field="color")),
    ]
    for error, overrides in calls:
        args = {"reqs": good, "ranker": RRFRanker(), "limit": 7, **overrides}
        with pytest.raises(error) as info:
            client.hybrid_search("h", **args)
        assert isinstance(info.value, VecstoreError)
    assert client.query("h", output_fields=["count(*)"]) == count
    assert client.hybrid_search("h", good, RRFRanker(), limit=7, output_fields=["n"]) == before
    client.release_collection("h")
    with pytest.raises(CollectionNotLoaded):
        client.hybrid_search("h", good, RRFRanker())
