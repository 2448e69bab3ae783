"""Import file readers: formats, batch bounds (memory), streaming JSON, early errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore.bulk.sources import (
    BadLine,
    JsonlSource,
    JsonSource,
    NumpySource,
    ParquetSource,
    json_rows,
    open_sources,
)
from vecstore.errors import InvalidArgument, NotFoundError

ROWS = [{"id": i, "vector": [float(i), 0.5], "tag": f"t{i}"} for i in range(23)]


def write_all(tmp_path):
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "a.parquet", row_group_size=10)
    (tmp_path / "a.json").write_text(json.dumps({"rows": ROWS}))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    npy = tmp_path / "npy"
    npy.mkdir()
    np.save(npy / "id.npy", np.arange(23))
    np.save(npy / "vector.npy", np.array([r["vector"] for r in ROWS], np.float32))
    np.save(npy / "tag.npy", np.array([r["tag"] for r in ROWS]))
    return [tmp_path / "a.parquet", tmp_path / "a.json", tmp_path / "a.jsonl", npy]


@pytest.mark.parametrize("batch", [1, 4, 10, 100])
def test_every_format_yields_every_row_in_batches_of_at_most_batch_size(tmp_path, batch):
    sources = open_sources(write_all(tmp_path))
    assert [type(s) for s in sources] == [ParquetSource, JsonSource, JsonlSource, NumpySource]
    for src in sources:
        assert src.count_rows() == 23
        chunks = list(src.chunks(batch))
        assert all(0 < c.rows <= batch for c in chunks)  # memory: one batch at a time
        assert [c.start for c in chunks] == list(range(0, 23, batch))[:len(chunks)]
        assert sum(c.rows for c in chunks) == 23
        first = chunks[0].data
        if isinstance(first, dict):
            assert first["id"][0] == 0 and not isinstance(first["id"], np.memmap)
        elif isinstance(first, list):
            assert first[0] == ROWS[0]
        else:
            assert first.num_rows == chunks[0].rows


def test_json_is_parsed_a_row_at_a_time_through_a_small_window():
    text = json.dumps(ROWS, indent=1)
    assert list(json_rows(io.StringIO(text), "x", window=7)) == ROWS
    assert list(json_rows(io.StringIO(json.dumps({"rows": ROWS})), "x", window=3)) == ROWS
    assert list(json_rows(io.StringIO('{"rows": []}'), "x", window=2)) == []
    # A number cut by the window's end is read whole.
    assert list(json_rows(io.StringIO("[12345, 6]"), "x", window=3)) == [12345, 6]


@pytest.mark.parametrize("text", ['{"data": []}', "[{}", '[{"a": 1} {"b": 2}]', "[1] x", "{"])
def test_malformed_json_names_the_file(text):
    with pytest.raises(InvalidArgument, match="f.json"):
        list(json_rows(io.StringIO(text), "f.json", window=4))


def test_a_jsonl_line_that_does_not_parse_is_a_bad_row_not_the_end(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"id": 1}\n{"id": \n{"id": 3}\n')
    rows = next(JsonlSource(str(path)).chunks(10)).data
    assert rows[0] == {"id": 1} and isinstance(rows[1], BadLine) and rows[2] == {"id": 3}


def test_bad_file_arguments_are_refused_before_reading_rows(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        open_sources([tmp_path / "none.parquet"])
    (tmp_path / "x.csv").write_text("id\n1\n")
    with pytest.raises(InvalidArgument, match="unknown import format"):
        open_sources([tmp_path / "x.csv"])
    with pytest.raises(InvalidArgument, match="non-empty list"):
        open_sources(str(tmp_path / "x.csv"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidArgument, match="not a readable Parquet"):
        open_sources([tmp_path / "bad.parquet"])
    np.save(tmp_path / "id.npy", np.arange(3))
    np.save(tmp_path / "vector.npy", np.zeros((4, 2), np.float32))
    with pytest.raises(InvalidArgument, match="different row counts"):
        open_sources([tmp_path / "id.npy", tmp_path / "vector.npy"])
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidArgument, match="dtype=str"):
        open_sources([tmp_path / "obj.npy"])


def test_npy_files_listed_together_or_in_an_inner_list_form_one_group(tmp_path):
    npy = write_all(tmp_path)[3]
    paths = sorted(npy.iterdir())
    for files in (paths, [paths]):
        (src,) = open_sources(files)
        assert isinstance(src, NumpySource) and sorted(src.fields) == ["id", "tag", "vector"]
