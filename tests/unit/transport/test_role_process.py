"""RoleProcess: a role process starts, answers, is replaced and stops, without a gRPC connectivity
poller (its thread could fail after the channel closed)."""

from __future__ import annotations

import grpc
import pytest

from vecstore.data_node.process import METHODS, SERVICE
from vecstore.transport.role_process import RoleProcess


def _no_connectivity_polling(*args, **kwargs):
    # Its polling thread outlives a timed-out future and raised "Channel closed!" after stop()
    # (a CI failure): readiness must not depend on it.
    raise AssertionError("RoleProcess must not use grpc.channel_ready_future")


@pytest.mark.timeout(120)
def test_start_restart_stop_without_connectivity_polling(tmp_path, monkeypatch):
    monkeypatch.setattr(grpc, "channel_ready_future", _no_connectivity_polling)
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    (tmp_path / "segments").mkdir()  # what a data node reads and writes
    p = RoleProcess("data-node", 0, "vecstore.data_node.process", SERVICE, METHODS,
                    str(tmp_path), str(sockets))
    p.start()
    first = p.pid
    assert p.stub is not None and p.stub.call("Heartbeat", {}, timeout=5)[0] is not None
    p.restart()
    assert p.pid != first and p.generation == 1
    assert p.stub.call("Heartbeat", {}, timeout=5)[0] is not None
    p.stop(kill=False)
    assert p.proc is not None and p.proc.poll() is not None and p.stub is None
    assert (tmp_path / "data-node-0.log").exists()
