"""GrowingSegment: appends, snapshots that survive later appends, search with MVCC allow-masks."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from tests.reference import ref_cdist
from vecstore.common.mvcc import visible
from vecstore.errors import InvalidArgument
from vecstore.streaming_node.growing import GrowingSegment, VectorSpec


def seg_with(rng, batches=5, rows=300, dim=16):
    seg = GrowingSegment(1, {"v": VectorSpec("float32", dim), "b": VectorSpec("binary", 64)})
    all_v, all_pk = [], []
    for i in range(batches):
        pk = np.arange(i * rows, (i + 1) * rows, dtype=np.int64)
        v = rng.standard_normal((rows, dim)).astype(np.float32)
        b = rng.integers(0, 256, (rows, 8), dtype=np.uint8)
        seg.append(pk, np.full(rows, 10 * (i + 1), dtype=np.uint64), {"v": v, "b": b},
                   pa.record_batch({"tag": pa.array([i] * rows)}))
        all_v.append(v)
        all_pk.append(pk)
    return seg, np.concatenate(all_v), np.concatenate(all_pk)


def test_view_is_a_consistent_snapshot(rng):
    seg, vecs, pks = seg_with(rng)
    view = seg.view()
    assert view.rows == 1500 and view.scalars.num_rows == 1500
    np.testing.assert_array_equal(view.vectors["v"], vecs)
    np.testing.assert_array_equal(view.pks, pks)
    assert not view.vectors["v"].flags.writeable
    # Many more appends (forcing reallocations) leave the old view untouched.
    for _ in range(20):
        seg.append(np.arange(5, dtype=np.int64), np.full(5, 99, dtype=np.uint64),
                   {"v": np.ones((5, 16), np.float32), "b": np.zeros((5, 8), np.uint8)},
                   pa.record_batch({"tag": pa.array([7] * 5)}))
    np.testing.assert_array_equal(view.vectors["v"], vecs)
    assert seg.view().rows == 1600


def test_search_with_mvcc_matches_brute_force(rng):
    seg, vecs, pks = seg_with(rng)
    view = seg.view()
    del_pk = np.array([3, 4, 700, 701], dtype=np.int64)
    del_ts = np.array([5, 15, 25, 5], dtype=np.uint64)  # 3 and 701: before their insert
    snapshot = 35  # sees batches 0-2 (ts 10, 20, 30)
    allow = visible(view.pks, view.timestamps, del_pk, del_ts, snapshot)
    queries = rng.standard_normal((9, 16)).astype(np.float32)
    got_pk, got_d = view.search("v", queries, 5, "L2", allow=allow)
    ref = ref_cdist(queries, vecs, "L2")
    ref[:, ~allow] = np.inf
    want = np.argsort(ref, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(got_pk, pks[want])
    assert 4 not in got_pk and 700 not in got_pk
    assert not (got_pk >= 900).any()  # batch 3 and 4 are after the snapshot


def test_binary_search_and_empty_segment(rng):
    seg, _, _ = seg_with(rng, batches=1, rows=50)
    view = seg.view()
    q = view.vectors["b"][:2].copy()
    pk, d = view.search("b", q, 3, "HAMMING")
    assert (pk[:, 0] == [0, 1]).all() and (d[:, 0] == 0).all()
    empty = GrowingSegment(2, {"v": VectorSpec("float32", 4)}).view()
    pk, d = empty.search("v", np.zeros((3, 4), np.float32), 5, "L2")
    assert pk.shape == d.shape == (3, 0)


def test_concurrent_appends_and_searches(rng):
    seg = GrowingSegment(1, {"v": VectorSpec("float32", 8)})
    errors = []

    def writer():
        for i in range(200):
            seg.append(np.arange(i * 10, i * 10 + 10, dtype=np.int64),
                       np.full(10, i, dtype=np.uint64), {"v": np.full((10, 8), i, np.float32)})

    def reader():
        try:
            for _ in range(200):
                v = seg.view()
                if v.rows:
                    # Every row of a snapshot is whole: row r holds value r // 10 everywhere.
                    expect = (np.arange(v.rows) // 10).astype(np.float32)
                    np.testing.assert_array_equal(v.vectors["v"][:, 0], expect)
                    np.testing.assert_array_equal(v.vectors["v"][:, 7], expect)
        except AssertionError as e:
            errors.append(e)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and seg.view().rows == 2000


def test_bad_batches_change_nothing(rng):
    seg, _, _ = seg_with(rng, batches=1, rows=10)
    good_v = {"v": np.zeros((3, 16), np.float32), "b": np.zeros((3, 8), np.uint8)}
    ts = np.ones(3, np.uint64)
    pk = np.arange(3, dtype=np.int64)
    for args, match in [
        ((pk.astype(np.int32), ts, good_v), "int64 primary keys"),
        ((pk, ts[:2], good_v), "same length"),
        ((pk, ts, {"v": good_v["v"]}), "do not match"),
        ((pk, ts, {**good_v, "v": np.zeros((3, 15), np.float32)}), "needs a"),
        ((pk, ts, {**good_v, "v": np.zeros((3, 16), np.float64)}), "needs a"),
    ]:
        with pytest.raises(InvalidArgument, match=match):
            seg.append(*args)
    with pytest.raises(InvalidArgument, match="scalars have"):
        seg.append(pk, ts, good_v, pa.record_batch({"tag": pa.array([1])}))
    assert seg.view().rows == 10
    with pytest.raises(InvalidArgument, match="no vector field"):
        seg.view().search("nope", np.zeros((1, 16), np.float32), 1, "L2")
