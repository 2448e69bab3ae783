"""Request limits of `vecstore serve`: over-limit requests get an invalid-parameter status naming
the limit, oversized messages are refused by gRPC, and bytes that are not a request message get an
error status while the server keeps serving."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymilvus")

import grpc  # noqa: E402
from pymilvus import MilvusClient, MilvusException  # noqa: E402
from pymilvus.grpc_gen import common_pb2, milvus_pb2  # noqa: E402

from .conftest import spawn, stop, wait_ready  # noqa: E402

PREFIX = "/milvus.proto.milvus.MilvusService/"


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    data = tmp_path_factory.mktemp("limits")
    proc = spawn(data, args=("--max-message-mb", "1", "--max-insert-rows", "100",
                             "--max-expr-kb", "1"))
    port = wait_ready(proc)
    client = MilvusClient(f"http://127.0.0.1:{port}", timeout=10)
    client.create_collection("lim", dimension=4)
    yield {"port": port, "client": client}
    client.close()
    assert stop(proc) == 0


def _invalid(fn, *words):
    with pytest.raises(MilvusException) as e:
        fn()
    assert e.value.code == 1100, e.value
    for w in words:
        assert w in e.value.message, e.value.message


def test_over_limit_requests(limited):
    c = limited["client"]
    rows = [{"id": i, "vector": [1, 0, 0, float(i)]} for i in range(101)]
    _invalid(lambda: c.insert("lim", rows), "101 rows", "limit of 100 rows", "--max-insert-rows")
    assert c.insert("lim", rows[:100])["insert_count"] == 100
    _invalid(lambda: c.search("lim", [[1, 0, 0, 0]], limit=16385), "16384")
    _invalid(lambda: c.search("lim", [[1, 0, 0, 0]], limit=16000, offset=1000), "16384")
    _invalid(lambda: c.query("lim", filter="id > 0", limit=20000), "16384")
    long_filter = "id in [" + ",".join(str(i) for i in range(400)) + "]"
    _invalid(lambda: c.query("lim", filter=long_filter), "1024 bytes", "--max-expr-kb")
    _invalid(lambda: c.delete("lim", filter=long_filter), "1024 bytes")
    many = np.zeros((16385, 4), dtype=np.float32)
    many[:, 0] = 1
    _invalid(lambda: c.search("lim", many, limit=1), "nq", "16384")
    assert len(c.search("lim", [[1, 0, 0, 0]], limit=5)[0]) == 5


def test_oversized_message_is_refused(limited):
    c = limited["client"]
    c.create_collection("wide", dimension=1024)
    rows = [{"id": i, "vector": [0.5] * 1024} for i in range(300)]  # about 1.2 MiB
    with pytest.raises((MilvusException, grpc.RpcError)) as e:
        c.insert("wide", rows)
    assert "RESOURCE_EXHAUSTED" in str(e.value) or "larger than max" in str(e.value)
    assert c.insert("wide", rows[:10])["insert_count"] == 10


def test_garbage_bytes_get_an_error_status(limited):
    c = limited["client"]
    c.create_collection("junk", dimension=4)
    c.insert("junk", [{"id": 1, "vector": [1, 0, 0, 0]}])
    rng = np.random.default_rng(7)
    with grpc.insecure_channel(f"127.0.0.1:{limited['port']}") as channel:
        for method, reply in [("Insert", milvus_pb2.MutationResult),
                              ("Search", milvus_pb2.SearchResults),
                              ("CreateCollection", common_pb2.Status),
                              ("Query", milvus_pb2.QueryResults)]:
            call = channel.unary_unary(PREFIX + method, response_deserializer=reply.FromString)
            answer = call(b"\xff\xff\xff\xff\xff", timeout=10)
            status = answer if isinstance(answer, common_pb2.Status) else answer.status
            assert status.code == 1100 and "malformed" in status.reason, status
            for _ in range(5):  # random bytes may even decode: any answer but a crash will do
                try:
                    call(rng.bytes(int(rng.integers(1, 200))), timeout=10)
                except grpc.RpcError as e:
                    assert e.code() != grpc.StatusCode.UNAVAILABLE
    assert "junk" in c.list_collections()
    assert len(c.search("junk", [[1, 0, 0, 0]], limit=1)[0]) == 1
