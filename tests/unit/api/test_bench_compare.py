"""`vecstore bench`'s ingestion and database-peer parts run end to end through the CLI at tiny
sizes: the JSON and tables have their shapes, every importable peer takes part (the others are
listed as skipped) and recall is sane. QPS loops are stubbed and no timing is asserted."""

from __future__ import annotations

import json

import pytest

from vecstore import cli
from vecstore.benchmark import indexes, ingest, peers


def importable() -> set[str]:
    return {name for name in peers.PEERS if peers.load(name) is not None}


def test_ingest_part(tmp_path, monkeypatch, capsys):
    # Small batches so that the time-budgeted peers stop after one of them.
    monkeypatch.setattr(ingest, "BATCH", 1_000)
    out = tmp_path / "out"
    rc = cli.main(["bench", "--only", "ingest", "--ingest-n", "4000", "--dim", "16",
                   "--budget", "0.01", "--repeat", "2", "--dir", str(tmp_path),
                   "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| bar (issue 7) |" in text and "## Summary" in text
    result = json.loads((out / "results.json").read_text())
    assert result["parts"] == ["ingest"] and "hnsw" not in result
    r = result["ingest"]
    assert (r["n"], r["dim"], r["bytes_per_row"]) == (4000, 16, 72)
    keys = [s["key"] for s in r["systems"]]
    assert keys[:2] == ["vecstore", "vecstore_rows"]
    assert set(keys[2:]) == importable()
    assert set(r["skipped"]) == set(peers.PEERS) - importable()
    for s in r["systems"]:
        assert s["count_check"], s  # the system holds exactly the rows it was sent
        assert s["rows_per_s"] > 0 and s["rows"] > 0
        want = 4000 if s["key"] not in ingest.SLOW else 1000
        assert s["rows"] == want, s
        assert len(s["rounds"]) == 2 and s["rows_per_s"] == max(s["rounds"])
    assert {s["wal_sync"] for s in r["systems"][:2]} == {"always"}
    assert len(r["disk_runs"]) == 3 and r["disk"]["rows_per_s"] > 0
    against = [b["against"] for b in r["bars"]]
    assert against[-1] == "disk write+fdatasync ceiling"
    assert len(against) == 1 + len(importable())
    assert all(isinstance(b["pass"], bool) for b in r["bars"])
    assert not list(tmp_path.glob("vecstore-bench-ingest-*"))  # databases removed
    md = (out / "results.md").read_text()
    assert md.startswith("# vecstore bench") and "| vecstore (columns) |" in md
    if indexes.installed("matplotlib"):
        assert (out / "ingest.png").stat().st_size > 0


def test_peers_part(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(indexes, "qps_single", lambda *a, **k: 1.0)
    monkeypatch.setattr(indexes, "qps_batch", lambda *a, **k: 2.0)
    found = importable()
    if not found:
        pytest.skip("no database peer (pymilvus + milvus_lite, lancedb, chromadb) installed")
    out = tmp_path / "out"
    rc = cli.main(["bench", "--quick", "--only", "peers", "--n", "2000", "--nq", "30",
                   "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| vecstore HNSW (MilvusClient) |" in text
    result = json.loads((out / "results.json").read_text())
    p = result["peers"]
    assert (p["n"], p["nq"]) == (2000, 30) and p["failed"] == []
    engines = [r["engine"] for r in p["rows"]]
    assert engines[0] == "vecstore HNSW (MilvusClient)" and len(engines) == 1 + len(found)
    for r in p["rows"]:
        recalls = [pt[1] for pt in r["curve"]]
        assert all(0.0 <= x <= 1.0 for x in recalls), r
        # The ladder reaches the target at 2,000 rows for every HNSW, and the figure reported
        # is the one at the smallest ef that does.
        assert r["recall"] >= indexes.TARGET, r
        assert r["value"] == min(pt[0] for pt in r["curve"] if pt[1] >= indexes.TARGET)
        assert max(recalls) >= 0.99, r
    assert "| HNSW QPS at recall@10 >= 0.95" in (out / "results.md").read_text()
