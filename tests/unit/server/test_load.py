"""A bounded multi-client load test: several pymilvus clients at once, each inserting, deleting,
searching and querying its own id range through ``vecstore serve --proxies 2 --query-nodes 1``
(with segments sealing as they go), for a few seconds. Every call succeeds, every client reads its
own writes (Strong consistency), and the final contents equal a model of what was acknowledged."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.unit.server.conftest import ids_of, spawn, stop, wait_ready

pymilvus = pytest.importorskip("pymilvus")

CLIENTS = 4
SECONDS = 6.0
DIM = 16


def _client_loop(uri: str, index: int, model: set[int], errors: list[str],
                 calls: list[int]) -> None:
    rng = np.random.default_rng(index)
    client = pymilvus.MilvusClient(uri, timeout=60)
    base = index * 1_000_000
    next_id = base
    deadline = time.monotonic() + SECONDS
    try:
        while time.monotonic() < deadline:
            vectors = rng.standard_normal((25, DIM)).astype(np.float32)
            ids = list(range(next_id, next_id + 25))
            next_id += 25
            client.insert("load", [{"id": i, "vector": v.tolist(), "owner": index}
                                   for i, v in zip(ids, vectors)])
            model.update(ids)
            doomed = ids[::5]
            client.delete("load", ids=doomed)
            model.difference_update(doomed)
            # Read your writes: the newest kept vector is its own nearest neighbour.
            hit = client.search("load", [vectors[1].tolist()], limit=1,
                                filter=f"owner == {index}")[0][0]
            if hit["id"] != ids[1]:
                errors.append(f"client {index}: search found {hit['id']}, not {ids[1]}")
            got = client.query("load", filter=f"id >= {base} and id < {next_id}",
                               output_fields=["count(*)"])[0]["count(*)"]
            if got != len(model):
                errors.append(f"client {index}: count {got}, expected {len(model)}")
            calls[index] += 4
    except Exception as e:  # noqa: BLE001 - any failed call fails the test, with its message
        errors.append(f"client {index}: {type(e).__name__}: {e}")
    finally:
        client.close()


def test_several_clients_at_once(tmp_path):
    data = tmp_path / "db"
    proc = spawn(data, args=("--proxies", "2", "--query-nodes", "1"),
                 env={"VECSTORE_SEGMENT_MAX_ROWS": "1000", "VECSTORE_DATA_NODE_POLL_S": "0.2"})
    try:
        port = wait_ready(proc)
        uri = f"http://127.0.0.1:{port}"
        admin = pymilvus.MilvusClient(uri, timeout=60)
        schema = admin.create_schema(auto_id=False)
        schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
        schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("owner", pymilvus.DataType.INT64)
        params = admin.prepare_index_params()
        params.add_index("vector", index_type="FLAT", metric_type="L2")
        admin.create_collection("load", schema=schema, index_params=params,
                                consistency_level="Strong")
        models = [set() for _ in range(CLIENTS)]
        errors: list[str] = []
        calls = [0] * CLIENTS
        threads = [threading.Thread(target=_client_loop, args=(uri, i, models[i], errors, calls))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert all(c > 0 for c in calls)
        assert ids_of(admin, "load") == set().union(*models)
        admin.close()
    finally:
        assert stop(proc) == 0
