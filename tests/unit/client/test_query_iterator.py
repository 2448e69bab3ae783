"""MilvusClient.query_iterator: pages of the rows query() returns, in primary-key order, checked
against a Python model of the live rows (and against query() where its 16,384-row window
reaches), over sealed and growing data with deletes, INT64 and VARCHAR keys, filters, limit,
offset, partitions, output fields and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore import DataType, MilvusClient
from vecstore.client.milvus_client import CollectionNotLoaded, NotSupported
from vecstore.coordinator.errors import CollectionNotFound
from vecstore.errors import InvalidArgument, VecstoreError

COLORS = ["red", "green", "blue"]


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    yield c
    c.close()


def drain(it, batch_size):
    pages = []
    while True:
        page = it.next()
        assert len(page) <= batch_size
        if not page:
            break
        pages.append(page)
    assert it.next() == [] and it.next() == []  # stays exhausted
    it.close()
    return pages


def collection(client, pk_type, keys, rng, partition_of=None):
    """Rows keyed by ``keys``: the first half flushed, the rest growing; returns the model
    {key: row} (vectors left out) of what was inserted."""
    schema = MilvusClient.create_schema(enable_dynamic_field=True)
    if pk_type == DataType.INT64:
        schema.add_field("pk", DataType.INT64, is_primary=True)
    else:
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("n", DataType.INT64)
    schema.add_field("color", DataType.VARCHAR, max_length=8)
    index = MilvusClient.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("it", schema=schema, index_params=index)
    model = {}
    half = len(keys) // 2
    for part, chunk in enumerate((keys[:half], keys[half:])):
        n = np.arange(len(model), len(model) + len(chunk))
        rows = [{"pk": k, "v": [float(i), 0.0], "n": int(i), "color": COLORS[i % 3],
                 "extra": int(i) % 7} for k, i in zip(chunk, n.tolist())]
        if partition_of is None:
            client.insert("it", rows)
        else:
            for p in sorted({partition_of(r) for r in rows}):
                client.insert("it", [r for r in rows if partition_of(r) == p], partition_name=p)
        model.update({r["pk"]: {k: v for k, v in r.items() if k != "v"} for r in rows})
        if part == 0:
            client.flush("it")
    return model


def expect(model, pred, fields):
    return [{"pk": k, **{f: model[k][f] for f in fields}}
            for k in sorted(k for k in model if pred(model[k]))]


def test_int64_beyond_the_query_window_with_deletes(client, rng):
    keys = rng.permutation(40_000)[:20_000].astype(np.int64).tolist()
    model = collection(client, DataType.INT64, keys, rng)
    gone = rng.choice(keys, size=500, replace=False).tolist()
    client.delete("it", ids=gone[:250])
    client.flush("it")
    client.delete("it", ids=gone[250:])
    client.delete("it", filter="n >= 19990")  # growing rows by filter
    for k in gone:
        del model[k]
    model = {k: r for k, r in model.items() if r["n"] < 19990}
    assert len(model) > 16384  # more than one query can return
    pages = drain(client.query_iterator("it", batch_size=4096), 4096)
    assert [r for p in pages for r in p] == expect(model, lambda r: True, [])
    assert [len(p) for p in pages[:-1]] == [4096] * (len(pages) - 1)
    pages = drain(client.query_iterator("it", batch_size=5000, filter="color == 'red'",
                                        output_fields=["n", "extra"]), 5000)
    want = expect(model, lambda r: r["color"] == "red", ["n", "extra"])
    assert [r for p in pages for r in p] == want
    # An offset beyond one query's window is skipped in several steps.
    pages = drain(client.query_iterator("it", batch_size=1500, offset=17_000, limit=2000), 1500)
    assert [r for p in pages for r in p] == expect(model, lambda r: True, [])[17_000:19_000]
    # Where query's window reaches, the iterator returns exactly query's rows.
    assert want[:16384] == client.query("it", filter="color == 'red'",
                                        output_fields=["n", "extra"], limit=16384)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_varchar_keys_filter_limit_offset(client, rng, batch_size):
    odd = ['a"b', "a'b", "a\\b", "é", "z", "Z", "é\u00e9", "😀", "a b", ""]
    keys = odd + [f"k{int(i):05d}" for i in rng.permutation(100_000)[:290]]
    model = collection(client, DataType.VARCHAR, keys, rng)
    client.delete("it", ids=['a"b', "é", keys[-1], keys[20]])
    for k in ('a"b', "é", keys[-1], keys[20]):
        del model[k]
    full = drain(client.query_iterator("it", batch_size=batch_size, output_fields=["color"]),
                 batch_size)
    rows = [r for p in full for r in p]
    assert rows == expect(model, lambda r: True, ["color"])
    assert rows == client.query("it", filter="", output_fields=["color"], limit=16384)
    pred = lambda r: r["n"] % 4 != 0 and r["color"] != "blue"  # noqa: E731
    it = client.query_iterator("it", batch_size=batch_size, limit=37, offset=11,
                               filter="n % 4 != 0 and color != {c}",
                               filter_params={"c": "blue"}, output_fields=["*"])
    got = [r for p in drain(it, batch_size) for r in p]
    want = expect(model, pred, ["n", "color", "extra"])[11:48]
    assert [{k: r[k] for k in ("pk", "n", "color", "extra")} for r in got] == want
    assert all(set(r) == {"pk", "v", "n", "color", "extra"} for r in got)
    assert got == client.query("it", filter="n % 4 != 0 and color != 'blue'",
                               output_fields=["*"], limit=37, offset=11)


def test_partitions_dynamic_filter_and_edges(client, rng):
    keys = list(range(0, 3000, 3))
    model = collection(client, DataType.INT64, keys, rng)
    client.create_partition("it", "p1")
    client.insert("it", [{"pk": 1 + 3 * i, "v": [0.0, 1.0], "n": -i, "color": "red",
                          "extra": 99} for i in range(50)], partition_name="p1")
    pages = drain(client.query_iterator("it", batch_size=9, partition_names=["p1"],
                                        output_fields=["n"]), 9)
    assert [r for p in pages for r in p] == [{"pk": 1 + 3 * i, "n": -i} for i in range(50)]
    got = [r for p in drain(client.query_iterator("it", batch_size=100, filter="extra == 3",
                                                  partition_names=["_default"]), 100)
           for r in p]
    assert got == expect(model, lambda r: r["extra"] == 3, [])
    assert client.query_iterator("it", limit=0).next() == []
    assert client.query_iterator("it", offset=5000).next() == []
    everything = sorted(list(model) + [1 + 3 * i for i in range(50)])
    it = client.query_iterator("it", batch_size=400, offset=900)
    assert [r["pk"] for r in it.next()] == everything[900:1300]
    it = client.query_iterator("it", batch_size=5)
    assert len(it.next()) == 5
    it.close()
    assert it.next() == []


def test_bad_input_raises_and_changes_nothing(client, rng):
    collection(client, DataType.INT64, list(range(100)), rng)
    count = client.query("it", output_fields=["count(*)"])
    bad = [
        (InvalidArgument, dict(batch_size=0)), (InvalidArgument, dict(batch_size=-1)),
        (InvalidArgument, dict(batch_size=16385)), (InvalidArgument, dict(batch_size="10")),
        (InvalidArgument, dict(limit=-2)), (InvalidArgument, dict(limit=1.5)),
        (InvalidArgument, dict(offset=-1)), (InvalidArgument, dict(filter=5)),
        (InvalidArgument, dict(filter="n >")), (InvalidArgument, dict(filter="nope > 1 and")),
        (InvalidArgument, dict(output_fields=["count(*)"])),
        (InvalidArgument, dict(filter="n > {x}")),
        (InvalidArgument, dict(filter_params={"__vecstore_iterator_cursor": 1})),
        (InvalidArgument, dict(partition_names=["missing"])),
        (NotSupported, dict(iterator_cp_file="/tmp/cp")),
    ]
    for error, kwargs in bad:
        with pytest.raises(error) as info:
            client.query_iterator("it", **kwargs)
        assert isinstance(info.value, VecstoreError)
    with pytest.raises(CollectionNotFound):
        client.query_iterator("missing")
    assert client.query("it", output_fields=["count(*)"]) == count
    client.release_collection("it")
    with pytest.raises(CollectionNotLoaded):
        client.query_iterator("it")
