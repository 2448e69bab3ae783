"""Every role as processes at once (``vecstore serve --proxies 2 --query-nodes 2
--streaming-nodes 2 --data-nodes 2``), with segments sealing, compacting and getting indexed
while a pymilvus client ingests: one process of each role type is killed with SIGKILL in turn
(proxy, streaming node, query node, data node, then the core: the coordinator), and every
acknowledged row is found afterwards, by query and by search."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.unit.server.conftest import (
    ids_of,
    ingesting,
    role_logs,
    spawn,
    stop,
    wait_ready,
    wait_until,
)

pymilvus = pytest.importorskip("pymilvus")

ROLES = ("proxies", "streaming_nodes", "query_nodes", "data_nodes")


def _status(data, name: str) -> dict | None:
    try:
        return json.loads((data / f"{name}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _victim(data, name: str) -> tuple[int, int]:
    """(index, pid) of a process of the role ``name`` (the first)."""
    w = _status(data, name)["workers"][0]
    return w["index"], w["pid"]


def _replaced(data, name: str, pid: int) -> bool:
    status = _status(data, name)
    return status is not None and all(w["pid"] != pid for w in status["workers"])


def test_sigkill_of_every_role_type_during_ingestion(tmp_path):
    data = tmp_path / "db"
    try:
        _kill_every_role(data)
    except AssertionError as e:
        # One failure was once seen without its cause: keep the roles' own accounts with it.
        raise AssertionError(f"{e}\n\nrole logs:\n{role_logs(data)}") from e


def _kill_every_role(data) -> None:
    env = {"VECSTORE_SEGMENT_MAX_ROWS": "400", "VECSTORE_MIN_INDEX_ROWS": "200",
           "VECSTORE_DATA_NODE_POLL_S": "0.2", "VECSTORE_COMPACTION_MIN_SEGMENTS": "3"}
    proc = spawn(data, args=("--proxies", "2", "--query-nodes", "2", "--streaming-nodes", "2",
                             "--data-nodes", "2"), env=env)
    try:
        port = wait_ready(proc)
        client = pymilvus.MilvusClient(f"http://127.0.0.1:{port}", timeout=60)
        client.create_collection("c", dimension=8)
        with ingesting(client, "c") as (acked, failed):
            for role in ROLES:
                time.sleep(1.0)
                _, pid = _victim(data, role)
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda role=role, pid=pid: _replaced(data, role, pid),
                           f"{role}: {pid} was not replaced")
            time.sleep(1.0)
            core = _status(data, "proxies")["core"]
            os.kill(core, signal.SIGKILL)
            wait_until(lambda: _status(data, "proxies")["core"] != core,
                       "the core was not restarted")
            before = len(acked)
            wait_until(lambda: len(acked) >= before + 200, "writes did not resume after the core")
        got = ids_of(client, "c")
        assert set(acked) <= got, f"acknowledged rows lost: {sorted(set(acked) - got)[:10]}"
        assert got <= set(acked) | set(failed)
        assert len(acked) > 1000
        # Every acknowledged row is found by vector search too (its own vector, exact match).
        sample = sorted(acked)[:: max(1, len(acked) // 20)]
        rows = client.get("c", ids=sample, output_fields=["vector"])
        for row in rows:
            hit = client.search("c", [row["vector"]], limit=1)[0][0]
            assert hit["distance"] == pytest.approx(1.0, abs=1e-5) or hit["id"] == row["id"]
        client.close()
    except BaseException:
        stop(proc)  # the failure above is the one to report, not the shutdown's status
        raise
    code = stop(proc)
    assert code == 0, f"vecstore serve exited with status {code}"
