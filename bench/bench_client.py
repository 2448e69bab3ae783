"""MilvusClient's own costs, the figures this session's read- and write-path commits cite:

- ``search_small``: one query per call over a 2,000-row collection (flushed, plus a few growing
  rows), so the kernels cost almost nothing and the time is the stack's (proxy, MVCC masks,
  merge, result shaping);
- ``search_100k``: one query per call over 100k x 128 flushed rows, against raw ``vecstore.knn``
  on the same array (the stack's overhead is the difference);
- ``insert_columns``: durable (sync=always) inserts of 10,000-row dicts of numpy arrays;
- ``count_filter``: ``query("category == 7", output_fields=["count(*)"])`` over the 100k rows;
- ``search_calls``: ``search(coll, q, limit=10)`` with the default output (id, distance, empty
  entity) and 1 or 1,000 queries per call, on a 2,000-row collection and the 100k one (one sealed
  segment, an empty growing one), against that segment's own search (``knn_rows``, what the
  query node runs) on the same queries: the difference is the stack's share;
- ``stack_only``: the same calls on the 2,000-row collection with the segment search answered
  from a precomputed result, so only the stack runs (client, proxy, MVCC, reduce, hit shaping).

Sizes scale with ``VECSTORE_BENCH_SCALE``; the background data node is off so that timings see
only the call measured.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import benchutil
import vecstore

DIM = 128


def _rows(base: int) -> int:
    return max(200, int(base * benchutil.env_scale()))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    os.environ["VECSTORE_BACKGROUND"] = "0"
    rng = benchutil.make_rng("client")
    client = vecstore.MilvusClient(str(tmp_path_factory.mktemp("client") / "db"))
    n_small, n_big = _rows(2000), _rows(100_000)
    small = rng.standard_normal((n_small, DIM), dtype=np.float32)
    big = rng.standard_normal((n_big, DIM), dtype=np.float32)
    client.create_collection("small", dimension=DIM, metric_type="L2")
    client.insert("small", {"id": np.arange(n_small), "vector": small})
    client.flush("small")
    client.insert("small", {"id": np.arange(n_small, n_small + 10), "vector": small[:10]})
    client.create_collection("big", dimension=DIM, metric_type="L2")
    ids = np.arange(n_big)
    client.insert("big", {"id": ids, "vector": big, "category": ids % 100})
    client.flush("big")
    client.create_collection("sealed", dimension=DIM, metric_type="L2")
    client.insert("sealed", {"id": np.arange(n_small), "vector": small})
    client.flush("sealed")
    queries = rng.standard_normal((100, DIM), dtype=np.float32)
    yield client, big, queries
    client.close()
    os.environ.pop("VECSTORE_BACKGROUND", None)


def _cycle(queries):
    state = {"i": 0}

    def next_query():
        state["i"] = (state["i"] + 1) % len(queries)
        return queries[state["i"]]
    return next_query


@pytest.mark.benchmark(group="client-search")
def test_search_small(benchmark, loaded):
    client, _, queries = loaded
    q = _cycle(queries)
    benchmark(lambda: client.search("small", [q()], limit=10, output_fields=["id"]))


@pytest.mark.benchmark(group="client-search")
@pytest.mark.parametrize("path", ["stack", "raw_knn"])
def test_search_100k(benchmark, loaded, path):
    client, big, queries = loaded
    q = _cycle(queries)
    if path == "stack":
        benchmark(lambda: client.search("big", [q()], limit=10, output_fields=["id"]))
    else:
        benchmark(lambda: vecstore.knn(q()[None], big, 10, "L2"))


def _segment(client, name):
    """The collection's one loaded sealed segment (the query node's object)."""
    segments = client._proxy._query.segments(client._catalog.resolve("default", name).id)
    assert len(segments) == 1
    return segments[0][1]


@pytest.fixture(scope="module")
def batch():
    return benchutil.make_rng("client-batch").standard_normal((1000, DIM), dtype=np.float32)


@pytest.mark.benchmark(group="client-search-calls")
@pytest.mark.parametrize("collection", ["sealed", "big"])
@pytest.mark.parametrize("nq", [1, 1000])
@pytest.mark.parametrize("path", ["stack", "knn_rows"])
def test_search_calls(benchmark, loaded, batch, collection, nq, path):
    client = loaded[0]
    benchmark.extra_info.update(dim=DIM, nq=nq, k=10, simd=vecstore.simd_level(),
                                rows=_segment(client, collection).segment.rows)
    queries = batch[:nq]
    if path == "stack":
        data = [queries[0]] if nq == 1 else queries
        got = benchmark(lambda: client.search(collection, data, limit=10))
        assert len(got) == nq and all(len(hits) == 10 for hits in got)
    else:
        seg = _segment(client, collection)
        rows, _ = benchmark(lambda: seg.knn_rows("vector", queries, 10, "L2", None))
        assert rows.shape == (nq, 10)


@pytest.mark.benchmark(group="client-stack-only")
@pytest.mark.parametrize("nq", [1, 1000])
def test_stack_only(benchmark, loaded, batch, nq, monkeypatch):
    client = loaded[0]
    seg = _segment(client, "sealed")
    queries = batch[:nq]
    canned = seg.knn_rows("vector", queries, 10, "L2", None)
    monkeypatch.setattr(type(seg), "knn_rows", lambda *args, **kwargs: canned)
    data = [queries[0]] if nq == 1 else queries
    benchmark.extra_info.update(dim=DIM, nq=nq, k=10, rows=seg.segment.rows)
    got = benchmark(lambda: client.search("sealed", data, limit=10))
    assert len(got) == nq and all(len(hits) == 10 for hits in got)


@pytest.mark.benchmark(group="client-count")
def test_count_filter(benchmark, loaded):
    client, _, _ = loaded
    benchmark(lambda: client.query("big", "category == 7", output_fields=["count(*)"]))


@pytest.mark.benchmark(group="client-insert")
def test_insert_columns(benchmark, tmp_path):
    os.environ["VECSTORE_BACKGROUND"] = "0"
    rng = benchutil.make_rng("client-insert")
    batch = _rows(10_000)
    vecs = rng.standard_normal((batch, DIM), dtype=np.float32)
    client = vecstore.MilvusClient(str(tmp_path / "db"))
    client.create_collection("c", dimension=DIM, metric_type="L2")
    start = [0]

    def insert():
        ids = np.arange(start[0], start[0] + batch)
        start[0] += batch
        client.insert("c", {"id": ids, "vector": vecs})

    try:
        benchmark.pedantic(insert, rounds=20, iterations=1)
    finally:
        client.close()
        os.environ.pop("VECSTORE_BACKGROUND", None)
