"""`vecstore serve --supervise`: a server killed with SIGKILL is restarted on the same port and
loses no acknowledged row; SIGTERM to the supervisor stops both."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from tests.unit.server.conftest import alive, spawn, stop, wait_ready

pymilvus = pytest.importorskip("pymilvus")


def test_a_killed_server_is_restarted_and_keeps_acknowledged_rows(tmp_path):
    data = tmp_path / "db"
    sup = spawn(data, args=("--supervise",))
    try:
        port = wait_ready(sup)
        uri = f"http://127.0.0.1:{port}"
        client = pymilvus.MilvusClient(uri, timeout=30)
        client.create_collection("c", dimension=8)
        rng = np.random.default_rng(0)
        rows = [{"id": i, "vector": rng.standard_normal(8).tolist()} for i in range(300)]
        for s in range(0, 300, 100):
            client.insert("c", rows[s:s + 100])  # acknowledged: durable in the WAL
        client.close()
        victim = json.loads((data / "server.json").read_text())["pid"]
        os.kill(victim, signal.SIGKILL)
        assert wait_ready(sup, timeout=90) == port  # the restart's readiness line, same port
        client = pymilvus.MilvusClient(uri, timeout=30)
        client.load_collection("c")
        got = client.query("c", filter="id >= 0", output_fields=["count(*)"])
        assert got[0]["count(*)"] == 300
        client.insert("c", [{"id": 1000, "vector": [0.0] * 8}])
        client.close()
        restarted = json.loads((data / "server.json").read_text())["pid"]
        assert restarted != victim and not alive(victim)
    finally:
        code = stop(sup)
    assert code == 0
    deadline = time.monotonic() + 10
    while alive(restarted) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(restarted)


def test_supervise_needs_the_command_line():
    from vecstore.cli import main

    assert main(["serve", "--data", "unused", "--supervise"]) == 2


def test_the_restart_budget_gives_up_after_max_restarts_within_the_window(monkeypatch, capsys):
    from vecstore.server import supervise

    now = [1000.0]
    monkeypatch.setattr(supervise.time, "monotonic", lambda: now[0])
    budget = supervise.RestartBudget("vecstore serve")
    for _ in range(supervise.MAX_RESTARTS):
        assert budget.spend("the core", -9)
    err = capsys.readouterr().err
    assert "vecstore serve: the core exited with status -9; restarting it" in err
    assert not budget.spend("the core", -9)
    assert "restarted 10 times within 60 s; giving up" in capsys.readouterr().err
    now[0] += supervise.WINDOW_S + 1  # the earlier restarts leave the window
    assert budget.spend("the core", 1)
