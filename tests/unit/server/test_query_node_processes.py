"""`vecstore serve --query-nodes 2`: sealed-segment searches in worker processes.

The data set is written with the embedded client (three flushed segments, a delete, rows left
growing), its answers recorded, and then served with two query-node workers: pymilvus gets the
same answers, also after one worker is SIGKILLed, and no worker outlives the server.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import spawn, stop, wait_ready
from .test_server_workflows import assert_hits, assert_rows

pytest.importorskip("pymilvus")

from pymilvus import DataType  # noqa: E402

pytestmark = pytest.mark.integration

DIM = 8
NAME = "docs"
INDEXED = "indexed"  # HNSW on two segments: the workers open the same index files
SEARCHES = [
    {},
    {"filter": "n < 4"},
    {"filter": "tag == 'b'", "output_fields": ["tag", "n"]},
    {"output_fields": ["*"], "limit": 7},
]
QUERIES = [
    {"filter": "n >= 5", "output_fields": ["id", "n", "tag"]},
    {"filter": "", "output_fields": ["count(*)"]},
]


def _rows(rng, start, n):
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    return [{"id": start + i, "vec": vecs[i].tolist(), "tag": "abc"[(start + i) % 3],
             "n": (start + i) % 7} for i in range(n)]


def _answers(client, queries):
    out = []
    for kw in SEARCHES:
        kw = dict(kw)
        limit = kw.pop("limit", 5)
        out.append(client.search(NAME, data=queries, limit=limit, anns_field="vec", **kw))
    for kw in QUERIES:
        out.append(client.query(NAME, **kw))
    return out


def _indexed_answers(client, queries):
    return [client.search(INDEXED, data=queries, limit=10, anns_field="vec",
                          search_params={"params": {"ef": 12}}),
            client.search(INDEXED, data=queries, limit=4, anns_field="vec", filter="n != 3",
                          output_fields=["n"])]


def _check(remote, expected):
    assert len(remote) == len(expected)
    for got, want in zip(remote[:len(SEARCHES)], expected[:len(SEARCHES)]):
        assert_hits(got, want)
    for got, want in zip(remote[len(SEARCHES):len(SEARCHES) + len(QUERIES)],
                         expected[len(SEARCHES):len(SEARCHES) + len(QUERIES)]):
        assert_rows(got, want)
    for got, want in zip(remote[len(SEARCHES) + len(QUERIES):],
                         expected[len(SEARCHES) + len(QUERIES):]):
        assert_hits(got, want)


def _all(client, queries):
    return _answers(client, queries) + _indexed_answers(client, queries)


def _workers(data, key="workers"):
    with open(data / "query_nodes.json", encoding="utf-8") as f:
        return json.load(f)[key]


def _alive(pid):
    """Whether ``pid`` runs (a zombie, exited but not reaped by whoever adopted it, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from vecstore import MilvusClient as Embedded

    data = tmp_path_factory.mktemp("qn")
    rng = np.random.default_rng(7)
    queries = rng.standard_normal((3, DIM)).astype(np.float32).tolist()
    os.environ["VECSTORE_MIN_INDEX_ROWS"] = "100"
    local = Embedded(str(data))
    try:
        schema = local.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("tag", DataType.VARCHAR, max_length=8)
        schema.add_field("n", DataType.INT32)
        index = local.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type="L2")
        local.create_collection(NAME, schema=schema, index_params=index)
        for start in (0, 200, 400):  # three sealed segments
            local.insert(NAME, _rows(rng, start, 200))
            local.flush(NAME)
        local.delete(NAME, ids=[1, 2, 201, 402])
        local.insert(NAME, _rows(rng, 600, 30))  # growing: served by the server process
        local.create_collection(INDEXED, schema=schema)
        for start in (0, 300):
            local.insert(INDEXED, _rows(rng, start, 300))
            local.flush(INDEXED)
        index = local.prepare_index_params()
        index.add_index("vec", index_type="HNSW", metric_type="L2",
                        params={"M": 8, "efConstruction": 32})
        local.create_index(INDEXED, index)  # returns once both segments have theirs
        local.load_collection(INDEXED)
        expected = _all(local, queries)
    finally:
        local.close()
        del os.environ["VECSTORE_MIN_INDEX_ROWS"]
    proc = spawn(data, args=("--query-nodes", "2"), env={"VECSTORE_MIN_INDEX_ROWS": "100"})
    port = wait_ready(proc)
    yield {"uri": f"http://127.0.0.1:{port}", "data": data, "proc": proc,
           "queries": queries, "expected": expected}
    if proc.poll() is None:
        stop(proc)


@pytest.fixture(scope="module")
def remote(served):
    from pymilvus import MilvusClient

    client = MilvusClient(served["uri"], timeout=30)
    yield client
    client.close()


def test_workers_answer_as_the_in_process_node(served, remote):
    workers = _workers(served["data"])
    assert len(workers) == 2 and all(_alive(w["pid"]) for w in workers)
    _check(_all(remote, served["queries"]), served["expected"])
    # The segments are spread over both workers, which opened them themselves.
    logs = [(served["data"] / f"query-node-{i}.log").read_text() for i in range(2)]
    assert all("loaded " in log for log in logs)
    assert sum(log.count("attached index") for log in logs) == 2
    assert not any("bad request" in log for log in logs)


def test_sigkilled_worker_is_replaced_and_searches_resume(served, remote):
    before = _workers(served["data"])
    victim = before[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    _check(_all(remote, served["queries"]), served["expected"])
    assert time.monotonic() - started < 60
    deadline = time.monotonic() + 60
    while _workers(served["data"])[0]["pid"] == victim:
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.2)
    after = _workers(served["data"])
    assert after[0]["generation"] > before[0]["generation"]
    assert after[1]["pid"] == before[1]["pid"]
    assert not _alive(victim)
    _check(_all(remote, served["queries"]), served["expected"])  # on the replacement


def test_compaction_swaps_segments_on_the_workers(served, remote):
    job = remote.compact(NAME)
    deadline = time.monotonic() + 60
    while remote.get_compaction_state(job) != "Completed":
        assert time.monotonic() < deadline, "compaction did not finish"
        time.sleep(0.2)
    _check(_all(remote, served["queries"]), served["expected"])
    logs = "".join((served["data"] / f"query-node-{i}.log").read_text() for i in range(2))
    assert "released " in logs  # the compacted inputs


def test_workers_exit_with_the_server(served, remote):
    pids = [w["pid"] for w in _workers(served["data"])]
    proc = served["proc"]
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "restarted" in err  # the SIGKILLed one
    assert "in the server process" not in err  # no search fell back from the workers
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, "a query-node worker outlived the server"
        time.sleep(0.1)
    assert not (served["data"] / "query_nodes.json").exists()


def test_workers_exit_when_the_server_is_killed(served):
    if served["proc"].poll() is None:  # run alone: the directory takes one server at a time
        stop(served["proc"])
    proc = spawn(served["data"], args=("--query-nodes", "1"))
    try:
        wait_ready(proc)
        pids = [w["pid"] for w in _workers(served["data"])]
        assert all(_alive(p) for p in pids)
        socket_dir = _workers(served["data"], "sockets")
    finally:
        proc.kill()  # no chance to stop them: they notice their parent is gone
        stop(proc)
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, "a query-node worker outlived a killed server"
        time.sleep(0.1)
    assert not (Path(socket_dir).exists() and os.listdir(socket_dir))  # no socket left behind


@pytest.mark.slow
def test_hung_worker_loses_its_lease(served, tmp_path):
    """SIGSTOPped workers answer no heartbeat: they are killed and replaced, and the searches
    waiting on them are answered by the replacements."""
    from pymilvus import MilvusClient

    if served["proc"].poll() is None:  # run alone: the directory takes one server at a time
        stop(served["proc"])
    proc = spawn(served["data"], args=("--query-nodes", "2"),
                 env={"VECSTORE_QUERY_NODE_HEARTBEAT_TIMEOUT_S": "1"})
    try:
        port = wait_ready(proc)
        client = MilvusClient(f"http://127.0.0.1:{port}", timeout=60)
        try:
            expected = _all(client, served["queries"])  # both workers hold segments
            victims = [w["pid"] for w in _workers(served["data"])]
            for pid in victims:
                os.kill(pid, signal.SIGSTOP)
            started = time.monotonic()
            got = _all(client, served["queries"])
            assert time.monotonic() - started < 30
            _check(got, expected)
            assert not any(w["pid"] in victims for w in _workers(served["data"]))
            assert not any(_alive(pid) for pid in victims)
        finally:
            client.close()
        proc.terminate()
        _, err = proc.communicate(timeout=60)
        assert err.count("restarted") == 2
        assert "in the server process" not in err  # answered by the replacements
    finally:
        if proc.poll() is None:
            stop(proc)
