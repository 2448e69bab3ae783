"""Compaction through a real deployment: results identical before and after, deleted rows and
superseded upsert versions dropped, delete logs other segments need kept, crash leftovers
removed at open, and reopening after each step."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.data_node.model import NAME, Model, check, create, segment_ids, stored_rows
from vecstore import MilvusClient
from vecstore.common import failpoints
from vecstore.errors import StorageError
from vecstore.transport import embedded


def open_client(path) -> MilvusClient:
    return MilvusClient(str(path / "db"))


def small_segments(client, model, rng, batches=4, rows=30, start=0):
    """``batches`` flushed segments with deletes and upserts between them."""
    pk = start
    for _ in range(batches):
        model.insert(client, list(range(pk, pk + rows)))
        old = sorted(model.rows)
        model.delete(client, [int(x) for x in rng.choice(old, 3, replace=False)])
        model.upsert(client, [int(x) for x in rng.choice(sorted(model.rows), 4, replace=False)])
        client.flush(NAME)
        pk += rows


def test_manual_compaction_merges_and_drops_deleted_rows(tmp_path, env, rng):
    env()
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    small_segments(client, model, rng)
    before = segment_ids(client, cid)
    assert len(before) == 4 and stored_rows(client, cid) > len(model.rows)
    check(client, model, queries)
    job = client.compact(NAME)
    assert isinstance(job, int)
    assert client.get_compaction_state(job) == "Completed"  # no background thread: inline
    after = segment_ids(client, cid)
    assert len(after) == 1 and after[0] > max(before)
    # Deleted rows and superseded versions are gone; every live row is stored once.
    assert stored_rows(client, cid) == len(model.rows)
    check(client, model, queries)
    store = client._dep.datadir.objects
    assert all(not store.list(f"{cid}/{sid}/") for sid in before)
    client.close()
    client = open_client(tmp_path)
    assert segment_ids(client, cid) == after
    check(client, model, queries)
    # And it keeps working: more writes, another flush and compaction.
    small_segments(client, model, rng, batches=2, start=1000)
    check(client, model, queries)
    client.compact(NAME)
    assert len(segment_ids(client, cid)) == 1 and stored_rows(client, cid) == len(model.rows)
    check(client, model, queries)
    client.close()


def test_automatic_compaction_keeps_deletes_other_segments_need(tmp_path, env, rng):
    # Segment A is not small and has few deletes, so the automatic plan leaves it; the delete
    # of one of its rows is logged with a small segment that is merged away.
    env(segment_max_rows=100, compaction_min_segments=2)
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    model.insert(client, list(range(80)))
    client.flush(NAME)
    (a,) = segment_ids(client, cid)
    model.insert(client, list(range(100, 110)))
    model.delete(client, [5, 105])
    client.flush(NAME)
    model.insert(client, list(range(200, 210)))
    client.flush(NAME)
    assert len(segment_ids(client, cid)) == 3
    client._dep.data.run_once()
    segs = segment_ids(client, cid)
    assert len(segs) == 2 and a in segs
    check(client, model, queries)  # pk 5 stays deleted in A
    client.close()
    client = open_client(tmp_path)
    check(client, model, queries)
    client.close()


def test_compaction_of_string_keys_and_upserts(tmp_path, env, rng):
    env()
    client = open_client(tmp_path)
    client.create_collection(NAME, dimension=4, id_type="string", max_length=64,
                             metric_type="IP", consistency_level="Strong")
    cid = client.describe_collection(NAME)["collection_id"]
    latest = {}
    for round_ in range(3):
        rows = [{"id": f"key-{i:04d}", "vector": rng.standard_normal(4).tolist(), "n": round_}
                for i in range(round_ * 5, round_ * 5 + 20)]
        client.upsert(NAME, rows)
        latest.update({r["id"]: round_ for r in rows})
        client.delete(NAME, ids=["key-0001"])
        latest.pop("key-0001", None)
        client.flush(NAME)
    client.compact(NAME)
    assert len(segment_ids(client, cid)) == 1 and stored_rows(client, cid) == len(latest)
    got = client.query(NAME, filter='id != ""', output_fields=["id", "n"])
    assert {r["id"]: r["n"] for r in got} == latest
    client.close()


def test_failed_compaction_changes_nothing(tmp_path, env, rng):
    env()
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    queries = rng.standard_normal((2, 8)).astype(np.float32)
    small_segments(client, model, rng, batches=3)
    before = segment_ids(client, cid)
    keys = set(client._dep.datadir.objects.list(""))
    failpoints.configure("compact.before_commit=error")
    try:
        with pytest.raises(StorageError, match="compact.before_commit"):
            client.compact(NAME)
    finally:
        failpoints.configure("")
    assert segment_ids(client, cid) == before
    assert set(client._dep.datadir.objects.list("")) == keys
    check(client, model, queries)
    client.close()


def test_crash_after_commit_before_removal_leaves_garbage_removed_at_open(
        tmp_path, env, rng, monkeypatch):
    env()
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    queries = rng.standard_normal((2, 8)).astype(np.float32)
    small_segments(client, model, rng, batches=3)
    before = segment_ids(client, cid)
    # As if the process died between the commit and removing the inputs' files.
    real = embedded.remove_prefix
    monkeypatch.setattr(embedded, "remove_prefix", lambda store, prefix: None)
    client.compact(NAME)
    monkeypatch.setattr(embedded, "remove_prefix", real)
    store = client._dep.datadir.objects
    assert all(store.list(f"{cid}/{sid}/") for sid in before)
    client.close()
    client = open_client(tmp_path)
    store = client._dep.datadir.objects
    assert all(not store.list(f"{cid}/{sid}/") for sid in before)
    check(client, model, queries)
    client.close()
