"""Proxies and the core as processes (``vecstore serve --proxies N``): N proxy processes share the
port and pass calls to the core. SIGKILL of a proxy or of the core during ingestion loses no
acknowledged row: the launcher restarts what died, the other proxies keep serving, and calls made
while the core restarts wait for it. Authentication holds through the proxies."""

from __future__ import annotations

import base64
import json
import os
import signal
import time

import pytest

from tests.unit.server.conftest import (
    alive,
    ids_of,
    ingesting,
    spawn,
    stop,
    wait_ready,
    wait_until,
)
from vecstore.server.launcher import core_arguments

pymilvus = pytest.importorskip("pymilvus")
grpc = pytest.importorskip("grpc")

PREFIX = "/milvus.proto.milvus.MilvusService/"


def _status(data) -> dict:
    return json.loads((data / "proxies.json").read_text())


def test_core_arguments_drop_what_the_launcher_and_proxies_take():
    argv = ["serve", "--data", "d", "--port", "0", "--host=127.0.0.1", "--proxies", "2",
            "--auth", "--tls-cert", "c", "--tls-key=k", "--supervise", "--query-nodes", "1"]
    assert core_arguments(["-v", *argv]) == ["serve", "--data", "d", "--auth",
                                             "--query-nodes", "1"]


def test_sigkill_of_a_proxy_and_of_the_core_loses_no_acknowledged_row(tmp_path):
    data = tmp_path / "db"
    proc = spawn(data, args=("--proxies", "2"))
    try:
        port = wait_ready(proc)
        first = _status(data)
        assert len(first["workers"]) == 2 and alive(first["core"])
        # The directory names the proxies' port, so MilvusClient(DIR) reaches them.
        assert json.loads((data / "server.json").read_text())["address"] == f"127.0.0.1:{port}"
        import vecstore

        via_dir = vecstore.MilvusClient(str(data))
        assert via_dir.list_collections() == []
        via_dir.close()
        client = pymilvus.MilvusClient(f"http://127.0.0.1:{port}", timeout=60)
        client.create_collection("c", dimension=8)
        with ingesting(client, "c") as (acked, failed):
            time.sleep(0.8)
            os.kill(first["workers"][0]["pid"], signal.SIGKILL)  # a proxy
            wait_until(lambda: _status(data)["workers"][0]["generation"] == 1,
                       "proxy not restarted")
            time.sleep(0.8)
            before = len(acked)
            os.kill(first["core"], signal.SIGKILL)  # the coordinator and the nodes' owner
            wait_until(lambda: _status(data)["core_generation"] == 1, "core not restarted")
            wait_until(lambda: len(acked) > before + 100, "writes did not resume after the core")
        got = ids_of(client, "c")
        assert set(acked) <= got, "an acknowledged row was lost"
        assert got <= set(acked) | set(failed)
        status = _status(data)
        assert status["core"] != first["core"] and not alive(first["core"])
        assert status["workers"][1]["pid"] == first["workers"][1]["pid"]  # never interrupted
        client.close()
    finally:
        assert stop(proc) == 0
    pids = [status["core"], *(w["pid"] for w in status["workers"])]
    wait_until(lambda: not any(alive(p) for p in pids), "a child outlived the launcher", 15)
    assert not (data / "proxies.json").exists()


def test_authentication_through_the_proxies(tmp_path):
    data = tmp_path / "auth"
    proc = spawn(data, args=("--proxies", "2", "--auth"),
                 env={"VECSTORE_ROOT_PASSWORD": "root-secret-1"})
    try:
        port = wait_ready(proc)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        for metadata in (None, [("authorization", base64.b64encode(b"root:nope").decode())]):
            with pytest.raises(grpc.RpcError) as e:
                channel.unary_unary(PREFIX + "ShowCollections")(b"", timeout=10,
                                                                  metadata=metadata)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        channel.close()
        with pytest.raises(pymilvus.MilvusException):
            pymilvus.MilvusClient(f"http://127.0.0.1:{port}", timeout=5)
        root = pymilvus.MilvusClient(f"http://127.0.0.1:{port}", token="root:root-secret-1",
                                     timeout=30)
        root.create_collection("c", dimension=4)
        root.create_user("bob", "bob-pw-123")
        bob = pymilvus.MilvusClient(f"http://127.0.0.1:{port}", token="bob:bob-pw-123",
                                    timeout=30)
        with pytest.raises(pymilvus.MilvusException) as denied:
            bob.insert("c", [{"id": 1, "vector": [0.0] * 4}])
        assert denied.value.code == 1401
        root.insert("c", [{"id": 1, "vector": [0.0] * 4}])
        assert ids_of(root, "c") == {1}
        bob.close()
        root.close()
    finally:
        assert stop(proc) == 0
