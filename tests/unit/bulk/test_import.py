"""bulk_import: every format stores what insert of the same rows stores; failures leave
nothing; skip mode; auto_id, dynamic fields, defaults, nullable, partitions; segments, indexes."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from tests.unit.bulk.conftest import (
    DIM,
    everything,
    import_and_wait,
    make_collection,
    make_rows,
    numpy_form,
    write_rows,
)
from vecstore import MilvusClient
from vecstore.bulk.segments import SegmentCutter
from vecstore.common import failpoints
from vecstore.errors import InvalidArgument, NotFoundError, NotSupported

FORMATS = ["parquet", "json", "jsonl", "numpy"]


def stored_files(client, name):
    meta = client._proxy.collection(client._db, name)[0]
    return client._dep.datadir.objects.list(f"{meta.id}/")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_imports_exactly_what_insert_stores(client, tmp_path, rng, fmt):
    rows = make_rows(rng, 60)
    if fmt == "numpy":
        rows = numpy_form(rows)
    make_collection(client, "ins")
    make_collection(client, "imp")
    client.insert("ins", rows)
    state = import_and_wait(client, "imp", [write_rows(tmp_path, rows, fmt)], batch_size=16)
    assert state["state"] == "Completed", state["reason"]
    assert state["importedRows"] == state["totalRows"] == 60 and state["progress"] == 100
    assert everything(client, "imp") == everything(client, "ins")
    q = rng.standard_normal((3, DIM)).astype(np.float32)
    for kw in ({}, {"filter": "rank > 10 and extra >= 0"}):
        a = client.search("ins", q, limit=5, output_fields=["*"], **kw)
        b = client.search("imp", q, limit=5, output_fields=["*"], **kw)
        assert a == b


def test_segments_are_cut_at_the_seal_size_and_committed_together(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("VECSTORE_SEGMENT_MAX_ROWS", "16")
    with MilvusClient(str(tmp_path / "db")) as c:
        make_collection(c, "imp")
        rows = make_rows(rng, 50)
        state = import_and_wait(c, "imp", [write_rows(tmp_path, rows, "jsonl")], batch_size=7)
        assert state["state"] == "Completed"
        meta = c._proxy.collection(c._db, "imp")[0]
        assert [s.rows for s in c._dep.coordinator.segments(meta.id)] == [16, 16, 16, 2]
        assert len(everything(c, "imp")) == 50
    with MilvusClient(str(tmp_path / "db")) as c:  # committed: back after a reopen
        assert len(everything(c, "imp")) == 50


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "json", "numpy"])
def test_a_bad_row_fails_the_job_naming_file_and_row_and_leaves_nothing(
        tmp_path, monkeypatch, rng, fmt):
    monkeypatch.setenv("VECSTORE_SEGMENT_MAX_ROWS", "8")  # segments are written before row 37
    with MilvusClient(str(tmp_path / "db")) as c:
        make_collection(c, "imp")
        rows = make_rows(rng, 50)
        if fmt == "numpy":
            rows = numpy_form(rows)
        if fmt in ("json", "jsonl"):
            rows[37]["rank"] = "not a number"
        else:  # typed columns: a value the column type holds but the field does not
            rows[37]["tag"] = "x" * 40  # longer than max_length 16
        path = write_rows(tmp_path, rows, fmt)
        state = import_and_wait(c, "imp", [path], batch_size=10)
        assert state["state"] == "Failed"
        assert str(path) in state["reason"] and "row 37 (0-based)" in state["reason"]
        assert state["importedRows"] == 0 and state["progress"] == 0
        assert everything(c, "imp") == []
        assert stored_files(c, "imp") == []  # the segments written were removed


def test_skip_invalid_rows_skips_and_counts_them(client, tmp_path, rng):
    make_collection(client, "imp")
    rows = make_rows(rng, 40)
    rows[3]["vector"] = [1.0, 2.0]  # wrong dim
    del rows[11]["vector"]  # missing, not nullable
    rows[25]["id"] = rows[24]["id"]  # a key repeated within the batch
    path = write_rows(tmp_path, rows, "jsonl")
    with open(path, "a") as f:
        f.write('{"id": 99, "vector": \n')  # not JSON
    state = import_and_wait(client, "imp", [path], skip_invalid_rows=True, batch_size=32)
    assert state["state"] == "Completed", state["reason"]
    assert state["skippedRows"] == 4 and state["importedRows"] == 37
    assert state["totalRows"] == 41
    assert [s.split(": ")[0] for s in state["skipped"]] == [
        f"{path}, row {r}" for r in (3, 11, 25, 40)]
    got = {r["id"] for r in everything(client, "imp")}
    assert got == {r["id"] for i, r in enumerate(rows) if i not in (3, 11, 25)}


def test_auto_id_allocates_keys_and_refuses_given_ones(client, tmp_path, rng):
    make_collection(client, "imp", auto_id=True)
    rows = make_rows(rng, 30, with_id=False)
    state = import_and_wait(client, "imp", [write_rows(tmp_path, rows, "parquet")])
    assert state["state"] == "Completed"
    got = everything(client, "imp")
    assert len({r["id"] for r in got}) == 30 and all(isinstance(r["id"], int) for r in got)
    with pytest.raises(InvalidArgument, match="auto_id primary key"):
        client.bulk_import("imp", [write_rows(tmp_path, make_rows(rng, 3), "parquet", "p2")])
    state = import_and_wait(client, "imp", [write_rows(tmp_path, make_rows(rng, 3), "json")])
    assert state["state"] == "Failed" and "row 0" in state["reason"]
    assert len(everything(client, "imp")) == 30


def test_partition_name_and_partition_keys_route_as_insert_does(client, tmp_path, rng):
    make_collection(client, "imp")
    client.create_partition("imp", "p1")
    rows = make_rows(rng, 20)
    state = import_and_wait(client, "imp", [write_rows(tmp_path, rows, "json")],
                            partition_name="p1")
    assert state["state"] == "Completed"
    assert len(everything(client, "imp", partition_names=["p1"])) == 20
    assert everything(client, "imp", partition_names=["_default"]) == []
    with pytest.raises(InvalidArgument, match="partition not found"):
        client.bulk_import("imp", [write_rows(tmp_path, rows, "jsonl")], partition_name="nope")

    make_collection(client, "ins_k", partition_key=True)
    make_collection(client, "imp_k", partition_key=True)
    rows = [{**r, "grp": i * 7} for i, r in enumerate(rows)]
    client.insert("ins_k", rows)
    state = import_and_wait(client, "imp_k", [write_rows(tmp_path, rows, "parquet")])
    assert state["state"] == "Completed"
    assert everything(client, "imp_k") == everything(client, "ins_k")
    meta_i = client._proxy.collection(client._db, "ins_k")[0]
    meta_b = client._proxy.collection(client._db, "imp_k")[0]
    client.flush("ins_k")
    parts = {}
    for meta in (meta_i, meta_b):
        for _, seg in client._dep.query.segments(meta.id):
            tbl = seg.segment.scalars()
            ids = tbl.column("pk").to_pylist()
            parts.setdefault(meta.id, {}).update(zip(ids, tbl.column("#partition").to_pylist()))
    assert parts[meta_i.id] == parts[meta_b.id]


def test_a_failure_before_the_commit_leaves_nothing(client, tmp_path, rng):
    make_collection(client, "imp")
    failpoints.configure("import.before_commit=error")
    try:
        state = import_and_wait(client, "imp", [write_rows(tmp_path, make_rows(rng, 20), "json")])
    finally:
        failpoints.configure("")
    assert state["state"] == "Failed" and "import.before_commit" in state["reason"]
    assert everything(client, "imp") == [] and stored_files(client, "imp") == []


def test_uncommitted_import_segments_are_garbage_collected_on_open(tmp_path, rng):
    with MilvusClient(str(tmp_path / "db")) as c:
        make_collection(c, "imp")
        meta, _, layout = c._proxy.collection(c._db, "imp")
        dep = c._dep
        cutter = SegmentCutter(dep.datadir.objects, meta.id, layout.vectors, 100, 1 << 20,
                               dep.coordinator.next_segment_id, dep.coordinator.tso.now())
        import pyarrow as pa

        cutter.add(np.arange(3), {"vector": np.zeros((3, DIM), np.float32)},
                   pa.record_batch({"$partition": ["_default"] * 3}))
        assert cutter.finish() and stored_files(c, "imp")  # written, never committed
    with MilvusClient(str(tmp_path / "db")) as c:  # as after a crash before the commit
        assert stored_files(c, "imp") == [] and everything(c, "imp") == []


def test_declared_indexes_are_built_for_imported_segments(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("VECSTORE_MIN_INDEX_ROWS", "16")
    monkeypatch.setenv("VECSTORE_DATA_NODE_POLL_S", "0.01")
    with MilvusClient(str(tmp_path / "db")) as c:
        make_collection(c, "imp", index="HNSW")
        state = import_and_wait(c, "imp", [write_rows(tmp_path, make_rows(rng, 40), "jsonl")])
        assert state["state"] == "Completed"
        meta = c._proxy.collection(c._db, "imp")[0]
        assert c._dep.builder.wait_until(lambda: not c._dep.indexing.jobs(meta.id), 60)
        assert c.describe_index("imp", "vector")["indexed_rows"] == 40


def test_job_state_is_readable_from_other_threads_while_it_runs(client, tmp_path, rng):
    make_collection(client, "imp")
    path = write_rows(tmp_path, make_rows(rng, 200), "jsonl")
    job = client.bulk_import("imp", [path], batch_size=5)
    seen = []

    def poll():
        while True:
            s = client.get_import_progress(job)
            seen.append(s)
            if s["state"] in ("Completed", "Failed"):
                return

    t = threading.Thread(target=poll)
    t.start()
    t.join(120)
    assert seen[-1]["state"] == "Completed"
    assert all(s["state"] in ("Pending", "Importing", "Completed") for s in seen)
    done = [s["importedRows"] for s in seen]
    assert done == sorted(done)
    assert all(s["progress"] <= 99 for s in seen if s["state"] != "Completed")
    assert [j["jobId"] for j in client.list_import_jobs("imp")] == [job]
    assert client.list_import_jobs("other") == []


def test_bad_arguments_raise_before_anything_starts(client, tmp_path, rng):
    make_collection(client, "imp")
    path = write_rows(tmp_path, make_rows(rng, 3), "jsonl")
    with pytest.raises(NotSupported, match="options"):
        client.bulk_import("imp", [path], chunk=3)
    with pytest.raises(InvalidArgument, match="batch_size"):
        client.bulk_import("imp", [path], batch_size=0)
    with pytest.raises(InvalidArgument, match="skip_invalid_rows"):
        client.bulk_import("imp", [path], skip_invalid_rows="yes")
    with pytest.raises(NotFoundError):
        client.bulk_import("nope", [path])
    with pytest.raises(NotFoundError):
        client.get_import_progress("12345")
    np.save(tmp_path / "vector.npy", np.zeros((3, DIM), np.float32))
    with pytest.raises(InvalidArgument, match="no column for field 'id'"):
        client.bulk_import("imp", [tmp_path / "vector.npy"])
    assert client.list_import_jobs() == []


def _arrays(obj, seen=None):
    """Every numpy array reachable from ``obj``'s attributes, lists and dicts."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("vecstore.bulk"):
        items = list(vars(obj).values())
    else:
        return []
    return [a for item in items for a in _arrays(item, seen)]


def test_the_cutter_holds_no_vector_rows_between_batches(tmp_path, monkeypatch, rng):
    """Vector rows go to the segment's vector files as each batch is added: the cutter keeps
    only keys and scalars, and the files grow batch by batch (never a segment image)."""
    from vecstore.storage.segment.vector_file import VectorFileBuilder

    monkeypatch.setenv("VECSTORE_SEGMENT_MAX_ROWS", "40")
    appended, held = [], []
    real_add, real_append = SegmentCutter.add, VectorFileBuilder.append

    def add(self, pks, vectors, scalars):
        real_add(self, pks, vectors, scalars)
        assert [a.shape for a in _arrays(self) if a.ndim != 1] == []  # no vector rows kept
        assert sum(a.nbytes for a in _arrays(self)) <= 8 * self._rows  # keys only
        held.append((self._rows, self.held_bytes()))

    def append(self, rows):
        appended.append(len(rows))
        real_append(self, rows)

    monkeypatch.setattr(SegmentCutter, "add", add)
    monkeypatch.setattr(VectorFileBuilder, "append", append)
    with MilvusClient(str(tmp_path / "db")) as c:
        make_collection(c, "imp")
        rows = make_rows(rng, 100)
        state = import_and_wait(c, "imp", [write_rows(tmp_path, rows, "parquet")], batch_size=16)
        assert state["state"] == "Completed", state["reason"]
        meta = c._proxy.collection(c._db, "imp")[0]
        assert [s.rows for s in c._dep.coordinator.segments(meta.id)] == [40, 40, 20]
        assert len(everything(c, "imp")) == 100
    assert max(appended) <= 16 and sum(appended) == 100  # at most one batch per append
    assert all(rows <= 40 for rows, _ in held)


def test_abort_while_a_segment_is_being_filled_leaves_no_file(tmp_path, rng):
    import pyarrow as pa

    with MilvusClient(str(tmp_path / "db")) as c:
        make_collection(c, "imp")
        meta, _, layout = c._proxy.collection(c._db, "imp")
        dep = c._dep
        cutter = SegmentCutter(dep.datadir.objects, meta.id, layout.vectors, 4, 1 << 20,
                               dep.coordinator.next_segment_id, dep.coordinator.tso.now())
        cutter.add(np.arange(6), {"vector": np.ones((6, DIM), np.float32)},
                   pa.record_batch({"$partition": ["_default"] * 6}))
        assert len(cutter.written) == 2 and stored_files(c, "imp")  # one cut, one filling
        cutter.abort()
        assert stored_files(c, "imp") == []
        root = dep.datadir.objects.root
        assert [f for _, _, fs in os.walk(root) for f in fs if f.startswith(".tmp-")] == []
