"""The search path's shortcuts against the general path they stand in for, on seeded random
inputs: the single-part top-k (proxy.search.one_part) against the merge, the small one-query merge
against the array one, the query-vector shortcut against the row-by-row conversion, and whole
searches (cached plans, shared visibility masks, one-part results, key-only shaping) against the
same searches with every shortcut patched out."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore import MilvusClient
from vecstore.proxy import reduce, search
from vecstore.proxy.convert import query_vectors
from vecstore.proxy.proxy import Proxy
from vecstore.proxy.reduce import merge_topk_sources
from vecstore.proxy.search_ranked import Ranked
from vecstore.streaming_node.growing import VectorSpec

HIGHER = {"IP", "COSINE"}


def general_one_part(part, pks, rows, dist, k, metric, offset):
    """What _topk did for every part count before one_part: merge, then one Ranked per query."""
    out = []
    for q, (ids, d, cols) in enumerate(merge_topk_sources([(pks, dist)], k, metric)):
        ids, d, cols = ids[offset:], d[offset:], cols[offset:]
        out.append(Ranked(ids, d, -d if metric in HIGHER else d,
                          np.full(ids.size, part, dtype=np.intp), rows[q, cols], True))
    return out


def random_part(rng, nq, width, metric, pk_kind="int64"):
    """knn-like output: each row sorted best first, often with ties, sometimes padded, and keys
    sometimes repeated (duplicate inserts)."""
    rows = np.stack([rng.permutation(200)[:width] for _ in range(nq)]).astype(np.int64)
    dist = np.sort(rng.integers(0, 12, (nq, width)).astype(np.float32)
                   if rng.random() < 0.5 else rng.random((nq, width), dtype=np.float32), axis=1)
    if metric in HIGHER:
        dist = dist[:, ::-1].copy()
    pad = rng.integers(0, width + 1, nq) if rng.random() < 0.3 else np.full(nq, width)
    for q in range(nq):
        rows[q, pad[q]:] = -1
        dist[q, pad[q]:] = -np.inf if metric in HIGHER else np.inf
    space = 40 if rng.random() < 0.5 else 1_000_000
    table = rng.integers(0, space, 200)
    if pk_kind == "string":
        table = np.array([f"k{v}" for v in table])
    return table[np.maximum(rows, 0)], rows, dist


def as_lists(ranked):
    return [(r.pks.tolist(), r.dist.tolist(), r.part.tolist(), r.row.tolist()) for r in ranked]


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE", "HAMMING"])
@pytest.mark.parametrize("pk_kind", ["int64", "string"])
def test_one_part_matches_the_merge(rng, metric, pk_kind):
    for _ in range(300):
        nq = int(rng.choice([1, 1, 2, 7, 40]))
        width = int(rng.integers(1, 80))
        offset = int(rng.integers(0, 4))
        k = width + int(rng.integers(0, 3))
        pks, rows, dist = random_part(rng, nq, width, metric, pk_kind)
        fast = search.one_part(3, pks, rows, dist, k, metric, offset)
        want = general_one_part(3, pks, rows, dist, k, metric, offset)
        assert as_lists(fast.ranked()) == as_lists(want)
        got_pks, got_dists = fast.lists()
        assert got_pks == [r.pks.tolist() for r in want]
        assert got_dists == [r.dist.tolist() for r in want]


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_small_one_query_merge_matches_the_array_merge(rng, metric, monkeypatch):
    for _ in range(400):
        kind = "string" if rng.random() < 0.3 else "int64"
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            pks, _, dist = random_part(rng, 1, int(rng.integers(1, 30)), metric, kind)
            parts.append((pks, dist))
        k = int(rng.integers(1, 40))
        small = merge_topk_sources(parts, k, metric)
        with monkeypatch.context() as m:
            m.setattr(reduce, "_SMALL_MERGE", -1)
            array = merge_topk_sources(parts, k, metric)
        for a, b in zip(small, array):
            for x, y in zip(a, b):
                assert x.dtype == y.dtype and x.tolist() == y.tolist()


@pytest.mark.parametrize("kind", ["float32", "float16", "int8", "binary"])
def test_query_vector_shortcut_matches_the_general_conversion(rng, kind):
    spec = VectorSpec(kind, 64)
    dtypes = {"float32": np.float32, "float16": np.float16, "int8": np.int8,
              "binary": np.uint8}
    cols = spec.columns
    for data in (
        [rng.standard_normal(cols).astype(dtypes[kind])],
        rng.standard_normal((5, cols)).astype(dtypes[kind]),
        rng.standard_normal((5, 2 * cols)).astype(dtypes[kind])[:, ::2],  # strided rows
        np.asfortranarray(rng.standard_normal((4, cols)).astype(dtypes[kind])),
        rng.standard_normal((3, cols)),  # float64: converted, general path
    ):
        got = query_vectors(data, spec)
        want = query_vectors(tuple(data), spec)  # a tuple always takes the general path
        assert got.dtype == want.dtype and got.flags.c_contiguous
        assert np.array_equal(got, want)
        if isinstance(data, np.ndarray):
            assert not np.shares_memory(got, data)


def _general(monkeypatch):
    """Patches every search shortcut out (inside a monkeypatch.context())."""
    monkeypatch.setattr(search, "one_part", general_one_part)
    monkeypatch.setattr(search, "_fast", lambda *args: None)
    monkeypatch.setattr(search, "_cached", lambda proxy, key, meta, compute: compute())
    monkeypatch.setattr(reduce, "_SMALL_MERGE", -1)
    monkeypatch.setattr(Proxy, "_visibility", lambda self, parts, snap, dp, dt: self._masks(
        parts, None, snap, dp, dt, None, None))


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_searches_match_the_general_path(tmp_path, rng, metric, monkeypatch):
    """Inserts (duplicate keys included), upserts, deletes and flushes interleaved with searches
    of every common shape; vectors of small integers make exact ties frequent. No background
    flushes: equal distances at the k-th place are cut by segment layout, which must not change
    between the two searches compared."""
    monkeypatch.setenv("VECSTORE_BACKGROUND", "0")
    used = {"one_part": 0, "merged rows": 0}
    one_part = search.one_part

    def counting(*args):
        found = one_part(*args)
        used["one_part"] += 1
        used["merged rows"] += len(found.merged)
        return found

    monkeypatch.setattr(search, "one_part", counting)
    fast = search._fast

    def counting_fast(*args):
        got = fast(*args)
        used["fast"] = used.get("fast", 0) + (got is not None)
        return got

    monkeypatch.setattr(search, "_fast", counting_fast)
    client = MilvusClient(str(tmp_path / "db"))
    try:
        client.create_collection("c", dimension=8, metric_type=metric)
        next_id = 0
        for step in range(40):
            op = rng.random()
            if op < 0.45 or next_id == 0:
                n = int(rng.integers(1, 60))
                ids = np.arange(next_id, next_id + n)
                if rng.random() < 0.3 and next_id:
                    ids = rng.choice(next_id, min(n, next_id), replace=False)  # stored keys again
                next_id += n
                n = ids.size
                vecs = rng.integers(-2, 3, (n, 8)).astype(np.float32)
                vecs[np.all(vecs == 0, axis=1), 0] = 1  # COSINE needs non-zero vectors
                rows = [{"id": int(i), "vector": v} for i, v in zip(ids, vecs)]
                (client.upsert if rng.random() < 0.2 else client.insert)("c", rows)
            elif op < 0.6:
                client.delete("c", ids=rng.integers(0, next_id, 5).tolist())
            elif op < 0.75:
                client.flush("c")
            for _ in range(3):
                nq = int(rng.choice([1, 1, 4, 30]))
                queries = rng.integers(-2, 3, (nq, 8)).astype(np.float32)
                data = [queries[0]] if nq == 1 and rng.random() < 0.5 else queries
                kwargs = {"limit": int(rng.integers(1, 25))}
                if rng.random() < 0.4:
                    kwargs["offset"] = int(rng.integers(1, 5))
                if rng.random() < 0.3:
                    kwargs["round_decimal"] = int(rng.integers(0, 4))
                if rng.random() < 0.3:
                    kwargs["consistency_level"] = "Strong"
                fields = [None, ["id"], ["vector"], ["*"]][int(rng.integers(0, 4))]
                if fields is not None:
                    kwargs["output_fields"] = fields
                got = client.search("c", data, **kwargs)
                with monkeypatch.context() as m:
                    _general(m)
                    want = client.search("c", data, **kwargs)
                assert got == want, (step, kwargs)
    finally:
        client.close()
    # Both kinds of rows were compared: taken as they are, and resolved by the merge (ties).
    assert used["one_part"] >= 10 and used["merged rows"] > 0, used


def test_cached_plan_follows_the_catalog(tmp_path, rng):
    """A cached plan is dropped with the CollectionMeta it came from: after the index (and so
    the metric) changes, the same request is parsed again."""
    client = MilvusClient(str(tmp_path / "db"))
    try:
        client.create_collection("c", dimension=4, metric_type="L2")
        client.insert("c", [{"id": i, "vector": rng.standard_normal(4).tolist()}
                            for i in range(20)])
        q = [rng.standard_normal(4).astype(np.float32)]
        l2 = client.search("c", q, limit=5)
        client.release_collection("c")
        client.drop_index("c", "vector")
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        client.create_index("c", index)
        client.load_collection("c")
        ip = client.search("c", q, limit=5)
        assert [h["distance"] for h in l2[0]] == sorted(h["distance"] for h in l2[0])
        assert [h["distance"] for h in ip[0]] == sorted((h["distance"] for h in ip[0]),
                                                        reverse=True)
    finally:
        client.close()


@pytest.mark.parametrize("fields", [None, ["id"], ["vector"]])
def test_large_results_shape_alike_and_leave_the_collector_on(tmp_path, rng, fields,
                                                               monkeypatch):
    """Past _GC_PAUSE_HITS hits the hits are built with the cyclic GC paused: the same hits,
    and the collector is on again afterwards (and stays off if the caller had turned it off)."""
    import gc

    monkeypatch.setenv("VECSTORE_BACKGROUND", "0")
    client = MilvusClient(str(tmp_path / "db"))
    try:
        client.create_collection("c", dimension=8, metric_type="L2")
        client.insert("c", {"id": np.arange(300), "vector": rng.standard_normal((300, 8))
                            .astype(np.float32)})
        client.flush("c")
        queries = rng.standard_normal((400, 8)).astype(np.float32)
        kwargs = {} if fields is None else {"output_fields": fields}
        got = client.search("c", queries, limit=10, **kwargs)  # 4,000 hits
        assert gc.isenabled()
        with monkeypatch.context() as m:
            m.setattr(search, "_GC_PAUSE_HITS", 1 << 30)
            want = client.search("c", queries, limit=10, **kwargs)
        assert got == want
        gc.disable()
        try:
            assert client.search("c", queries, limit=10, **kwargs) == want
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        client.close()


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_one_segment_shortcut_matches_the_general_path(tmp_path, rng, metric, monkeypatch):
    """proxy.search._fast (every row in one sealed segment): the same hits as the general path
    with ties (small-integer vectors), after deletes (a visibility mask), and it steps aside
    once growing rows exist."""
    monkeypatch.setenv("VECSTORE_BACKGROUND", "0")
    answered = []
    fast = search._fast

    def counting_fast(*args):
        got = fast(*args)
        answered.append(got is not None)
        return got

    monkeypatch.setattr(search, "_fast", counting_fast)
    client = MilvusClient(str(tmp_path / "db"))
    try:
        client.create_collection("c", dimension=8, metric_type=metric)
        vecs = rng.integers(-2, 3, (500, 8)).astype(np.float32)
        vecs[np.all(vecs == 0, axis=1), 0] = 1
        client.insert("c", {"id": np.arange(500), "vector": vecs,
                            "tag": (np.arange(500) % 10).tolist()})
        client.flush("c")

        def compare() -> None:
            for _ in range(30):
                nq = int(rng.choice([1, 1, 3]))
                q = rng.integers(-2, 3, (nq, 8)).astype(np.float32) + \
                    (rng.random((nq, 8), dtype=np.float32) * 0.01 if rng.random() < 0.5 else 0)
                kwargs = {"limit": int(rng.integers(1, 20))}
                if rng.random() < 0.5:
                    kwargs["search_params"] = {"params": {"ef": 64}}
                if rng.random() < 0.5:
                    kwargs["filter"] = ["id < 40", "tag == 3", "id >= 0", "id < 0",
                                        "tag in [{a}, 7]"][int(rng.integers(0, 5))]
                    if "{a}" in kwargs["filter"]:
                        kwargs["filter_params"] = {"a": int(rng.integers(0, 10))}
                got = client.search("c", q, **kwargs)
                with monkeypatch.context() as m:
                    _general(m)
                    want = client.search("c", q, **kwargs)
                assert got == want, kwargs

        compare()
        assert any(answered)
        client.delete("c", ids=rng.choice(500, 40, replace=False).tolist())
        answered.clear()
        compare()
        assert any(answered)
        client.insert("c", {"id": np.arange(500, 510), "vector": vecs[:10]})
        answered.clear()
        compare()
        assert not any(answered)  # growing rows: the general path answers
    finally:
        client.close()


def test_one_segment_shortcut_respects_partition_rules(tmp_path, rng, monkeypatch):
    """A released or dropped partition changes the catalog entry, so the shortcut's cached shape
    no longer applies and the general path's partition rule hides those rows."""
    monkeypatch.setenv("VECSTORE_BACKGROUND", "0")
    client = MilvusClient(str(tmp_path / "db"))
    try:
        client.create_collection("c", dimension=4, metric_type="L2")
        client.create_partition("c", "p")
        vecs = rng.standard_normal((40, 4)).astype(np.float32)
        client.insert("c", [{"id": i, "vector": vecs[i]} for i in range(20)])
        client.insert("c", [{"id": i, "vector": vecs[i]} for i in range(20, 40)],
                      partition_name="p")
        client.flush("c")
        q = vecs[25:26]
        for _ in range(2):  # the second call takes the shortcut
            assert client.search("c", q, limit=1)[0][0]["id"] == 25
        client.release_partitions("c", ["p"])
        for _ in range(2):
            assert client.search("c", q, limit=40)[0] and \
                all(h["id"] < 20 for h in client.search("c", q, limit=40)[0])
        client.load_partitions("c", ["p"])
        client.release_partitions("c", ["p"])
        client.drop_partition("c", "p")
        for _ in range(2):
            assert all(h["id"] < 20 for h in client.search("c", q, limit=40)[0])
    finally:
        client.close()
