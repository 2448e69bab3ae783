"""Growing data's vector searches run on the streaming node that logs it (``--streaming-nodes``):
the results equal a numpy brute force over the visible, filtered rows, whether the node served the
search from its copy or the server searched its own (a segment the node cannot mirror exactly)."""

from __future__ import annotations

import json
import re
import urllib.request

import numpy as np
import pytest

import vecstore
from tests.unit.server.conftest import spawn, stop, until_accepted, wait_ready, wait_until
from vecstore.streaming_node.mirror import GrowingMirrors
from vecstore.streaming_node.records import encode_insert, join_parts
from vecstore.transport import embedded

pytest.importorskip("grpc")

DIM = 16


@pytest.fixture()
def one_node(monkeypatch):
    from vecstore.streaming_node.remote import factory

    monkeypatch.setattr(embedded, "STREAMING_NODE_FACTORY", factory(1))


def _deployment(client) -> embedded.EmbeddedDeployment:
    for value in vars(client).values():
        if isinstance(value, embedded.EmbeddedDeployment):
            return value
    raise AssertionError("no deployment found on the client")


def _served(client) -> int:
    node = _deployment(client).wal_nodes.processes[0]
    return int(node.stub.call("Heartbeat", {}, timeout=10)[0]["growing_searches"])


def _brute_force(vectors: dict[int, np.ndarray], q: np.ndarray, k: int) -> list[int]:
    ids = np.array(sorted(vectors))
    base = np.stack([vectors[i] for i in ids])
    d = ((base - q) ** 2).sum(axis=1)
    order = np.lexsort((ids, d))[:k]
    return ids[order].tolist()


def _collection(client) -> None:
    schema = client.create_schema()
    schema.add_field("id", vecstore.DataType.INT64, is_primary=True)
    schema.add_field("vector", vecstore.DataType.FLOAT_VECTOR, dim=DIM)
    ip = client.prepare_index_params()
    ip.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection("c", schema=schema, index_params=ip)


def _insert(client, rng, ids, stored, upsert: bool = False) -> None:
    vecs = rng.standard_normal((len(ids), DIM), dtype=np.float32)
    write = client.upsert if upsert else client.insert
    write("c", {"id": np.asarray(ids, dtype=np.int64), "vector": vecs})
    stored.update(zip(ids, vecs))


def _check_searches(client, rng, stored, n: int = 5) -> None:
    for _ in range(n):
        q = rng.standard_normal(DIM, dtype=np.float32)
        hits = client.search("c", [q], limit=7, filter="id % 3 != 0")[0]
        allowed = {i: v for i, v in stored.items() if i % 3 != 0}
        assert [h["id"] for h in hits] == _brute_force(allowed, q, 7)


def test_growing_searches_run_on_the_node_and_match_brute_force(tmp_path, one_node):
    rng = np.random.default_rng(7)
    client = vecstore.MilvusClient(str(tmp_path / "db"))
    _collection(client)
    stored: dict[int, np.ndarray] = {}
    for lo in (0, 300, 600):
        _insert(client, rng, list(range(lo, lo + 300)), stored)
    client.delete("c", ids=list(range(0, 900, 7)))
    for i in range(0, 900, 7):
        stored.pop(i)
    before = _served(client)
    _check_searches(client, rng, stored)
    assert _served(client) >= before + 5  # the node answered them, not the server
    # An upsert moves rows within the growing data: still the node's, still exact.
    _insert(client, rng, list(range(850, 950)), stored, upsert=True)
    _check_searches(client, rng, stored)
    client.close()


def test_a_segment_the_node_cannot_mirror_is_searched_by_the_server(tmp_path, one_node):
    rng = np.random.default_rng(8)
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    _collection(client)
    stored: dict[int, np.ndarray] = {}
    _insert(client, rng, list(range(200)), stored)
    dep = _deployment(client)
    dep.datadir.wal("c1")._failed(vecstore.VecstoreError("simulated"))  # the channel is recovered
    # The write that meets the recovery fails; the ones after it succeed.
    until_accepted(lambda: _insert(client, rng, list(range(200, 300)), stored),
                   "the channel was never recovered")
    # The recovered shard replayed rows 0-199 from the log: its segment is not mirrored.
    before = _served(client)
    _check_searches(client, rng, stored)
    assert _served(client) == before
    # The next growing segment starts in this session: the node serves it again.
    client.flush("c")
    _insert(client, rng, list(range(300, 400)), stored)
    _check_searches(client, rng, stored)
    assert _served(client) > before
    client.close()


def _record(rows: np.ndarray, first_id: int) -> bytes:
    return join_parts(encode_insert(np.arange(first_id, first_id + len(rows), dtype=np.int64),
                                    {"v": rows}, None))


def test_mirrors_copy_only_contiguous_rows_from_the_first():
    rng = np.random.default_rng(9)
    specs = {"v": ["float32", 4]}
    a, b = (rng.standard_normal((5, 4), dtype=np.float32) for _ in range(2))
    m = GrowingMirrors()
    m.apply([1, 0, specs], _record(a, 0))
    m.apply([1, 5, specs], _record(b, 5))
    q = rng.standard_normal((2, 4), dtype=np.float32)
    rows, dist = m.search(1, 10, "v", q, 3, "L2", None)
    want = vecstore.knn(q, np.concatenate([a, b]), 3, "L2")
    assert np.array_equal(rows, want[0]) and np.allclose(dist, want[1])
    allow = np.zeros(10, bool)
    allow[[2, 8]] = True
    rows, _ = m.search(1, 10, "v", q, 3, "L2", np.packbits(allow, bitorder="little"))
    assert set(rows[0].tolist()) == {2, 8, -1}
    assert m.search(1, 11, "v", q, 3, "L2", None) is None  # more rows than it holds
    m.apply([1, 12, specs], _record(a, 12))  # a gap: the copy can no longer be exact
    assert m.search(1, 10, "v", q, 3, "L2", None) is None
    m.apply([2, 3, specs], _record(a, 20))  # rows before this session's first record
    m.apply([2, 8, specs], _record(b, 25))
    assert m.search(2, 5, "v", q, 3, "L2", None) is None
    m.apply([3, 0, specs], _record(a, 30))
    assert m.count() == 1
    m.release([3])
    assert m.search(3, 5, "v", q, 3, "L2", None) is None and m.count() == 0


def test_every_vector_kind_and_string_keys_are_served_exactly(tmp_path, one_node):
    """Two vector fields (float16 and binary) under string primary keys: each field's growing
    search runs on the node and equals a brute force over the rows."""
    rng = np.random.default_rng(10)
    client = vecstore.MilvusClient(str(tmp_path / "db"))
    schema = client.create_schema()
    schema.add_field("pk", vecstore.DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("half", vecstore.DataType.FLOAT16_VECTOR, dim=8)
    schema.add_field("bits", vecstore.DataType.BINARY_VECTOR, dim=64)
    ip = client.prepare_index_params()
    ip.add_index("half", index_type="FLAT", metric_type="IP")
    ip.add_index("bits", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection("c", schema=schema, index_params=ip)
    n = 300
    half = rng.standard_normal((n, 8)).astype(np.float16)
    bits = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    keys = [f"k{i:04d}" for i in range(n)]
    for lo in range(0, n, 100):
        client.insert("c", [{"pk": keys[i], "half": half[i], "bits": bits[i].tobytes()}
                            for i in range(lo, lo + 100)])
    before = _served(client)
    q_half = rng.standard_normal(8).astype(np.float16)
    hits = client.search("c", [q_half], anns_field="half", limit=5,
                         search_params={"metric_type": "IP"})[0]
    ip_scores = half.astype(np.float32) @ q_half.astype(np.float32)
    want = np.lexsort((np.arange(n), -ip_scores))[:5]
    assert [h["id"] for h in hits] == [keys[i] for i in want]
    q_bits = rng.integers(0, 256, 8, dtype=np.uint8)
    hits = client.search("c", [q_bits.tobytes()], anns_field="bits", limit=5,
                         search_params={"metric_type": "HAMMING"})[0]
    hamming = np.unpackbits(bits ^ q_bits, axis=1).sum(axis=1)
    assert sorted(h["distance"] for h in hits) == sorted(hamming)[:5]
    within = np.flatnonzero(hamming <= sorted(hamming)[4])  # ties at the 5th distance
    assert {h["id"] for h in hits} <= {keys[i] for i in within}
    assert _served(client) >= before + 2
    client.close()


def _metric(data, name: str) -> int:
    port = json.loads((data / "server.json").read_text())["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
        body = r.read().decode()
    found = re.search(rf"^{name} (\d+)$", body, re.M)
    assert found, f"{name} is not exported"
    return int(found.group(1))


def test_the_nodes_growing_searches_are_in_the_metrics(tmp_path):
    """Through pymilvus against ``vecstore serve --streaming-nodes 1``: the node's counters reach
    Prometheus (as of its last heartbeat, every 0.5 s)."""
    pymilvus = pytest.importorskip("pymilvus")
    data = tmp_path / "served"
    proc = spawn(data, args=("--streaming-nodes", "1", "--metrics-port", "0"))
    try:
        client = pymilvus.MilvusClient(f"http://127.0.0.1:{wait_ready(proc)}", timeout=60)
        client.create_collection("c", dimension=DIM)
        rng = np.random.default_rng(11)
        vectors = rng.standard_normal((200, DIM)).astype(np.float32)
        client.insert("c", [{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])
        for i in range(6):
            assert client.search("c", [vectors[i].tolist()], limit=1)[0][0]["id"] == i
        wait_until(lambda: _metric(data, "vecstore_streaming_node_growing_searches_total") >= 6,
                   "the node's searches never reached the metrics", timeout=30, pause=0.2)
        assert _metric(data, "vecstore_streaming_node_mirrored_segments") >= 1
        client.close()
    finally:
        assert stop(proc) == 0
