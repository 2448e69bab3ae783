"""Shared helpers of the bulk import/export tests: a client, a schema, rows in every format."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore import DataType, MilvusClient

DIM = 8


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("VECSTORE_DATA_NODE_POLL_S", "0.01")
    c = MilvusClient(str(tmp_path / "db"))
    yield c
    c.close()


def make_collection(client, name, *, auto_id=False, partition_key=False, index="FLAT",
                    consistency="Bounded"):
    s = client.create_schema(auto_id=auto_id, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True, auto_id=auto_id)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.VARCHAR, max_length=16, nullable=True)
    s.add_field("rank", DataType.INT64, default_value=7)
    if partition_key:
        s.add_field("grp", DataType.INT64, is_partition_key=True)
    ip = client.prepare_index_params()
    ip.add_index("vector", index_type=index, metric_type="L2")
    client.create_collection(name, schema=s, index_params=ip, consistency_level=consistency,
                             num_partitions=4 if partition_key else None)


def make_rows(rng, n, *, with_id=True, start=0):
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    rows = []
    for i in range(n):
        r = {"vector": vecs[i].tolist(), "tag": f"t{i % 3}"}
        if with_id:
            r["id"] = start + i
        if i % 4 == 1:
            r["tag"] = None  # nullable
        if i % 5 != 2:
            r["rank"] = i  # otherwise the default
        if i % 3 == 0:
            r["extra"] = i * 10  # dynamic
        rows.append(r)
    return rows


def write_rows(tmp_path, rows, fmt, name="data"):
    """``rows`` as an import file (or NumPy directory) of format ``fmt``; returns its path."""
    if fmt == "parquet":
        path = tmp_path / f"{name}.parquet"
        cols = {k: [r.get(k) for r in rows] for k in ("id", "vector", "tag", "rank", "grp")
                if any(k in r for r in rows)}
        table = pa.table(cols)
        table = table.set_column(table.column_names.index("vector"), "vector",
                                 pa.array(cols["vector"], pa.list_(pa.float32(), DIM)))
        metas = [json.dumps({k: v for k, v in r.items() if k not in cols}) for r in rows]
        table = table.append_column("$meta", pa.array(metas))
        pq.write_table(table, path, row_group_size=16)
    elif fmt == "json":
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"rows": rows}))
    elif fmt == "jsonl":
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:  # numpy: one <field>.npy per field; nulls and defaults given explicitly
        path = tmp_path / name
        path.mkdir()
        if "id" in rows[0]:
            np.save(path / "id.npy", np.array([r["id"] for r in rows], np.int64))
        np.save(path / "vector.npy", np.array([r["vector"] for r in rows], np.float32))
        np.save(path / "tag.npy", np.array([r["tag"] or "" for r in rows]))
        np.save(path / "rank.npy", np.array([r.get("rank", 7) for r in rows], np.int64))
        np.save(path / "$meta.npy", np.array(
            [json.dumps({"extra": r["extra"]} if "extra" in r else {}) for r in rows]))
    return path


def numpy_form(rows):
    """What the NumPy files of ``rows`` hold (no nulls: '' for a null tag, 7 for a default)."""
    return [{**r, "tag": r["tag"] or "", "rank": r.get("rank", 7)} for r in rows]


def import_and_wait(client, name, files, **options):
    job = client.bulk_import(name, [str(f) for f in files], **options)
    return client.wait_for_import(job, timeout=120)


def everything(client, name, **kw):
    rows = client.query(name, filter="id >= 0 or id < 0", output_fields=["*"], **kw)
    return sorted(rows, key=lambda r: r["id"])
