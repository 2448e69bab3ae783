"""The read path's pieces together: growing rows, a flushed sealed segment with its delete log, the
shard's newer deletes, snapshots, and the proxy reduce — against brute force over visible rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.reference import ref_cdist
from vecstore.common.mvcc import visible
from vecstore.errors import InvalidArgument
from vecstore.proxy.reduce import merge_topk
from vecstore.query_node.sealed import SealedSegment
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import Segment, write_delete_log
from vecstore.streaming_node.flush import flush
from vecstore.streaming_node.growing import GrowingSegment, VectorSpec

DIM = 24


def batch(rng, start, n, ts):
    pk = np.arange(start, start + n, dtype=np.int64)
    return pk, np.full(n, ts, np.uint64), {"v": rng.standard_normal((n, DIM)).astype(np.float32)}


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_growing_plus_sealed_equals_brute_force(tmp_path, rng, metric):
    store = LocalObjectStore(tmp_path / "segments")
    spec = {"v": VectorSpec("float32", DIM)}
    old = GrowingSegment(1, spec)
    rows = []  # (pk, ts, vector) of everything inserted, for the oracle
    for i in range(4):
        pk, ts, vec = batch(rng, i * 500, 500, 10 + i)
        old.append(pk, ts, vec, pa.record_batch({"i": pa.array([i] * 500)}))
        rows.append((pk, ts, vec["v"]))
    manifest = flush(old, old.view(), store, "c/p/s1", schema_version=1)
    assert manifest.rows == 2000
    # Deletes after sealing: some go to the segment's delete log, some stay in the shard buffer.
    delta = write_delete_log(store, "c/p/s1", np.array([1, 2, 3, 1500], np.int64),
                             np.array([20, 20, 20, 20], np.uint64))
    shard_del_pk = np.array([4, 600, 2100, 2101], np.int64)
    shard_del_ts = np.array([30, 30, 30, 5], np.uint64)  # 2101's delete precedes its insert
    # A second, still-growing segment; one upsert of pk 7 (delete + insert at ts 25).
    new = GrowingSegment(2, spec)
    for i in range(3):
        pk, ts, vec = batch(rng, 2000 + i * 100, 100, 21 + i)
        new.append(pk, ts, vec)
        rows.append((pk, ts, vec["v"]))
    up_vec = rng.standard_normal((1, DIM)).astype(np.float32)
    new.append(np.array([7], np.int64), np.array([25], np.uint64), {"v": up_vec})
    rows.append((np.array([7], np.int64), np.array([25], np.uint64), up_vec))
    shard_del_pk = np.append(shard_del_pk, 7)
    shard_del_ts = np.append(shard_del_ts, np.uint64(25))

    sealed = SealedSegment(Segment.open(store, "c/p/s1", deltas=[delta]))
    all_pk = np.concatenate([r[0] for r in rows])
    all_ts = np.concatenate([r[1] for r in rows])
    all_vec = np.concatenate([r[2] for r in rows])
    all_del_pk = np.concatenate([np.array([1, 2, 3, 1500], np.int64), shard_del_pk])
    all_del_ts = np.concatenate([np.full(4, 20, np.uint64), shard_del_ts])
    queries = rng.standard_normal((7, DIM)).astype(np.float32)
    for snapshot in (9, 12, 22, 26, 40):
        parts = [sealed.search("v", queries, 10, metric, snapshot, shard_del_pk, shard_del_ts)]
        gv = new.view()
        allow = visible(gv.pks, gv.timestamps, shard_del_pk, shard_del_ts, snapshot)
        parts.append(gv.search("v", queries, 10, metric, allow=allow))
        got = merge_topk(parts, 10, metric)
        vis = visible(all_pk, all_ts, all_del_pk, all_del_ts, snapshot)
        ref = ref_cdist(queries, all_vec, metric)
        key = -ref if metric == "COSINE" else ref
        key[:, ~vis] = np.inf
        for q, (ids, dist) in enumerate(got):
            n_vis = int(vis.sum())
            assert ids.size == min(10, n_vis)
            want = np.lexsort((all_pk, key[q]))[: ids.size]
            np.testing.assert_array_equal(np.sort(ids), np.sort(all_pk[want]))
            np.testing.assert_allclose(dist, ref[q, want], rtol=1e-4, atol=1e-4)
    # The upsert: after ts 25 only the new version of pk 7 exists; query with it to find it.
    parts = [sealed.search("v", up_vec, 3, metric, 40, shard_del_pk, shard_del_ts)]
    gv = new.view()
    parts.append(gv.search("v", up_vec, 3, metric,
                           allow=visible(gv.pks, gv.timestamps, shard_del_pk, shard_del_ts, 40)))
    ids, dist = merge_topk(parts, 3, metric)[0]
    assert ids[0] == 7 and list(ids).count(7) == 1
    assert dist[0] == pytest.approx(1.0 if metric == "COSINE" else 0.0, abs=1e-4)


def test_flush_of_an_empty_segment_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path)
    seg = GrowingSegment(1, {"v": VectorSpec("float32", 4)})
    with pytest.raises(InvalidArgument, match="nothing to flush"):
        flush(seg, seg.view(), store, "c/p/s", schema_version=1)
    assert store.list("") == []


def test_cached_visibility_matches_mvcc_at_every_snapshot(tmp_path, rng):
    """SealedSegment.visibility caches by delete content; it must equal the MVCC rule for old
    and new snapshots, changing deletes, and string keys longer than the segment's own."""
    store = LocalObjectStore(tmp_path / "segments")
    spec = {"v": VectorSpec("float32", DIM)}
    seg = GrowingSegment(1, spec, "string")
    keys = np.array([f"key-{i:04d}" for i in range(300)])
    seg.append(keys, np.arange(10, 310, dtype=np.uint64),
               {"v": rng.standard_normal((300, DIM)).astype(np.float32)})
    flush(seg, seg.view(), store, "c/p/s1", schema_version=1)
    delta = write_delete_log(store, "c/p/s1", np.array(["key-0001"]), np.array([400], np.uint64))
    sealed = SealedSegment(Segment.open(store, "c/p/s1", deltas=[delta]))
    own_pk, own_ts = np.array(["key-0001"]), np.array([400], np.uint64)
    deletes = [(np.array([], dtype="<U8"), np.array([], np.uint64)),
               (np.array(["key-0002", "key-0299"]), np.array([500, 100], np.uint64)),
               (np.array(["key-0002", "key-0299", "key-0100"]), np.array([500, 100, 600],
                                                                         np.uint64))]
    for del_pk, del_ts in deletes + deletes[::-1]:
        for snap in (5, 150, 450, 550, 10_000, 10_000):
            got = sealed.visibility(snap, del_pk, del_ts)
            want = visible(keys, np.arange(10, 310, dtype=np.uint64),
                           np.concatenate([own_pk, del_pk]), np.concatenate([own_ts, del_ts]),
                           snap)
            np.testing.assert_array_equal(got, want)
            if snap == 10_000:  # after every row and delete: the cached, shared mask
                assert not got.flags.writeable


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_large_sealed_segments_search_through_the_quantised_copy(tmp_path, rng, metric):
    """A sealed segment of QUANTIZED_MIN_ROWS rows or more answers small query batches with
    QuantizedFlat: the same hits as knn over the float32 rows, under deletes and filters."""
    from vecstore.query_node.sealed import QUANTIZED_MIN_ROWS

    n = QUANTIZED_MIN_ROWS + 500
    store = LocalObjectStore(tmp_path / "segments")
    seg = GrowingSegment(1, {"v": VectorSpec("float32", DIM)})
    vec = rng.standard_normal((n, DIM)).astype(np.float32)
    seg.append(np.arange(n, dtype=np.int64), np.full(n, 10, np.uint64), {"v": vec})
    flush(seg, seg.view(), store, "c/p/s1", schema_version=1)
    sealed = SealedSegment(Segment.open(store, "c/p/s1"))
    del_pk = np.arange(0, n, 7, dtype=np.int64)
    allow = sealed.visibility(100, del_pk, np.full(del_pk.size, 50, np.uint64)).copy()
    allow &= rng.random(n) < 0.5
    queries = rng.standard_normal((3, DIM)).astype(np.float32)
    got_rows, got_d = sealed.knn_rows("v", queries, 10, metric, allow)
    assert ("v", metric) in sealed._quantized_by  # the quantised path answered
    want_rows, want_d = vecstore_knn(queries, vec, 10, metric, allow)
    np.testing.assert_array_equal(got_rows, want_rows)
    np.testing.assert_array_equal(got_d, want_d)
    assert not np.isin(got_rows, del_pk).any()


def vecstore_knn(queries, base, k, metric, allow):
    import vecstore

    return vecstore.knn(queries, base, k, metric, allow=allow)
