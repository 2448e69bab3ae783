"""Background sealing and flushing through a real deployment: by rows, size and age, results
unchanged by it, failed flushes retried, and garbage files removed at open."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.unit.data_node.model import NAME, Model, check, create, segment_ids, stored_rows
from vecstore import MilvusClient
from vecstore.common import failpoints
from vecstore.errors import StorageError


def open_client(path) -> MilvusClient:
    return MilvusClient(str(path / "db"))


def growing_rows(client, cid) -> int:
    return client._dep.streaming.shard(cid).growing_stats()[0]


def test_seal_by_rows(tmp_path, env, rng):
    env(segment_max_rows=100)
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    queries = rng.standard_normal((3, 8)).astype(np.float32)
    for b in range(5):
        model.insert(client, list(range(b * 60, b * 60 + 60)))
        client._dep.data.run_once()
        assert growing_rows(client, cid) < 100
        check(client, model, queries)
    assert stored_rows(client, cid) == 240 and growing_rows(client, cid) == 60
    client.close()
    client = open_client(tmp_path)
    check(client, model, queries)
    client.close()


def test_seal_by_size(tmp_path, env, rng):
    env(segment_max_bytes=4000)  # 8 float32 + pk + ts + dynamic JSON: ~60 bytes a row
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    model.insert(client, list(range(30)))
    client._dep.data.run_once()
    assert segment_ids(client, cid) == []
    model.insert(client, list(range(30, 100)))
    client._dep.data.run_once()
    assert stored_rows(client, cid) == 100 and growing_rows(client, cid) == 0
    check(client, model, rng.standard_normal((2, 8)).astype(np.float32))
    client.close()


def test_seal_by_age(tmp_path, env, rng):
    env(segment_max_age_s=60)
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    model.insert(client, list(range(10)))
    client._dep.data.run_once()
    assert segment_ids(client, cid) == []
    client._dep.data.run_once(now=time.monotonic() + 61)
    assert stored_rows(client, cid) == 10 and growing_rows(client, cid) == 0
    check(client, model, rng.standard_normal((2, 8)).astype(np.float32))
    client.close()


def test_background_thread_seals_and_stops_on_close(tmp_path, env, rng):
    env(background=1, segment_max_rows=50, data_node_poll_s=0.01)
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    model.insert(client, list(range(120)))
    deadline = time.monotonic() + 30
    while stored_rows(client, cid) < 120 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stored_rows(client, cid) == 120
    thread = client._dep.data._thread
    client.close()
    assert thread is not None and not thread.is_alive()


def test_failed_flush_is_retried_and_loses_nothing(tmp_path, env, rng):
    env()
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    queries = rng.standard_normal((3, 8)).astype(np.float32)
    model.insert(client, list(range(50)))
    model.delete(client, [3, 4])
    failpoints.configure("flush.before_commit=error@1")
    try:
        with pytest.raises(StorageError, match="flush.before_commit"):
            client.flush(NAME)
    finally:
        failpoints.configure("")
    check(client, model, queries)  # the rows stay searchable while pending
    model.insert(client, list(range(50, 80)))
    client.flush(NAME)  # the pending segment first, then the rows that came since
    assert stored_rows(client, cid) == 80 and growing_rows(client, cid) == 0
    check(client, model, queries)
    client.close()
    client = open_client(tmp_path)
    check(client, model, queries)
    client.close()


def test_garbage_is_removed_at_open(tmp_path, env, rng):
    env()
    client = open_client(tmp_path)
    cid = create(client)
    model = Model(rng)
    model.insert(client, list(range(40)))
    model.delete(client, [1])
    client.flush(NAME)
    store = client._dep.datadir.objects
    (sid,) = segment_ids(client, cid)
    keep = set(store.list(f"{cid}/"))
    store.put(f"{cid}/{sid + 100}/manifest", b"an uncommitted segment")
    store.put(f"{cid}/{sid}/delta/7.arrow", b"an uncommitted delete log")
    store.put(f"{cid + 50}/1/manifest", b"a dropped collection's segment")
    store.put("other/file", b"not ours")
    client.close()
    client = open_client(tmp_path)
    assert set(client._dep.datadir.objects.list("")) == keep | {"other/file"}
    check(client, model, rng.standard_normal((2, 8)).astype(np.float32))
    client.close()
