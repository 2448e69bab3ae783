"""Errors reach pymilvus as statuses with Milvus's codes, at once (no retry loop), and the
`vecstore serve` process refuses a taken port or an owned directory and stops cleanly."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("pymilvus")

from pymilvus import MilvusException  # noqa: E402

from .conftest import spawn, stop, wait_ready  # noqa: E402


def _fails_fast(fn, code):
    start = time.monotonic()
    with pytest.raises(MilvusException) as e:
        fn()
    assert time.monotonic() - start < 1.0, "pymilvus retried: the server let an error escape"
    assert e.value.code == code, e.value
    return e.value


def test_errors_are_statuses(remote):
    remote.create_collection("errs", dimension=4)
    assert not remote.has_collection("no_such")
    e = _fails_fast(lambda: remote.search("no_such", [[1, 2, 3, 4]]), 100)
    assert "no_such" in e.message
    e = _fails_fast(lambda: remote.insert("errs", [{"id": 1, "vector": [1, 2, 3]}]), 1100)
    assert "dim" in e.message
    _fails_fast(lambda: remote.create_collection("bad name!", dimension=4), 1100)
    _fails_fast(lambda: remote.query("errs", filter="id >"), 1100)
    _fails_fast(lambda: remote.search("errs", [[1, 2, 3, 4]], anns_field="nope"), 1100)
    assert remote.describe_index("errs", "no_index") is None
    remote.drop_collection("errs")


def test_unimplemented_rpc_is_reported(remote):
    import grpc

    start = time.monotonic()
    with pytest.raises((MilvusException, grpc.RpcError)) as e:
        remote.describe_resource_group("rg")
    assert time.monotonic() - start < 2.0
    assert "vecstore serve does not implement DescribeResourceGroup" in str(e.value)


def test_server_uri_gives_pymilvus_client(server):
    import pymilvus

    import vecstore

    client = vecstore.MilvusClient(server["uri"])
    assert isinstance(client, pymilvus.MilvusClient)
    assert client.get_server_version().startswith("vecstore-")
    client.close()
    # The directory a running server owns: its address is in server.json.
    client = vecstore.MilvusClient(str(server["data"]))
    assert isinstance(client, pymilvus.MilvusClient)
    client.close()


def test_port_taken_and_directory_owned(server, tmp_path):
    for data, port, message in [(tmp_path / "other", server["port"], "port is in use"),
                                (server["data"], 0, "is in use by another vecstore client")]:
        proc = spawn(data, port=port)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 2, (out, err)
        assert message in err, err


def test_sigterm_stops_cleanly_and_releases_the_directory(tmp_path):
    from pymilvus import MilvusClient as Remote

    from vecstore import MilvusClient

    proc = spawn(tmp_path / "d")
    port = wait_ready(proc)
    client = Remote(f"http://127.0.0.1:{port}")
    client.create_collection("c", dimension=2)
    client.insert("c", [{"id": 1, "vector": [1, 2]}])
    client.close()
    assert (tmp_path / "d" / "server.json").exists()
    assert stop(proc) == 0
    assert not (tmp_path / "d" / "server.json").exists()
    with MilvusClient(str(tmp_path / "d")) as local:
        assert local.get("c", ids=[1])[0]["vector"] == [1.0, 2.0]
