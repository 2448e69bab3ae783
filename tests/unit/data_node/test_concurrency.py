"""Inserts, upserts, deletes, searches and queries in threads while the background thread seals,
flushes and compacts: every read sees each row at most once and every row acknowledged before
it started; at the end the database equals the model, before and after reopening."""

from __future__ import annotations

import threading
import time

import numpy as np

from tests.unit.data_node.model import NAME, Model, check, create, segment_ids
from vecstore import MilvusClient


def test_reads_stay_consistent_while_background_work_runs(tmp_path, env, rng):
    # Segments seal by age at almost every pass, so small ones pile up and are merged often.
    env(background=1, segment_max_age_s=0.01, data_node_poll_s=0.005,
        compaction_min_segments=2)
    path = str(tmp_path / "db")
    client = MilvusClient(path)
    cid = create(client)
    swaps = []
    real_swap = client._dep.query.swap
    client._dep.query.swap = lambda *a, **k: (swaps.append(a[1]), real_swap(*a, **k))
    model = Model(rng)
    doomed = list(range(10_000, 10_040))
    model.insert(client, doomed)  # deleted while readers run: seen at most once, then never
    acked: list[int] = []  # stable keys, in acknowledgement order
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            w_rng = np.random.default_rng(7)
            for b in range(30):
                ids = list(range(b * 20, b * 20 + 20))
                with lock:
                    model.insert(client, ids)
                    acked.extend(ids)
                if b % 3 == 2:
                    with lock:
                        model.upsert(client, [int(x) for x in w_rng.choice(acked, 5, False)])
                if b % 4 == 1 and doomed:
                    with lock:
                        model.delete(client, [doomed.pop(), doomed.pop()])
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            stop.set()

    def reader(seed: int) -> None:
        r_rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                with lock:
                    must = set(acked)
                got = client.query(NAME, filter="id >= 0", output_fields=["id"],
                                   consistency_level="Strong")
                ids = [r["id"] for r in got]
                assert len(ids) == len(set(ids)), "a row is visible twice"
                assert must <= set(ids), "an acknowledged row is missing"
                q = r_rng.standard_normal((2, 8)).astype(np.float32)
                for hits in client.search(NAME, q.tolist(), limit=15,
                                          consistency_level="Strong"):
                    hit_ids = [h["id"] for h in hits]
                    assert len(hit_ids) == len(set(hit_ids)), "a row is found twice"
                    d = [h["distance"] for h in hits]
                    assert d == sorted(d)
        except BaseException as e:
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors[0]
    # Let the background work settle (flush what is over the limit, merge), then compare.
    client.flush(NAME)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client._dep.data._dirty:
        time.sleep(0.01)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    check(client, model, queries)
    assert len(segment_ids(client, cid)) >= 1
    print(f"background compactions during the run: {len(swaps)}")
    client.close()
    client = MilvusClient(path)
    check(client, model, queries)
    client.close()
