"""`vecstore bench`: the index benchmark runs end to end through the CLI on a small data set and
reports vecstore's row with its recall (QPS loops are stubbed: timing is not what is tested)."""

from __future__ import annotations

import json

from vecstore import cli
from vecstore.benchmark import indexes


def test_bench_command_prints_tables(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(indexes, "qps_single", lambda *a, **k: 1.0)
    monkeypatch.setattr(indexes, "qps_batch", lambda *a, **k: 2.0)
    # Only vecstore: the comparators are optional and their builds are not under test here.
    monkeypatch.setattr(indexes, "installed", lambda module: False)
    out_json = tmp_path / "r.json"
    rc = cli.main(["bench", "--n", "3000", "--nq", "50", "--only", "hnsw,ivf,filter",
                   "--nlist", "16", "--m", "8", "--json", str(out_json),
                   "--out", str(tmp_path / "out")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| vecstore HNSW (MilvusClient) |" in text and "| allowed |" in text
    result = json.loads(out_json.read_text())
    assert result["n"] == 3000 and result["dim"] == 128
    hnsw = result["hnsw"][0]
    assert hnsw["engine"].startswith("vecstore") and hnsw["recall"] >= 0.95
    assert [r["selectivity"] for r in result["filter"]] == indexes.SELECTIVITIES
    assert all(r["recall"] >= 0.95 for r in result["filter"])
    ivf = {(r["engine"], r["nprobe"]): r["recall"] for r in result["ivf"]}
    assert ivf[("vecstore IVF_FLAT (MilvusClient)", 64)] == 1.0  # nprobe >= nlist: exact
