"""Streaming nodes as processes (``vecstore serve --streaming-nodes N``): the WAL channels are
written by node processes; a node killed with SIGKILL during ingestion loses no acknowledged row:
its channels move to a live node, the shards are rebuilt from the log, writes resume, and the
rows are all there after a restart too. Checked in the embedded wiring with the nodes as
processes (threads writing) and through pymilvus against ``vecstore serve``."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

import vecstore
from tests.unit.server.conftest import (
    alive,
    ids_of,
    ingesting,
    spawn,
    stop,
    until_accepted,
    wait_ready,
    wait_until,
)
from vecstore.transport import embedded

pytest.importorskip("grpc")

DIM = 8


def _status(data) -> dict:
    return json.loads((data / "streaming_nodes.json").read_text())


@pytest.fixture()
def nodes(monkeypatch):
    from vecstore.streaming_node.remote import factory

    monkeypatch.setattr(embedded, "STREAMING_NODE_FACTORY", factory(2))


def test_sigkill_during_ingestion_loses_no_acknowledged_row(tmp_path, nodes):
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    for name in ("a", "b"):
        client.create_collection(name, dimension=DIM)
    assert sorted(_status(data)["channels"].values()) == [0, 1]  # one channel per node
    with ingesting(client, "a", 0) as a, ingesting(client, "b", 1) as b:
        for round_ in range(2):
            time.sleep(0.6)
            victim = _status(data)["workers"][round_ % 2]
            os.kill(victim["pid"], signal.SIGKILL)
            wait_until(lambda v=victim, i=round_ % 2:
                       _status(data)["workers"][i]["generation"] != v["generation"],
                       "the node was not replaced")
        time.sleep(0.6)  # writes resume on the recovered shards
    acked, failed = {"a": a[0], "b": b[0]}, {"a": a[1], "b": b[1]}
    status = _status(data)
    assert status["restarts"] == 2
    assert all(alive(w["pid"]) for w in status["workers"])
    for name in ("a", "b"):
        got = ids_of(client, name)
        assert set(acked[name]) <= got, "an acknowledged row was lost"
        assert got <= set(acked[name]) | set(failed[name])
        assert len(acked[name]) > 200  # writes went on after each kill
    client.flush("a")
    client.close()
    reopened = vecstore.MilvusClient(str(data))  # recovery from the WAL files alone
    for name in ("a", "b"):
        assert set(acked[name]) <= ids_of(reopened, name)
    reopened.close()


def test_a_node_answering_with_an_error_gets_its_channel_recovered(tmp_path, nodes):
    """A node that is alive but whose write failed (its log refuses writes) is not killed: the
    channel alone is reopened and the shard rebuilt, and writes resume."""
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    client.create_collection("c", dimension=DIM)
    client.insert("c", [{"id": i, "vector": [float(i)] * DIM} for i in range(10)])
    wal = _deployment(client).datadir.wal("c1")
    wal._failed(vecstore.VecstoreError("simulated"))  # what a write sees when the log fails
    pid_before = _status(data)["workers"][wal.node]["pid"]
    until_accepted(lambda: client.insert("c", [{"id": 100, "vector": [0.0] * DIM}]),
                   "writes did not resume")
    assert ids_of(client, "c") == set(range(10)) | {100}
    status = _status(data)
    assert status["restarts"] == 0 and status["workers"][wal.node]["pid"] == pid_before
    client.close()


def _deployment(client):
    for value in vars(client).values():
        if isinstance(value, embedded.EmbeddedDeployment):
            return value
    raise AssertionError("no deployment found on the client")


def test_channels_are_written_by_the_nodes_not_the_server(tmp_path, nodes):
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    client.create_collection("c", dimension=DIM)
    dep = _deployment(client)
    from vecstore.streaming_node.remote import RemoteWal

    assert isinstance(dep.datadir.wal("c1"), RemoteWal)
    client.insert("c", [{"id": 1, "vector": [1.0] * DIM}])
    node = dep.wal_nodes.processes[dep.datadir.wal("c1").node]
    files = os.listdir(data / "wal" / "c1")
    assert files and all(f.endswith(".log") for f in files)
    # The server holds no descriptor of the log; the node does.
    mine = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}
    theirs = {os.readlink(f"/proc/{node.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{node.pid}/fd")}
    log_path = str(data / "wal" / "c1" / files[-1])
    assert log_path in theirs and log_path not in mine
    client.close()
    assert node.proc.poll() is not None  # closing the client stops the nodes


def test_pymilvus_ingestion_survives_streaming_node_sigkills(tmp_path):
    pymilvus = pytest.importorskip("pymilvus")
    data = tmp_path / "served"
    proc = spawn(data, args=("--streaming-nodes", "2"))
    try:
        port = wait_ready(proc)
        client = pymilvus.MilvusClient(f"http://127.0.0.1:{port}", timeout=30)
        client.create_collection("c", dimension=DIM)
        with ingesting(client, "c") as (acked, failed):
            for _ in range(2):
                time.sleep(0.8)
                node = _status(data)["channels"]["c1"]
                victim = _status(data)["workers"][node]
                os.kill(victim["pid"], signal.SIGKILL)
                wait_until(lambda n=node, v=victim:
                           _status(data)["workers"][n]["generation"] != v["generation"],
                           "the node was not replaced")
            time.sleep(0.8)
        got = ids_of(client, "c")
        assert set(acked) <= got and got <= set(acked) | set(failed)
        assert len(acked) > 100
        client.close()
    finally:
        assert stop(proc) == 0


def test_a_hung_node_is_fenced_and_its_channel_moves(tmp_path, nodes, monkeypatch):
    """A node that stops answering (SIGSTOP: alive, holding its files) loses its lease after
    missed heartbeats: it is killed before its channel is opened elsewhere (one writer per
    channel), and writes resume on the other node."""
    from vecstore.transport import role_process

    monkeypatch.setattr(role_process, "HEARTBEAT_TIMEOUT_S", 0.5)
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    client.create_collection("c", dimension=DIM)
    client.insert("c", [{"id": i, "vector": [float(i)] * DIM} for i in range(10)])
    status = _status(data)
    index = status["channels"]["c1"]
    hung = status["workers"][index]["pid"]
    os.kill(hung, signal.SIGSTOP)
    try:
        until_accepted(lambda: client.insert("c", [{"id": 100, "vector": [0.0] * DIM}]),
                       "writes did not resume", timeout=60, pause=0.2)
        assert not alive(hung) or _zombie(hung)  # fenced: killed, not left writing
        assert _status(data)["channels"]["c1"] != index or \
            _status(data)["workers"][index]["pid"] != hung
        assert ids_of(client, "c") == set(range(10)) | {100}
    finally:
        if alive(hung):
            os.kill(hung, signal.SIGCONT)
    client.close()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return False


def test_a_failed_recovery_is_tried_again(tmp_path, nodes):
    data = tmp_path / "db"
    client = vecstore.MilvusClient(str(data))
    client.create_collection("c", dimension=DIM)
    dep = _deployment(client)
    real, calls = dep.wal_nodes.on_channel_lost, []

    def flaky(channel):
        calls.append(channel)
        if len(calls) == 1:
            raise vecstore.VecstoreError("simulated: the node it moved to died too")
        real(channel)

    dep.wal_nodes.on_channel_lost = flaky
    dep.datadir.wal("c1")._failed(vecstore.VecstoreError("simulated"))
    until_accepted(lambda: client.insert("c", [{"id": 1, "vector": [1.0] * DIM}]),
                   "the channel was never recovered")
    assert calls == ["c1", "c1"]
    assert ids_of(client, "c") == {1}
    client.close()
