"""Index benchmarks in the style of ann-benchmarks: vecstore's indexes searched through the whole
stack against the libraries users would otherwise call directly, in the same run on the same data.

vecstore is measured as a user runs it: ``MilvusClient("./dir")``, rows inserted and flushed into
one sealed segment, ``create_index`` (timed: it returns once the segment's index is built), then
``client.search(...)`` (client, proxy, query node) with ``search_params={"params": {"ef": ...}}``
or ``{"nprobe": ...}``. The libraries (hnswlib, usearch, faiss; each only if installed) get the
same numpy matrix and the same parameters (M=16, efConstruction=200; nlist, m).

Reported per engine: build seconds, the smallest ef (nprobe) of a ladder reaching recall@10 >=
0.95 and the QPS there, one query per call and all queries (1,000 by default) in one call
(``qps1000`` in the results); the recall/QPS curve for plots; and filtered HNSW search at
0.1%..100% allowed rows. Entry points: ``vecstore bench``
(the CLI, :mod:`vecstore.benchmark.runner`) and ``bench/bench_indexes.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

import vecstore
from vecstore import DataType, MilvusClient

M = 16
EF_CONSTRUCTION = 200
EF_LADDER = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
K = 10
TARGET = 0.95
NPROBE_LADDER = [1, 2, 4, 8, 16, 32, 64, 128]
SELECTIVITIES = [0.001, 0.01, 0.1, 0.5, 1.0]


def clustered(n: int, nq: int, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """n base and nq query rows drawn around the same seeded random centres (seeded by n)."""
    rng = np.random.default_rng([20261126, n])
    clusters = max(10, min(300, n // 300))
    centers = rng.standard_normal((clusters, dim), dtype=np.float32) * 3

    def draw(count: int) -> np.ndarray:
        labels = rng.integers(0, clusters, count)
        return (centers[labels] + rng.standard_normal((count, dim), dtype=np.float32)
                ).astype(np.float32)

    return draw(n), draw(nq)


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true neighbours found (slots without a neighbour, -1, when
    fewer than K rows are allowed, do not count)."""
    scores = []
    for a, b in zip(ids, truth):
        want = set(b.tolist()) - {-1}
        scores.append(len(set(a.tolist()) & want) / len(want) if want else 1.0)
    return float(np.mean(scores))


class Stack:
    """vecstore through MilvusClient; ``index`` is the Milvus index type, ``params`` its build
    parameters, ``knob`` the search parameter the ladder varies (ef or nprobe)."""

    def __init__(self, index: str, params: dict[str, Any], knob: str, metric: str = "L2"):
        self.index, self.params, self.knob, self.metric = index, params, knob, metric
        self.name = f"vecstore {index} (MilvusClient)"

    def build(self, base: np.ndarray, tags: np.ndarray | None = None) -> float:
        """Inserts and flushes ``base`` (one segment), then times create_index."""
        self.dir = tempfile.mkdtemp(prefix="vecstore-bench-")
        c = self.client = MilvusClient(f"{self.dir}/db")
        schema = c.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("tag", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=base.shape[1])
        flat = c.prepare_index_params()
        flat.add_index("vector", index_type="FLAT", metric_type=self.metric)
        c.create_collection("c", schema=schema, index_params=flat,
                            consistency_level="Bounded")
        n = base.shape[0]
        tags = np.zeros(n, np.int64) if tags is None else tags
        for start in range(0, n, 50_000):
            stop = min(n, start + 50_000)
            c.insert("c", {"id": np.arange(start, stop), "tag": tags[start:stop],
                           "vector": base[start:stop]})
        c.flush("c")
        c.release_collection("c")
        c.drop_index("c", "vector")
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type=self.index, metric_type=self.metric,
                      params=self.params)
        start = time.perf_counter()
        c.create_index("c", idx)
        took = time.perf_counter() - start
        c.load_collection("c")
        return took

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> list:
        return self.client.search("c", queries, limit=K, filter=flt,
                                  search_params={"params": {self.knob: value}})

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        out = np.full((len(queries), K), -1, np.int64)
        for i, hits in enumerate(self.run(queries, value, flt)):
            got = [h["id"] for h in hits]
            out[i, :len(got)] = got
        return out

    def close(self) -> None:
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Hnswlib:
    name = "hnswlib"

    def build(self, base: np.ndarray) -> float:
        import hnswlib
        start = time.perf_counter()
        self.index = hnswlib.Index(space="l2", dim=base.shape[1])
        self.index.init_index(max_elements=base.shape[0], M=M, ef_construction=EF_CONSTRUCTION,
                              random_seed=0)
        self.index.set_num_threads(os.cpu_count() or 1)
        self.index.add_items(base, np.arange(base.shape[0]))
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        self.index.set_ef(max(value, K))
        return self.index.knn_query(queries, k=K)

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        return self.run(queries, value)[0].astype(np.int64)

    def close(self) -> None:
        pass


class Usearch:
    name = "usearch"

    def build(self, base: np.ndarray) -> float:
        from usearch.index import Index
        start = time.perf_counter()
        self.index = Index(ndim=base.shape[1], metric="l2sq", dtype="f32", connectivity=M,
                           expansion_add=EF_CONSTRUCTION)
        self.index.add(np.arange(base.shape[0]), base, threads=0)
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        self.index.expansion_search = max(value, K)
        return self.index.search(queries, K, threads=0)

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        return np.asarray(self.run(queries, value).keys, dtype=np.int64).reshape(-1, K)

    def close(self) -> None:
        pass


class FaissHnsw:
    name = "faiss IndexHNSWFlat"

    def build(self, base: np.ndarray) -> float:
        import faiss
        self.faiss = faiss
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        start = time.perf_counter()
        self.index = faiss.IndexHNSWFlat(base.shape[1], M)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(base)
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        params = self.faiss.SearchParametersHNSW(efSearch=max(value, K))
        return self.index.search(queries, K, params=params)

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        return self.run(queries, value)[1]

    def close(self) -> None:
        pass


def installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


class FaissIvf:
    """faiss IndexIVFFlat / IndexIVFPQ used directly."""

    def __init__(self, kind: str, nlist: int, m: int | None = None):
        self.kind, self.nlist, self.m = kind, nlist, m
        self.name = f"faiss {'IndexIVFFlat' if kind == 'IVF_FLAT' else 'IndexIVFPQ'}"

    def build(self, base: np.ndarray) -> float:
        import faiss
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        start = time.perf_counter()
        quantizer = faiss.IndexFlatL2(base.shape[1])
        if self.kind == "IVF_FLAT":
            self.index = faiss.IndexIVFFlat(quantizer, base.shape[1], self.nlist)
        else:
            self.index = faiss.IndexIVFPQ(quantizer, base.shape[1], self.nlist, self.m, 8)
        self.index.train(base)
        self.index.add(base)
        self.quantizer = quantizer
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        self.index.nprobe = value
        return self.index.search(queries, K)

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        return self.run(queries, value)[1]

    def close(self) -> None:
        pass


def qps_single(engine: Any, queries: np.ndarray, value: int, flt: str = "",
               seconds: float = 1.5) -> float:
    engine.run(queries[:1], value, flt)  # warm-up: an engine may reconfigure on a new value
    # The clock is read after every query so that a slow engine (tens of ms a call) stops on
    # time instead of finishing a pass over all the queries.
    n, start = 0, time.perf_counter()
    while True:
        for i in range(len(queries)):
            engine.run(queries[i:i + 1], value, flt)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed > seconds:
                return n / elapsed


def qps_batch(engine: Any, queries: np.ndarray, value: int, repeat: int = 3) -> float:
    engine.run(queries, value)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        engine.run(queries, value)
        best = min(best, time.perf_counter() - start)
    return len(queries) / best


def ladder_run(engine: Any, queries: np.ndarray, truth: np.ndarray, ladder: list[int],
               curve: bool) -> dict[str, Any]:
    """Recall (and, for the curve, 1/call QPS) along the ladder; the smallest value reaching
    TARGET and its QPS in both modes."""
    points, chosen = [], None
    single = queries[:200]
    for value in ladder:
        r = recall(engine.ids(queries, value), truth)
        if curve:
            points.append((value, r, qps_single(engine, single, value, seconds=0.5)))
        if r >= TARGET and chosen is None:
            chosen = (value, r)
            if not curve:
                break
    if chosen is None:
        chosen = (ladder[-1], r)
    value, r = chosen
    return {"value": value, "recall": r, "qps1": qps_single(engine, single, value),
            "qps1000": qps_batch(engine, queries, value), "curve": points}


def bench_hnsw(base, queries, truth, curve: bool,
               ladder: list[int] = EF_LADDER) -> list[dict[str, Any]]:
    engines: list[Any] = [Stack("HNSW", {"M": M, "efConstruction": EF_CONSTRUCTION}, "ef")]
    for cls, module in ((Hnswlib, "hnswlib"), (Usearch, "usearch.index"), (FaissHnsw, "faiss")):
        if installed(module):
            engines.append(cls())
    rows = []
    for e in engines:
        build = e.build(base)
        rows.append({"engine": e.name, "build_s": build,
                     **ladder_run(e, queries, truth, ladder, curve)})
        e.close()
        print(f"  {rows[-1]['engine']}: {rows[-1]['build_s']:.1f} s, ef {rows[-1]['value']}, "
              f"{rows[-1]['qps1']:.0f} / {rows[-1]['qps1000']:.0f} QPS", flush=True)
    return rows


def bench_ivf(base, queries, truth, nlist: int, m: int) -> list[dict[str, Any]]:
    rows = []
    for kind, params in (("IVF_FLAT", {"nlist": nlist}), ("IVF_PQ", {"nlist": nlist, "m": m})):
        engines: list[Any] = [Stack(kind, params, "nprobe")]
        if installed("faiss"):
            engines.append(FaissIvf(kind, nlist, m))
        for e in engines:
            build = e.build(base)
            for nprobe in (4, 16, 64):
                r = recall(e.ids(queries, nprobe), truth)
                rows.append({"engine": e.name, "build_s": build, "nprobe": nprobe,
                             "recall": r, "qps1": qps_single(e, queries[:200], nprobe, "", 1.0),
                             "qps1000": qps_batch(e, queries, nprobe)})
            e.close()
            print(f"  {e.name} done", flush=True)
    return rows


def bench_filter(base, queries, ef_ladder: list[int]) -> list[dict[str, Any]]:
    """Filtered HNSW through the stack: ``tag < t`` keeps a known fraction of random rows."""
    n = base.shape[0]
    tags = np.random.default_rng([20261126, 7]).integers(0, 100_000, n)
    stack = Stack("HNSW", {"M": M, "efConstruction": EF_CONSTRUCTION}, "ef")
    stack.build(base, tags)
    rows = []
    single = queries[:200]
    for sel in SELECTIVITIES:
        flt = "" if sel == 1.0 else f"tag < {int(sel * 100_000)}"
        allow = None if sel == 1.0 else tags < int(sel * 100_000)
        truth = vecstore.knn(queries, base, K, "L2", allow=allow)[0]
        for ef in ef_ladder:
            r = recall(stack.ids(queries, ef, flt), truth)
            if r >= TARGET:
                break
        rows.append({"selectivity": sel, "ef": ef, "recall": r,
                     "qps1": qps_single(stack, single, ef, flt)})
        print(f"  filter {sel}: ef {ef} recall {r:.3f} {rows[-1]['qps1']:.0f} QPS", flush=True)
    stack.close()
    return rows


def table_hnsw(rows: list[dict[str, Any]]) -> str:
    out = ["| engine | build s | smallest ef | recall@10 | QPS 1/call | QPS all/call |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['engine']} | {r['build_s']:.1f} | {r['value']} | {r['recall']:.3f} | "
                   f"{r['qps1']:,.0f} | {r['qps1000']:,.0f} |")
    libs = [r for r in rows if not r["engine"].startswith("vecstore")]
    if libs:
        us = rows[0]
        best1 = max(libs, key=lambda r: r["qps1"])
        bestb = max(libs, key=lambda r: r["qps1000"])
        fastest = min(libs, key=lambda r: r["build_s"])
        out.append("")
        out.append(f"vecstore / best library: 1/call {us['qps1'] / best1['qps1']:.2f}x "
                   f"({best1['engine']}), all/call {us['qps1000'] / bestb['qps1000']:.2f}x "
                   f"({bestb['engine']}), build {us['build_s'] / fastest['build_s']:.2f}x of "
                   f"the fastest ({fastest['engine']})")
    return "\n".join(out)


def table_ivf(rows: list[dict[str, Any]]) -> str:
    out = ["| engine | build s | nprobe | recall@10 | QPS 1/call | QPS all/call |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['engine']} | {r['build_s']:.1f} | {r['nprobe']} | {r['recall']:.3f} | "
                   f"{r['qps1']:,.0f} | {r['qps1000']:,.0f} |")
    return "\n".join(out)


def table_filter(rows: list[dict[str, Any]]) -> str:
    out = ["| allowed | ef | recall@10 | QPS 1/call | vs unfiltered |",
           "|---:|---:|---:|---:|---:|"]
    base = rows[-1]["qps1"]
    for r in rows:
        out.append(f"| {r['selectivity']:.1%} | {r['ef']} | {r['recall']:.3f} | "
                   f"{r['qps1']:,.0f} | {r['qps1'] / base:.2f}x |")
    return "\n".join(out)
