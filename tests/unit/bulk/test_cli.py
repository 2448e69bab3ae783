"""vecstore import / export through vecstore.cli.main, the export round trip, the progress
bar."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from tests.unit.bulk.conftest import everything, make_collection, make_rows, write_rows
from vecstore import MilvusClient
from vecstore.bulk.progress import ProgressBar
from vecstore.cli import main


def test_import_then_export_then_import_round_trips(tmp_path, rng, capsys):
    data = str(tmp_path / "db")
    with MilvusClient(data) as c:
        make_collection(c, "src")
        make_collection(c, "dst")
        make_collection(c, "some")
        c.release_collection("src")
    rows = make_rows(rng, 45)
    src = write_rows(tmp_path, rows, "jsonl")
    assert main(["import", "--data", data, "--collection", "src", "--batch-size", "8",
                 str(src)]) == 0
    assert "imported 45 rows into src" in capsys.readouterr().out

    out = tmp_path / "out.parquet"
    assert main(["export", "--data", data, "--collection", "src", "--out", str(out),
                 "--batch-size", "10"]) == 0
    assert "exported 45 rows" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.num_rows == 45 and str(table.schema.field("vector").type).startswith(
        "fixed_size_list<element: float>[8]")
    assert main(["import", "--data", data, "--collection", "dst", str(out)]) == 0
    part = tmp_path / "part.parquet"
    assert main(["export", "--data", data, "--collection", "src", "--out", str(part),
                 "--filter", "id < 10"]) == 0
    assert main(["import", "--data", data, "--collection", "some", str(part)]) == 0
    with MilvusClient(data) as c:
        assert c.get_load_state("src")["state"].name == "NotLoad"  # export put it back
        c.load_collection("src")
        assert everything(c, "dst") == everything(c, "src")
        assert everything(c, "some") == [r for r in everything(c, "src") if r["id"] < 10]


def test_import_failure_exits_1_with_the_reason(tmp_path, rng, capsys):
    data = str(tmp_path / "db")
    with MilvusClient(data) as c:
        make_collection(c, "c")
    rows = make_rows(rng, 5)
    rows[2]["vector"] = [1.0]
    bad = write_rows(tmp_path, rows, "json")
    assert main(["import", "--data", data, "--collection", "c", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "import failed" in err and f"{bad}, row 2 (0-based)" in err
    assert main(["import", "--data", data, "--collection", "c", "--skip-invalid-rows",
                 str(bad)]) == 0
    out = capsys.readouterr().out
    assert "imported 4 rows" in out and "skipped 1 invalid rows" in out
    assert main(["import", "--data", data, "--collection", "c",
                 str(tmp_path / "missing.parquet")]) == 2  # a VecstoreError before any work


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_only():
    plain = io.StringIO()
    bar = ProgressBar(100, plain, interval=0)
    bar.update(50)
    bar.close()
    assert plain.getvalue() == ""
    tty = _Tty()
    bar = ProgressBar(100, tty, interval=0)
    bar.update(50)
    bar.close()
    text = tty.getvalue()
    assert text.startswith("\rimport 50/100 rows [") and text.endswith("\n")
    assert "rows/s" in text and "ETA" in text and "50%" in text
    line = ProgressBar(1000, tty).line(250, now=bar._start)  # no time passed: no division error
    assert "250/1,000" in line
