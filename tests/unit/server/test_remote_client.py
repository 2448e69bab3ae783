"""vecstore's remote client (``vecstore.MilvusClient("http://...")``): its columnar insert/upsert
store exactly what pymilvus's own row insert stores, for every input form."""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

from pymilvus import DataType, MilvusClient  # noqa: E402
from pymilvus.exceptions import MilvusException  # noqa: E402

import vecstore  # noqa: E402

DIM = 8
N = 40


@pytest.fixture(scope="module")
def fast(server):
    client = vecstore.MilvusClient(server["uri"], timeout=10)
    yield client
    client.close()


def _schema(client, dynamic: bool = True):
    s = client.create_schema(enable_dynamic_field=dynamic)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.VARCHAR, max_length=16, nullable=True)
    s.add_field("score", DataType.DOUBLE, nullable=True)
    s.add_field("n", DataType.INT32, default_value=7)
    s.add_field("flag", DataType.BOOL)
    s.add_field("meta", DataType.JSON, nullable=True)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    return s


def _create(client, name: str, dynamic: bool = True) -> None:
    if client.has_collection(name):
        client.drop_collection(name)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=_schema(client, dynamic), index_params=ip)


def _rows(first: int = 0, dynamic: bool = True) -> list[dict]:
    rng = np.random.default_rng(7 + first)
    vecs = rng.standard_normal((N, DIM), dtype=np.float32)
    rows = []
    for i in range(N):
        r = {"id": first + i, "vec": vecs[i], "tag": None if i % 3 == 0 else f"t{i % 5}",
             "score": None if i % 4 == 1 else i / 8, "flag": bool(i % 2),
             "meta": None if i % 7 == 0 else {"k": i}, "arr": list(range(i % 4))}
        if i % 5 != 0:
            r["n"] = i
        if dynamic and i % 2:
            r["color"] = "red" if i % 3 else "blue"
        rows.append(r)
    return rows


def _stored(client, name: str) -> list[dict]:
    out = client.query(name, "id >= 0", output_fields=["*"], limit=10_000)
    return sorted(out, key=lambda r: r["id"])


def _same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert set(x) == set(y), (x, y)
        for k in x:
            if k == "vec":
                np.testing.assert_array_equal(np.asarray(x[k]), np.asarray(y[k]))
            else:
                assert x[k] == y[k], (k, x, y)


def _shift(rows: list[dict], by: int) -> list[dict]:
    return [dict(r, id=r["id"] + by) for r in rows]


def _unshift(rows: list[dict], by: int) -> list[dict]:
    return [dict(r, id=r["id"] - by) for r in rows]


def _columns(rows: list[dict]) -> dict:
    """The rows as columns: numpy where numpy holds them, lists (None for null) elsewhere."""
    cols = {"id": np.array([r["id"] for r in rows], dtype=np.int64),
            "vec": np.stack([r["vec"] for r in rows]),
            "flag": np.array([r["flag"] for r in rows]),
            "n": [r.get("n") for r in rows]}
    for k in ("tag", "score", "meta", "arr"):
        cols[k] = [r[k] for r in rows]
    cols["$meta"] = [{"color": r["color"]} if "color" in r else {} for r in rows]
    return cols


def test_is_pymilvus_client_with_every_method(server, fast):
    assert isinstance(fast, MilvusClient)
    assert fast.list_collections() is not None


def test_rows_and_columns_store_what_pymilvus_stores(remote, fast):
    """pymilvus's row insert into one collection; the remote client's rows, dict of numpy
    columns, pyarrow table and pandas frame into another, at shifted keys: the same rows."""
    _create(remote, "ref")
    _create(remote, "mine")
    rows = _rows()
    res = remote.insert("ref", rows)
    assert res["insert_count"] == N
    expect = _stored(remote, "ref")

    got = fast.insert("mine", rows)
    assert dict(got) == dict(res)
    _same(_stored(fast, "mine"), expect)

    cols = _columns(_shift(rows, 1000))
    assert fast.insert("mine", cols)["ids"] == list(range(1000, 1000 + N))
    shifted = _columns(_shift(rows, 2000))
    arrow = pa.table({
        "id": shifted["id"],
        "vec": pa.FixedSizeListArray.from_arrays(pa.array(shifted["vec"].ravel()), DIM),
        "tag": pa.array(shifted["tag"], pa.string()),
        "score": pa.array(shifted["score"], pa.float64()),
        "n": pa.array(shifted["n"], pa.int32()),
        "flag": shifted["flag"],
        "arr": pa.array(shifted["arr"], pa.list_(pa.int64())),
    })
    assert fast.insert("mine", arrow)["insert_count"] == N
    frame_cols = _columns(_shift(rows, 3000))
    frame_cols["vec"] = list(frame_cols["vec"])
    frame = pd.DataFrame({k: v for k, v in frame_cols.items() if k not in ("meta", "$meta")})
    assert fast.insert("mine", frame)["insert_count"] == N

    stored = _stored(fast, "mine")
    _same(_unshift([r for r in stored if 1000 <= r["id"] < 2000], 1000), expect)
    no_json = [{k: v for k, v in r.items() if k not in ("meta", "color", "arr")} for r in expect]
    arrow_rows = [{k: v for k, v in r.items() if k not in ("meta", "color", "arr")}
                  for r in _unshift([r for r in stored if 2000 <= r["id"] < 3000], 2000)]
    _same(arrow_rows, no_json)
    frame_rows = _unshift([r for r in stored if r["id"] >= 3000], 3000)
    for r in frame_rows:
        assert r["meta"] is None and "color" not in r
    _same([{k: v for k, v in r.items() if k not in ("meta", "color")} for r in frame_rows],
          [{k: v for k, v in r.items() if k not in ("meta", "color")} for r in expect])


def test_upsert_and_search_match_pymilvus(remote, fast):
    _create(remote, "up_ref")
    _create(remote, "up_mine")
    rows = _rows()
    remote.insert("up_ref", rows)
    fast.insert("up_mine", _columns(rows))
    changed = [dict(r, tag="new", vec=r["vec"] + 1) for r in rows[:10]]
    assert remote.upsert("up_ref", changed)["upsert_count"] == 10
    assert fast.upsert("up_mine", changed[:5])["upsert_count"] == 5
    assert fast.upsert("up_mine", _columns(changed[5:]))["ids"] == list(range(5, 10))
    _same(_stored(fast, "up_mine"), _stored(remote, "up_ref"))
    q = rows[3]["vec"]
    a = remote.search("up_ref", [q], limit=5, output_fields=["tag"])
    b = fast.search("up_mine", [q], limit=5, output_fields=["tag"])
    assert [(h["id"], h["distance"], h["entity"]) for h in a[0]] == \
        [(h["id"], h["distance"], h["entity"]) for h in b[0]]


def test_one_row_dict(fast):
    _create(fast, "one")
    res = fast.insert("one", {"id": 5, "vec": [0.5] * DIM, "flag": True, "arr": [1, 2]})
    assert res["ids"] == [5]
    got = fast.get("one", ids=[5])
    assert got[0]["n"] == 7 and got[0]["tag"] is None and got[0]["arr"] == [1, 2]


def test_errors_are_milvus_exceptions(fast):
    _create(fast, "bad", dynamic=False)
    ok = {"id": np.arange(3), "vec": np.zeros((3, DIM), np.float32),
          "flag": np.ones(3, bool), "arr": [[1]] * 3}
    with pytest.raises(MilvusException, match=f"expected vectors of {DIM} values"):
        fast.insert("bad", dict(ok, vec=np.zeros((3, DIM + 1), np.float32)))
    with pytest.raises(MilvusException, match="unexpected field `extra`"):
        fast.insert("bad", dict(ok, extra=[1, 2, 3]))
    with pytest.raises(MilvusException, match="unexpected field `extra`"):
        fast.insert("bad", [{"id": 1, "vec": [0] * DIM, "flag": True, "arr": [], "extra": 1}])
    with pytest.raises(MilvusException, match="one value per row"):
        fast.insert("bad", dict(ok, id=np.arange(2)))
    with pytest.raises(MilvusException, match="expected INT64 values"):
        fast.insert("bad", dict(ok, id=np.array([0.0, 1.5, 2.0])))
    with pytest.raises(MilvusException, match="flag"):  # from the server: not nullable
        fast.insert("bad", dict(ok, flag=[True, None, False]))
    with pytest.raises(MilvusException):
        fast.insert("no_such_collection", ok)
    with pytest.raises(MilvusException, match="got str"):
        fast.insert("bad", "not data")
    assert fast.query("bad", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 0
