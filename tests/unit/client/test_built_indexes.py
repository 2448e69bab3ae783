"""Built vector indexes through MilvusClient: every index type vecstore builds is built per sealed
segment, committed, swapped into searches, and searched together with growing data; results stay
right across flush, compaction, index swap, drop_index and restart (checked against numpy brute
force). The data node runs inline (VECSTORE_BACKGROUND=0) so each step is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore import DataType, MilvusClient
from vecstore.errors import InvalidArgument, NotSupported

DIM = 16
N = 3000
K = 10


@pytest.fixture(autouse=True)
def inline_data_node(monkeypatch):
    monkeypatch.setenv("VECSTORE_BACKGROUND", "0")
    monkeypatch.setenv("VECSTORE_MIN_INDEX_ROWS", "500")


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((30, DIM)).astype(np.float32) * 4
    return (centers[rng.integers(0, 30, n)] +
            rng.standard_normal((n, DIM)).astype(np.float32)).astype(np.float32)


def truth(base: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int,
          allow: np.ndarray | None = None) -> list[set[int]]:
    d = ((q[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    if allow is not None:
        d[:, ~allow] = np.inf
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return [{int(ids[j]) for j in row if np.isfinite(d[i, j])} for i, row in enumerate(order)]


def recall(hits: list, expected: list[set[int]]) -> float:
    got = sum(len({h["id"] for h in r} & e) for r, e in zip(hits, expected))
    return got / max(1, sum(len(e) for e in expected))


def new_collection(client: MilvusClient, name: str, index_type: str, params: dict,
                   metric: str = "L2") -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    idx = client.prepare_index_params()
    idx.add_index("v", index_type=index_type, metric_type=metric, params=params)
    client.create_collection(name, schema=schema, index_params=idx)


def insert(client: MilvusClient, name: str, x: np.ndarray, start: int) -> np.ndarray:
    ids = np.arange(start, start + len(x))
    client.insert(name, {"id": ids, "tag": ids % 100, "v": x})
    return ids


def index_of(client: MilvusClient, name: str) -> list:
    cid = client._catalog.resolve("default", name).id
    return [s.indexes.get("v") for _, s in client._dep.query.segments(cid)]


TYPES = [("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 64}, 0.95),
         ("HNSW_SQ", {"M": 16, "efConstruction": 100, "sq_type": "SQ8", "refine": True},
          {"ef": 64}, 0.9),
         ("HNSW_SQ", {"M": 16, "efConstruction": 100, "sq_type": "FP16"}, {"ef": 64}, 0.9),
         ("IVF_FLAT", {"nlist": 32}, {"nprobe": 32}, 1.0),  # nprobe == nlist: exact
         ("IVF_SQ8", {"nlist": 32}, {"nprobe": 8}, 0.8),
         ("IVF_PQ", {"nlist": 32, "m": 8}, {"nprobe": 8}, 0.4)]


@pytest.mark.parametrize("index_type,params,search,bar", TYPES,
                         ids=[t[0] + str(t[1].get("sq_type", "")) for t in TYPES])
def test_each_type_is_built_swapped_in_and_searched(tmp_path, index_type, params, search, bar):
    c = MilvusClient(str(tmp_path / "db"))
    new_collection(c, "c", index_type, params)
    x = clustered(N, 1)
    ids = insert(c, "c", x, 0)
    c.flush("c")
    d = c.describe_index("c", "v")
    assert (d["state"], d["indexed_rows"], d["pending_index_rows"]) == ("InProgress", 0, N)
    c._dep.builder.run_once()
    d = c.describe_index("c", "v")
    assert (d["index_type"], d["state"], d["total_rows"], d["indexed_rows"],
            d["pending_index_rows"]) == (index_type, "Finished", N, N, 0)
    assert [i.spec.index_type for i in index_of(c, "c")] == [index_type]
    q = clustered(50, 2)
    hits = c.search("c", q, limit=K, anns_field="v", search_params={"params": search})
    assert recall(hits, truth(x, ids, q, K)) >= bar
    # New rows are searchable at once (growing data is searched exactly) and merge with the
    # index's results.
    y = clustered(200, 3)
    ids2 = insert(c, "c", y, N)
    both, all_ids = np.concatenate([x, y]), np.concatenate([ids, ids2])
    hits = c.search("c", y[:20], limit=K, search_params={"params": search})
    assert all(r[0]["id"] == ids2[i] for i, r in enumerate(hits))
    assert recall(hits, truth(both, all_ids, y[:20], K)) >= bar
    c.close()


def test_index_survives_restart_and_is_not_rebuilt(tmp_path):
    path = str(tmp_path / "db")
    c = MilvusClient(path)
    new_collection(c, "c", "HNSW", {"M": 8, "efConstruction": 64}, metric="COSINE")
    x = clustered(N, 4)
    ids = insert(c, "c", x, 0)
    c.flush("c")
    c._dep.builder.run_once()
    cid = c._catalog.resolve("default", "c").id
    files = c._dep.coordinator.index_files(cid)
    assert len(files) == 1
    q = clustered(20, 5)
    # ef=200: the graph is built with all cores, so it differs from run to run; at ef=100 an
    # unlucky graph gave recall 0.945 once. What this test checks is that it is not rebuilt.
    before = c.search("c", q, limit=K, search_params={"params": {"ef": 200}})
    c.close()
    c = MilvusClient(path)
    assert c._dep.coordinator.index_files(cid) == files  # loaded from its file
    assert [i is not None for i in index_of(c, "c")] == [True]
    assert c._dep.indexing.jobs(cid) == []
    after = c.search("c", q, limit=K, search_params={"params": {"ef": 200}})
    assert [[h["id"] for h in r] for r in after] == [[h["id"] for h in r] for r in before]
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    assert recall(after, truth(xn, ids, qn, K)) >= 0.95
    c.close()


def test_compaction_rebuilds_and_deletes_stay_hidden(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    new_collection(c, "c", "HNSW", {"M": 16, "efConstruction": 100})
    x = clustered(N, 6)
    ids = []
    for part in range(3):  # three indexed segments
        ids.append(insert(c, "c", x[part * 1000:(part + 1) * 1000], part * 1000))
        c.flush("c")
    c._dep.builder.run_once()
    assert len([i for i in index_of(c, "c") if i is not None]) == 3
    gone = np.arange(0, N, 3)
    c.delete("c", ids=gone.tolist())
    q = x[gone[:20]]
    hits = c.search("c", q, limit=K, search_params={"params": {"ef": 64}})
    assert not {h["id"] for r in hits for h in r} & set(gone.tolist())
    c.flush("c")
    job = c.compact("c")
    assert c.get_compaction_state(job) == "Completed"
    segs = index_of(c, "c")
    assert len(segs) == 1 and segs[0] is None  # the merged segment is searched exactly...
    assert c.describe_index("c", "v")["state"] == "InProgress"
    c._dep.builder.run_once()
    assert index_of(c, "c")[0] is not None  # ...until its index is built
    alive = np.ones(N, bool)
    alive[gone] = False
    hits = c.search("c", q, limit=K, search_params={"params": {"ef": 64}})
    assert not {h["id"] for r in hits for h in r} & set(gone.tolist())
    assert recall(hits, truth(x, np.arange(N), q, K, alive)) >= 0.95
    cid = c._catalog.resolve("default", "c").id
    assert len(c._dep.coordinator.index_files(cid)) == 1  # the inputs' files went with them
    c.close()


def test_drop_index_removes_files_and_searches_exactly(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    new_collection(c, "c", "IVF_FLAT", {"nlist": 16})
    x = clustered(N, 7)
    ids = insert(c, "c", x, 0)
    c.flush("c")
    c._dep.builder.run_once()
    cid = c._catalog.resolve("default", "c").id
    ref = c._dep.coordinator.index_files(cid)[0]
    prefix = dict(c._dep.query.segments(cid))[ref.segment_id].segment.prefix
    store = c._dep.datadir.objects
    assert store.exists(f"{prefix}/{ref.name}")
    c.release_collection("c")
    c.drop_index("c", "v")
    assert not store.exists(f"{prefix}/{ref.name}")
    assert c._dep.coordinator.index_files(cid) == []
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_index("c", idx)
    c.load_collection("c")
    q = clustered(10, 8)
    hits = c.search("c", q, limit=K)
    assert recall(hits, truth(x, ids, q, K)) == 1.0
    c.close()


def test_create_index_waits_for_builds_of_existing_segments(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    c.create_collection("c", dimension=DIM, metric_type="L2", auto_id=False)
    x = clustered(N, 9)
    c.insert("c", {"id": np.arange(N), "vector": x})
    c.flush("c")
    c.release_collection("c")
    c.drop_index("c", "vector")
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="IVF_SQ8", metric_type="L2", params={"nlist": 16})
    c.create_index("c", idx)
    d = c.describe_index("c", "vector")
    assert (d["state"], d["indexed_rows"], d["nlist"]) == ("Finished", N, 16)
    c.close()


def test_quick_setup_autoindex_builds_hnsw(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    c.create_collection("c", dimension=DIM, metric_type="L2", auto_id=False)
    x = clustered(N, 10)
    c.insert("c", {"id": np.arange(N), "vector": x})
    c.flush("c")
    c._dep.builder.run_once()
    d = c.describe_index("c", "vector")
    assert (d["index_type"], d["state"]) == ("AUTOINDEX", "Finished")
    cid = c._catalog.resolve("default", "c").id
    seg = c._dep.query.segments(cid)[0][1]
    assert seg.indexes["vector"].spec.index_type == "HNSW"
    c.close()


@pytest.mark.parametrize("index_type,search", [("HNSW", {"ef": 64}), ("IVF_FLAT", {"nprobe": 4})])
@pytest.mark.parametrize("selectivity", [0.001, 0.01, 0.1, 0.5, 1.0])
def test_filtered_search_keeps_recall(tmp_path, index_type, search, selectivity):
    c = MilvusClient(str(tmp_path / "db"))
    new_collection(c, "c", index_type, {"M": 16, "efConstruction": 100} if index_type == "HNSW"
                   else {"nlist": 32})
    x = clustered(N, 11)
    ids = np.arange(N)
    rng = np.random.default_rng(12)
    keep = rng.random(N) < selectivity
    keep[rng.integers(0, N)] = True
    c.insert("c", {"id": ids, "tag": np.where(keep, 1, 0), "v": x})
    c.flush("c")
    c._dep.builder.run_once()
    q = clustered(40, 13)
    hits = c.search("c", q, limit=K, filter="tag == 1", search_params={"params": search})
    assert all(keep[h["id"]] for r in hits for h in r)
    assert recall(hits, truth(x, ids, q, K, keep)) >= 0.95
    c.close()


def test_damaged_index_file_is_detected_and_rebuilt(tmp_path):
    path = str(tmp_path / "db")
    c = MilvusClient(path)
    new_collection(c, "c", "HNSW", {"M": 8, "efConstruction": 64})
    x = clustered(N, 14)
    ids = insert(c, "c", x, 0)
    c.flush("c")
    c._dep.builder.run_once()
    cid = c._catalog.resolve("default", "c").id
    ref = c._dep.coordinator.index_files(cid)[0]
    prefix = dict(c._dep.query.segments(cid))[ref.segment_id].segment.prefix
    file = c._dep.datadir.objects.local_path(f"{prefix}/{ref.name}")
    c.close()
    with open(file, "r+b") as f:
        f.seek(ref.size // 2)
        byte = f.read(1)
        f.seek(ref.size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    c = MilvusClient(path)
    assert index_of(c, "c") == [None]  # refused, searched exactly
    q = clustered(10, 15)
    assert recall(c.search("c", q, limit=K), truth(x, ids, q, K)) == 1.0
    c._dep.builder.run_once()
    assert index_of(c, "c")[0] is not None
    assert c._dep.coordinator.index_files(cid)[0].build != ref.build
    c.close()


def test_unsupported_types_and_parameters_are_refused_up_front(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("h", DataType.FLOAT16_VECTOR, dim=DIM)
    c.create_collection("c", schema=schema)
    bad = [("v", "HNSW", {"M": 1}, InvalidArgument, r"M must be an integer in \[2, 2048\]"),
           ("v", "HNSW", {"ef_construction": 8}, NotSupported, "takes M, efConstruction"),
           ("v", "IVF_PQ", {"nlist": 8, "m": 5}, InvalidArgument, "must divide"),
           ("v", "IVF_PQ", {"nlist": 8}, InvalidArgument, "needs parameter m"),
           ("v", "IVF_PQ", {"nlist": 8, "m": 4, "nbits": 4}, NotSupported, "nbits=8"),
           ("v", "HNSW_SQ", {"sq_type": "SQ4U"}, NotSupported, "SQ8, FP16, BF16"),
           ("v", "SCANN", {}, NotSupported, "supported: FLAT, HNSW, HNSW_SQ, IVF_FLAT"),
           ("v", "IVF_FLAT", {"nlist": 0}, InvalidArgument, "nlist"),
           ("h", "HNSW", {}, NotSupported, "supported: FLAT, AUTOINDEX")]
    for field, kind, params, err, match in bad:
        idx = c.prepare_index_params()
        idx.add_index(field, index_type=kind, metric_type="L2", params=params)
        with pytest.raises(err, match=match):
            c.create_index("c", idx)
    assert c.list_indexes("c") == []
    with pytest.raises(InvalidArgument, match=r"ef\(5\) should be larger than k\(10\)"):
        idx = c.prepare_index_params()
        idx.add_index("v", index_type="FLAT", metric_type="L2")
        idx.add_index("h", index_type="FLAT", metric_type="L2")
        c.create_index("c", idx)
        c.load_collection("c")
        c.search("c", [[0.0] * DIM], anns_field="v", limit=10,
                 search_params={"params": {"ef": 5}})
    c.close()


def test_a_build_in_progress_blocks_no_insert_flush_or_search(tmp_path, monkeypatch):
    import threading

    from vecstore.data_node import work

    monkeypatch.setenv("VECSTORE_BACKGROUND", "1")
    started, release = threading.Event(), threading.Event()
    real = work.build_image

    def held_build(spec, base, threads=0, cancel=None):
        started.set()
        assert release.wait(60)
        return real(spec, base, threads, cancel)

    monkeypatch.setattr(work, "build_image", held_build)
    c = MilvusClient(str(tmp_path / "db"))
    new_collection(c, "c", "HNSW", {"M": 8, "efConstruction": 64})
    x = clustered(N, 16)
    insert(c, "c", x, 0)
    c.flush("c")
    assert started.wait(60)  # the builder is inside a build now, and stays there
    y = clustered(600, 17)
    insert(c, "c", y, N)
    c.flush("c")  # a second segment is sealed while the first one's build is held
    hits = c.search("c", y[:5], limit=1)
    assert [r[0]["id"] for r in hits] == list(range(N, N + 5))
    assert c.describe_index("c", "v")["state"] == "InProgress"
    release.set()
    cid = c._catalog.resolve("default", "c").id
    assert c._dep.builder.wait_until(lambda: not c._dep.indexing.jobs(cid), 60)
    assert c.describe_index("c", "v")["state"] == "Finished"
    c.close()


def test_a_failed_commit_leaves_no_file_and_is_retried(tmp_path):
    from vecstore.common import failpoints

    c = MilvusClient(str(tmp_path / "db"))
    new_collection(c, "c", "IVF_FLAT", {"nlist": 16})
    insert(c, "c", clustered(N, 18), 0)
    c.flush("c")
    cid = c._catalog.resolve("default", "c").id
    failpoints.configure("index.before_commit=error")
    try:
        c._dep.builder.run_once()
    finally:
        failpoints.configure("")
    assert c._dep.coordinator.index_files(cid) == []
    prefix = c._dep.query.segments(cid)[0][1].segment.prefix
    assert [k for k in c._dep.datadir.objects.list(prefix) if "/index/" in k] == []
    c._dep.builder.poke()  # a later pass retries
    c._dep.builder.run_once()
    assert len(c._dep.coordinator.index_files(cid)) == 1
    c.close()


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_bin_ivf_flat_on_binary_vectors(tmp_path, metric):
    import vecstore

    c = MilvusClient(str(tmp_path / "db"))
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("b", DataType.BINARY_VECTOR, dim=64)
    idx = c.prepare_index_params()
    idx.add_index("b", index_type="BIN_IVF_FLAT", metric_type=metric, params={"nlist": 16})
    c.create_collection("c", schema=schema, index_params=idx)
    rng = np.random.default_rng(19)
    centers = rng.integers(0, 2, (8, 64))
    flips = rng.random((N, 64)) < 0.1
    bits = centers[rng.integers(0, 8, N)] ^ flips
    x = np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    c.insert("c", {"id": np.arange(N), "b": x})
    c.flush("c")
    c._dep.builder.run_once()
    d = c.describe_index("c", "b")
    assert (d["index_type"], d["state"], d["indexed_rows"]) == ("BIN_IVF_FLAT", "Finished", N)
    cid = c._catalog.resolve("default", "c").id
    assert c._dep.query.segments(cid)[0][1].indexes["b"].spec.index_type == "BIN_IVF_FLAT"
    q = x[:20]
    exact_ids, exact_d = vecstore.knn(q, x, K, metric)
    hits = c.search("c", q, limit=K, search_params={"params": {"nprobe": 16}})  # all lists
    for r, want in zip(hits, exact_d):
        np.testing.assert_allclose([h["distance"] for h in r], want, rtol=1e-6)
    hits = c.search("c", q, limit=K, search_params={"params": {"nprobe": 4}})
    assert recall(hits, [set(row.tolist()) for row in exact_ids]) >= 0.6
    assert all(r[0]["id"] == i for i, r in enumerate(hits))  # each row finds itself
    c.close()


def test_scalar_indexes_answer_filters_like_a_scan(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    rng = np.random.default_rng(20)
    n = 4000
    data = {"id": np.arange(n), "tag": rng.integers(0, 500, n),
            "s": [f"k{v:03d}" for v in rng.integers(0, 200, n)], "v": clustered(n, 21)}
    for name, indexed in (("plain", False), ("indexed", True)):
        schema = c.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("tag", DataType.INT64)
        schema.add_field("s", DataType.VARCHAR, max_length=8)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
        idx = c.prepare_index_params()
        idx.add_index("v", index_type="FLAT", metric_type="L2")
        if indexed:
            idx.add_index("tag", index_type="STL_SORT")
            idx.add_index("s", index_type="INVERTED", index_name="s_idx")
        c.create_collection(name, schema=schema, index_params=idx)
        c.insert(name, data)
        c.flush(name)
        c.delete(name, ids=list(range(0, n, 7)))
    d = c.describe_index("indexed", "s_idx")
    assert (d["index_type"], d["state"], d["indexed_rows"]) == ("INVERTED", "Finished",
                                                               n - len(range(0, n, 7)))
    cid = c._catalog.resolve("default", "indexed").id
    seg = c._dep.query.segments(cid)[0][1]
    q = clustered(5, 22)
    for flt in ["tag == 7", "tag < 5", "tag in [1, 2, 300]", "s == 'k007'", "tag >= 495",
                "s in ['k001', 'k199'] or tag < 3", "tag != 7", "tag < 400"]:
        want = c.query("plain", filter=flt, output_fields=["id"])
        got = c.query("indexed", filter=flt, output_fields=["id"])
        assert sorted(r["id"] for r in got) == sorted(r["id"] for r in want), flt
        assert c.search("indexed", q, limit=5, filter=flt) == \
            c.search("plain", q, limit=5, filter=flt), flt
        again = c.query("indexed", filter=flt, output_fields=["id"])  # the cached mask
        assert sorted(r["id"] for r in again) == sorted(r["id"] for r in want), flt
    assert set(seg._sorted) == {"tag", "s"}  # the sorted columns were built and consulted
    c.delete("indexed", filter="tag == 7")  # a delete after the mask was cached still hides
    assert c.query("indexed", filter="tag == 7", output_fields=["id"]) == []
    c.close()


def test_close_cancels_a_build_in_progress_and_reopen_builds_it(tmp_path, monkeypatch):
    """close() does not wait for an HNSW build to finish (it could take minutes): the build is
    cancelled, nothing is committed, and the next open builds the index."""
    import threading
    import time

    from vecstore import _core
    from vecstore.errors import Cancelled
    from vecstore.index.hnsw import HnswIndex

    flag = _core.CancelFlag()
    flag.set()
    with pytest.raises(Cancelled):
        HnswIndex.build(clustered(3000, 1), "L2", M=8, ef_construction=64, cancel=flag)

    monkeypatch.setenv("VECSTORE_BACKGROUND", "1")  # the builder thread, as in production
    path = str(tmp_path / "db")
    c = MilvusClient(path)
    new_collection(c, "c", "HNSW", {"M": 16, "efConstruction": 400})
    insert(c, "c", clustered(N, 4), 0)
    started, raised = threading.Event(), []
    real = HnswIndex.build.__func__

    def held_build(cls, *a, cancel=None, **k):
        # Holds the build until close() has set the builder's flag, then runs it with that
        # flag: the engine must stop at once and the builder must exit without committing.
        started.set()
        while not cancel.is_set():
            time.sleep(0.01)
        try:
            return real(cls, *a, cancel=cancel, **k)
        except Cancelled as e:
            raised.append(e)
            raise

    try:
        HnswIndex.build = classmethod(held_build)
        c.flush("c")
        assert started.wait(30)
        c.close()
    finally:
        HnswIndex.build = classmethod(real)
    assert len(raised) == 1
    monkeypatch.setenv("VECSTORE_BACKGROUND", "0")
    c = MilvusClient(path)
    cid = c._catalog.resolve("default", "c").id
    cid_files = c._dep.coordinator.index_files(cid)
    c._dep.builder.run_once()
    assert [i is not None for i in index_of(c, "c")] == [True]
    assert len(c._dep.coordinator.index_files(cid)) == len(cid_files) + 1
    c.close()
