"""MVCC visibility against a row-by-row reference."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore.common.mvcc import visible


def reference(row_pk, row_ts, del_pk, del_ts, snapshot):
    out = []
    for pk, ts in zip(row_pk.tolist(), row_ts.tolist()):
        ok = ts <= snapshot
        for dpk, dts in zip(del_pk.tolist(), del_ts.tolist()):
            if dpk == pk and ts < dts <= snapshot:
                ok = False
        out.append(ok)
    return np.array(out, dtype=bool)


@pytest.mark.parametrize("string_keys", [False, True])
def test_matches_reference(rng, string_keys):
    for _ in range(30):
        n, d = int(rng.integers(0, 60)), int(rng.integers(0, 40))
        row_pk = rng.integers(0, 20, n)
        del_pk = rng.integers(0, 25, d)
        if string_keys:
            row_pk = np.array([f"k{x}" for x in row_pk], dtype=str)
            del_pk = np.array([f"k{x}" for x in del_pk], dtype=str)
        row_ts = rng.integers(1, 50, n).astype(np.uint64)
        del_ts = rng.integers(1, 50, d).astype(np.uint64)
        for snapshot in (0, 10, 25, 49, 100):
            np.testing.assert_array_equal(
                visible(row_pk, row_ts, del_pk, del_ts, snapshot),
                reference(row_pk, row_ts, del_pk, del_ts, snapshot),
            )


def test_upsert_at_the_same_timestamp_keeps_the_new_row():
    row_pk = np.array([7, 7], dtype=np.int64)
    row_ts = np.array([10, 20], dtype=np.uint64)  # old version, then the upsert's insert
    del_pk = np.array([7], dtype=np.int64)
    del_ts = np.array([20], dtype=np.uint64)  # the upsert's delete, same timestamp
    np.testing.assert_array_equal(visible(row_pk, row_ts, del_pk, del_ts, 25), [False, True])
    np.testing.assert_array_equal(visible(row_pk, row_ts, del_pk, del_ts, 15), [True, False])
