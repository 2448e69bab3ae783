"""Indexes through the whole vecstore stack against the libraries used directly (ann-benchmarks
style): HNSW vs hnswlib / usearch / faiss, IVF_FLAT and IVF_PQ vs faiss, and filtered HNSW search
at several selectivities.

vecstore is measured as a user runs it: ``MilvusClient("./dir")``, rows inserted and flushed into
one sealed segment, ``create_index`` (timed: it returns once the segment's index is built), and
``client.search(...)`` (client, proxy, query node) with ``search_params={"params": {"ef": ...}}``
or ``{"nprobe": ...}``. The libraries are called directly on the same numpy matrix with the same
parameters (M=16, efConstruction=200; nlist, m), in the same run.

Data: ``--data clustered`` (seeded Gaussian clusters, 128 dims; ``--n`` rows, 100k by default)
or ``--data minilm`` (sentence embeddings of an offline text corpus, see ``embeddings.py``).

Script mode (``python bench/bench_indexes.py [--n N] [--data D] [--only hnsw,ivf,filter]
[--plot bench/indexes.png] [--json out.json]``) prints Markdown tables: per engine the build
time, the smallest ef (nprobe) reaching recall@10 >= 0.95 and the QPS there, one query per call
and 1,000 per call; the recall-QPS curve of every engine goes to the plot.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from typing import Any

import numpy as np

import benchutil
import vecstore
from bench_hnsw import (
    EF_CONSTRUCTION,
    EF_LADDER,
    Faiss,
    Hnswlib,
    M,
    Usearch,
)
from vecstore import DataType, MilvusClient

K = 10
TARGET = 0.95
NPROBE_LADDER = [1, 2, 4, 8, 16, 32, 64, 128]
SELECTIVITIES = [0.001, 0.01, 0.1, 0.5, 1.0]


def clustered(n: int, nq: int, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = benchutil.make_rng("indexes", n)
    clusters = max(10, min(300, n // 300))
    centers = rng.standard_normal((clusters, dim), dtype=np.float32) * 3

    def draw(count: int) -> np.ndarray:
        labels = rng.integers(0, clusters, count)
        return (centers[labels] + rng.standard_normal((count, dim), dtype=np.float32)
                ).astype(np.float32)

    return draw(n), draw(nq)


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K
                          for a, b in zip(ids, truth)]))


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


class Lib:
    """A library engine from bench_hnsw (build(base, threads); search(queries, ef) -> ids)."""

    def __init__(self, engine: Any):
        self.engine, self.name = engine, engine.name

    def build(self, base: np.ndarray) -> float:
        start = time.perf_counter()
        self.engine.build(base, 0)
        return time.perf_counter() - start

    def run(self, queries: np.ndarray, value: int, flt: str = "") -> Any:
        return self.engine.search(queries, value)

    def ids(self, queries: np.ndarray, value: int, flt: str = "") -> np.ndarray:
        return np.asarray(self.engine.search(queries, value), dtype=np.int64)

    def close(self) -> None:
        pass


class FaissIvf:
    """faiss IndexIVFFlat / IndexIVFPQ used directly."""

    def __init__(self, kind: str, nlist: int, m: int | None = None):
        self.kind, self.nlist, self.m = kind, nlist, m
        self.name = f"faiss {'IndexIVFFlat' if kind == 'IVF_FLAT' else 'IndexIVFPQ'}"

    def build(self, base: np.ndarray) -> float:
        import faiss
        faiss.omp_set_num_threads(benchutil.hardware_threads())
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
    n, start = 0, time.perf_counter()
    while True:
        for i in range(len(queries)):
            engine.run(queries[i:i + 1], value, flt)
        n += len(queries)
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


def bench_hnsw(base, queries, truth, curve: bool) -> list[dict[str, Any]]:
    engines: list[Any] = [Stack("HNSW", {"M": M, "efConstruction": EF_CONSTRUCTION}, "ef")]
    for cls, module in ((Hnswlib, "hnswlib"), (Usearch, "usearch.index"), (Faiss, "faiss")):
        try:
            __import__(module)
        except ImportError:
            continue
        engines.append(Lib(cls()))
    rows = []
    for e in engines:
        build = e.build(base)
        rows.append({"engine": e.name, "build_s": build,
                     **ladder_run(e, queries, truth, EF_LADDER, curve)})
        e.close()
        print(f"  {rows[-1]['engine']}: {rows[-1]['build_s']:.1f} s, ef {rows[-1]['value']}, "
              f"{rows[-1]['qps1']:.0f} / {rows[-1]['qps1000']:.0f} QPS", flush=True)
    return rows


def bench_ivf(base, queries, truth, nlist: int, m: int) -> list[dict[str, Any]]:
    rows = []
    for kind, params in (("IVF_FLAT", {"nlist": nlist}), ("IVF_PQ", {"nlist": nlist, "m": m})):
        for e in (Stack(kind, params, "nprobe"), FaissIvf(kind, nlist, m)):
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
    tags = benchutil.make_rng("filter-tags").integers(0, 100_000, n)
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
    out = ["| engine | build s | smallest ef | recall@10 | QPS 1/call | QPS 1,000/call |",
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
                   f"({best1['engine']}), 1,000/call {us['qps1000'] / bestb['qps1000']:.2f}x "
                   f"({bestb['engine']}), build {us['build_s'] / fastest['build_s']:.2f}x of "
                   f"the fastest ({fastest['engine']})")
    return "\n".join(out)


def table_ivf(rows: list[dict[str, Any]]) -> str:
    out = ["| engine | build s | nprobe | recall@10 | QPS 1/call | QPS 1,000/call |",
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


def plot(rows: list[dict[str, Any]], path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if r.get("curve"):
            pts = r["curve"]
            ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o", label=r["engine"])
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second (one query per call)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--nq", type=int, default=1_000)
    ap.add_argument("--data", choices=("clustered", "minilm"), default="clustered")
    ap.add_argument("--only", default="hnsw,ivf,filter")
    ap.add_argument("--plot", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--m", type=int, default=16)
    args = ap.parse_args()
    if args.data == "minilm":
        from embeddings import minilm_corpus
        base, queries = minilm_corpus(args.n, args.nq)
    else:
        base, queries = clustered(args.n, args.nq)
    truth = vecstore.knn(queries, base, K, "L2")[0]
    info = benchutil.machine_info()
    print(f"# {args.data} {base.shape[0]} x {base.shape[1]}, {args.nq} queries; "
          f"{info.get('cpu', '')}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    result: dict[str, Any] = {"n": base.shape[0], "dim": base.shape[1], "data": args.data}
    only = set(args.only.split(","))
    if "hnsw" in only:
        result["hnsw"] = bench_hnsw(base, queries, truth, curve=bool(args.plot))
        print(table_hnsw(result["hnsw"]))
        if args.plot:
            plot(result["hnsw"], args.plot, f"HNSW, {args.data} {base.shape[0]:,} x "
                 f"{base.shape[1]} (M={M}, efC={EF_CONSTRUCTION})")
    if "ivf" in only:
        result["ivf"] = bench_ivf(base, queries, truth, args.nlist, args.m)
        print(table_ivf(result["ivf"]))
    if "filter" in only:
        result["filter"] = bench_filter(base, queries, EF_LADDER)
        print(table_filter(result["filter"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=float)


if __name__ == "__main__":
    main()
