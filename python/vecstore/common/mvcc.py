"""MVCC visibility: which rows a read at a snapshot timestamp sees.

Milvus's rule, which every role applies the same way (streaming nodes on growing data, query nodes
on sealed segments):

    a row (pk, ts) is visible at snapshot S  iff  ts <= S  and there is no delete (pk, ts_d)
    of the same primary key with  ts < ts_d <= S.

The strict ``ts < ts_d`` is what makes an upsert work: it writes a delete and an insert of the same
pk at the same timestamp, and the delete removes only the older versions. Rows without a matching
delete are untouched; deletes of keys that were never inserted do nothing.

Vectorised over numpy arrays (int64 or string primary keys): O((rows + deletes) log deletes), no
per-row Python.
"""

from __future__ import annotations

import numpy as np


def latest_deletes(del_pk: np.ndarray, del_ts: np.ndarray, snapshot: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per primary key deleted at or before ``snapshot``: the sorted unique keys and, for each,
    the newest such delete timestamp."""
    keep = del_ts <= np.uint64(snapshot)
    pk, ts = del_pk[keep], del_ts[keep]
    if pk.size == 0:
        return pk, ts
    order = np.lexsort((ts, pk))  # by pk, then ts: the last of each pk run is its newest delete
    pk, ts = pk[order], ts[order]
    last = np.empty(pk.size, dtype=bool)
    last[:-1] = pk[1:] != pk[:-1]
    last[-1] = True
    return pk[last], ts[last]


def visible(row_pk: np.ndarray, row_ts: np.ndarray, del_pk: np.ndarray, del_ts: np.ndarray,
            snapshot: int) -> np.ndarray:
    """Boolean mask of the rows visible at ``snapshot`` (see the module docstring)."""
    row_ts = np.asarray(row_ts, dtype=np.uint64)
    mask = row_ts <= np.uint64(snapshot)
    upk, uts = latest_deletes(np.asarray(del_pk), np.asarray(del_ts, dtype=np.uint64), snapshot)
    if upk.size == 0 or row_pk.size == 0:
        return mask
    idx = np.searchsorted(upk, row_pk)
    idx_c = np.minimum(idx, upk.size - 1)
    found = (idx < upk.size) & (upk[idx_c] == row_pk)
    mask &= ~(found & (row_ts < uts[idx_c]))
    return mask
