"""The Prometheus endpoint of `vecstore serve --metrics-port` and its JSON request log."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

pytest.importorskip("pymilvus")

from pymilvus import MilvusClient, MilvusException  # noqa: E402

from .conftest import spawn, stop, wait_ready  # noqa: E402


@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    data = tmp_path_factory.mktemp("metrics")
    proc = spawn(data, args=("--metrics-port", "0"))
    port = wait_ready(proc)
    info = json.loads((data / "server.json").read_text())
    yield {"uri": f"http://127.0.0.1:{port}", "data": data,
           "url": f"http://127.0.0.1:{info['metrics_port']}/metrics"}
    assert stop(proc) == 0


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_report_requests_rows_and_segments(metered):
    c = MilvusClient(metered["uri"], timeout=10)
    c.create_collection("m", dimension=4)
    c.insert("m", [{"id": i, "vector": [1, 0, 0, float(i)]} for i in range(20)])
    c.flush("m")
    c.insert("m", [{"id": 100 + i, "vector": [0, 1, 0, float(i)]} for i in range(5)])
    c.delete("m", ids=[1, 2, 3])
    for _ in range(3):
        c.search("m", [[1, 0, 0, 0]], limit=2)
    with pytest.raises(MilvusException):
        c.search("no_such", [[1, 0, 0, 0]])
    c.close()

    m = _scrape(metered["url"])
    assert m['vecstore_requests_total{method="Search",status="0"}'] == 3
    assert m['vecstore_requests_total{method="Search",status="100"}'] >= 1
    assert m['vecstore_requests_total{method="Insert",status="0"}'] == 2
    assert m['vecstore_request_duration_seconds_count{method="Search",status="0"}'] == 3
    assert m['vecstore_request_duration_seconds_bucket{method="Search",status="0",le="+Inf"}'] \
        == 3
    assert m["vecstore_rows_inserted_total"] == 25
    assert m["vecstore_rows_deleted_total"] == 3
    lab = '{db="default",collection="m"}'
    assert m["vecstore_collection_sealed_segments" + lab] >= 1
    assert m["vecstore_collection_sealed_rows" + lab] == 20
    assert m["vecstore_collection_growing_rows" + lab] == 5
    assert m["vecstore_collection_wal_bytes" + lab] > 0
    assert m["vecstore_process_resident_memory_bytes"] > 1 << 20


def test_request_log_has_one_json_line_per_call(metered):
    c = MilvusClient(metered["uri"], timeout=10)
    c.list_collections()
    c.close()
    lines = (metered["data"] / "server.log").read_text().splitlines()
    records = [json.loads(x) for x in lines]
    shows = [r for r in records if r["method"] == "ShowCollections"]
    assert shows and shows[-1]["status"] == "0" and shows[-1]["user"] == "root"
    assert all(set(r) == {"ts", "method", "user", "status", "ms"} for r in records)
    assert all(r["ms"] >= 0 for r in records)
    assert re.fullmatch(r"\d+|[A-Z_]+|legacy\d+", records[-1]["status"])
