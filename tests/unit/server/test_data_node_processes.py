"""Data nodes as processes (``vecstore serve --data-nodes N``): index builds and compaction
merges run in data-node processes; a node killed with SIGKILL in the middle of a build is
replaced and the build runs again, so the index is committed and searches answer as a brute-force
reference does; compaction through the nodes keeps every row."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import numpy as np
import pytest

import vecstore
from tests.unit.server.conftest import spawn, stop, wait_ready
from vecstore.transport import embedded

pytest.importorskip("grpc")

DIM = 32


def _status(data) -> dict:
    return json.loads((data / "data_nodes.json").read_text())


@pytest.fixture()
def nodes(monkeypatch):
    from vecstore.data_node.remote import factory

    monkeypatch.setattr(embedded, "DATA_NODE_FACTORY", factory(2))


def _fill(client, name, n, seed=0, batches=1):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    step = n // batches
    for lo in range(0, n, step):
        client.insert(name, [{"id": i, "vector": vectors[i].tolist()}
                             for i in range(lo, min(n, lo + step))])
        client.flush(name)
    return vectors


def _exact_top(vectors, q, k):
    d = ((vectors - q) ** 2).sum(1)
    return set(np.argsort(d, kind="stable")[:k].tolist())


def test_sigkill_during_an_index_build_is_survived(tmp_path, nodes, monkeypatch):
    # The quick setup's AUTOINDEX (an HNSW graph) over 20k x 32 takes seconds on 2 cores after
    # the flush: long enough to kill the node building it.
    monkeypatch.setenv("VECSTORE_MIN_INDEX_ROWS", "1000")
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    client.create_collection("c", dimension=DIM, metric_type="L2")
    vectors = _fill(client, "c", 20_000)
    deadline = time.monotonic() + 30
    victim = None
    while victim is None:  # the node running the build
        assert time.monotonic() < deadline, "no build started"
        for w in _status(data)["workers"]:
            with open(f"/proc/{w['pid']}/stat") as f:
                utime = int(f.read().split(")")[1].split()[11])
            if utime > 30:  # ticks of CPU beyond its start: it is building
                victim = w
                break
        time.sleep(0.05)
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while (info := client.describe_index("c", "vector"))["indexed_rows"] < 20_000:
        assert time.monotonic() < deadline, f"the index was not rebuilt: {info}"
        time.sleep(0.2)
    assert info["pending_index_rows"] == 0
    assert _status(data)["restarts"] >= 1
    assert "built" in "".join((data / f"data-node-{i}.log").read_text() for i in range(2))
    rng = np.random.default_rng(1)
    hits = 0
    for q in rng.standard_normal((20, DIM)).astype(np.float32):
        got = client.search("c", [q.tolist()], limit=10, search_params={"params": {"ef": 200}})
        hits += len({h["id"] for h in got[0]} & _exact_top(vectors, q, 10))
    assert hits / 200 >= 0.9
    client.close()


def test_compaction_runs_on_the_nodes_and_keeps_every_row(tmp_path, nodes):
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    client.create_collection("c", dimension=DIM)
    _fill(client, "c", 3000, batches=6)
    client.delete("c", ids=list(range(0, 3000, 3)))
    job = client.compact("c")
    deadline = time.monotonic() + 60
    while client.get_compaction_state(job) != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    got = {r["id"] for r in client.query("c", filter="id >= 0", output_fields=["id"],
                                         limit=16384)}
    assert got == {i for i in range(3000) if i % 3}
    logs = "".join((data / f"data-node-{i}.log").read_text() for i in range(2))
    assert "merged" in logs  # the merge ran in a data-node process
    client.close()


def test_served_with_data_nodes(tmp_path):
    pymilvus = pytest.importorskip("pymilvus")
    data = tmp_path / "served"
    proc = spawn(data, args=("--data-nodes", "1", "--metrics-port", "0"),
                 env={"VECSTORE_MIN_INDEX_ROWS": "100"})
    try:
        port = wait_ready(proc)
        client = pymilvus.MilvusClient(f"http://127.0.0.1:{port}", timeout=60)
        client.create_collection("c", dimension=DIM)
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((500, DIM)).astype(np.float32)
        client.insert("c", [{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])
        client.flush("c")
        client.release_collection("c")
        client.drop_index("c", "vector")
        params = client.prepare_index_params()
        params.add_index("vector", index_type="IVF_FLAT", metric_type="COSINE",
                         params={"nlist": 8})
        client.create_index("c", params)
        client.load_collection("c")
        got = client.search("c", [vectors[7].tolist()], limit=1,
                            search_params={"params": {"nprobe": 8}})
        assert got[0][0]["id"] == 7
        assert "built" in (data / "data-node-0.log").read_text()
        metrics_port = json.loads((data / "server.json").read_text())["metrics_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
            body = r.read().decode()
        assert 'vecstore_role_processes{role="data_node"} 1' in body
        assert 'vecstore_role_restarts_total{role="data_node"} 0' in body
        assert "query_node" not in body  # in the server process: no such series
        client.close()
    finally:
        assert stop(proc) == 0
