"""HNSW: build time and search QPS of vecstore's HnswIndex against hnswlib, usearch and faiss.

Data: ``n`` clustered float32 vectors of 128 dims (a few hundred Gaussian clusters), queries drawn
the same way; ground truth from exact ``vecstore.knn``. Every engine uses M=16,
efConstruction=200, L2. ``n`` is 100k at ``VECSTORE_BENCH_SCALE=1`` (1,000 at the CI smoke scale
of 0.01). The comparators are used only where installed. vecstore appears twice: HNSW (SQ8 codes
for the walk, exact float32 re-rank of the ef candidates: exact values) and HNSW_SQ with
sq_type=SQ8, refine=False (Milvus's default: values from the codes).

pytest-benchmark mode (``python -m pytest bench/bench_hnsw.py --benchmark-group-by=group``):
groups ``hnsw-build`` and ``hnsw-search-1`` / ``hnsw-search-batch`` (one query per call, a batch
per call), each engine at a fixed ef, asserting recall@10 >= 0.9.

Script mode (``python bench/bench_hnsw.py [--scale S] [--threads T]``): for each engine the build
time, then the smallest ef of a ladder reaching recall@10 >= 0.95, and the QPS at that ef with one
query per call and with 1,000 queries per call; printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytest

import benchutil
import vecstore
from vecstore.index.hnsw import HnswIndex

DIM = 128
M = 16
EF_CONSTRUCTION = 200
K = 10
EF_LADDER = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
TARGET_RECALL = 0.95


def make_data(scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = max(1_000, round(100_000 * scale))
    nq = max(100, round(1_000 * min(1.0, scale * 10)))
    clusters = max(10, min(300, n // 300))
    rng = benchutil.make_rng("hnsw")
    centers = rng.standard_normal((clusters, DIM), dtype=np.float32) * 3
    def draw(count: int) -> np.ndarray:
        labels = rng.integers(0, clusters, count)
        noise = rng.standard_normal((count, DIM), dtype=np.float32)
        return (centers[labels] + noise).astype(np.float32)
    base, queries = draw(n), draw(nq)
    truth = vecstore.knn(queries, base, K, "L2")[0]
    return base, queries, truth


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, truth)]))


# ---- engines: build(base, threads) -> searcher(queries, ef) -> ids -----------------------------

class Vecstore:
    name = "vecstore HnswIndex"

    def build(self, base, threads):
        self.index = HnswIndex.build(base, "L2", M=M, ef_construction=EF_CONSTRUCTION,
                                     threads=threads)
        self.threads = threads

    def search(self, queries, ef):
        return self.index.search(queries, K, ef=max(ef, K), threads=self.threads)[0]


class VecstoreSQ(Vecstore):
    name = "vecstore HNSW_SQ (SQ8, no refine)"

    def build(self, base, threads):
        self.index = HnswIndex.build(base, "L2", M=M, ef_construction=EF_CONSTRUCTION,
                                     threads=threads, sq_type="SQ8")
        self.threads = threads


class Hnswlib:
    name = "hnswlib"

    def build(self, base, threads):
        import hnswlib
        self.index = hnswlib.Index(space="l2", dim=base.shape[1])
        self.index.init_index(max_elements=base.shape[0], M=M, ef_construction=EF_CONSTRUCTION,
                              random_seed=0)
        self.index.set_num_threads(threads or benchutil.hardware_threads())
        self.index.add_items(base, np.arange(base.shape[0]))

    def search(self, queries, ef):
        self.index.set_ef(max(ef, K))
        return self.index.knn_query(queries, k=K)[0].astype(np.int64)


class Usearch:
    name = "usearch"

    def build(self, base, threads):
        from usearch.index import Index
        self.index = Index(ndim=base.shape[1], metric="l2sq", dtype="f32", connectivity=M,
                           expansion_add=EF_CONSTRUCTION)
        self.threads = threads
        self.index.add(np.arange(base.shape[0]), base, threads=threads)

    def search(self, queries, ef):
        self.index.expansion_search = max(ef, K)
        return np.asarray(self.index.search(queries, K, threads=self.threads).keys,
                          dtype=np.int64).reshape(len(queries), K)


class Faiss:
    name = "faiss IndexHNSWFlat"

    def build(self, base, threads):
        import faiss
        faiss.omp_set_num_threads(threads or benchutil.hardware_threads())
        self.faiss = faiss
        self.index = faiss.IndexHNSWFlat(base.shape[1], M)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(base)

    def search(self, queries, ef):
        params = self.faiss.SearchParametersHNSW(efSearch=max(ef, K))
        return self.index.search(queries, K, params=params)[1]


def available_engines() -> list:
    engines: list = [Vecstore(), VecstoreSQ()]
    for cls, module in ((Hnswlib, "hnswlib"), (Usearch, "usearch.index"), (Faiss, "faiss")):
        try:
            __import__(module)
        except ImportError:
            continue
        engines.append(cls())
    return engines


def smallest_ef(engine, queries, truth) -> tuple[int, float]:
    r = 0.0
    for ef in EF_LADDER:
        r = recall(engine.search(queries, ef), truth)
        if r >= TARGET_RECALL:
            return ef, r
    return EF_LADDER[-1], r


def qps_single(engine, queries, ef, seconds: float = 1.5) -> float:
    n, start = 0, time.perf_counter()
    while True:
        for q in queries:
            engine.search(q[None], ef)
        n += len(queries)
        elapsed = time.perf_counter() - start
        if elapsed > seconds:
            return n / elapsed


def qps_batch(engine, queries, ef, repeat: int = 3) -> float:
    engine.search(queries, ef)
    best = min(_timed(lambda: engine.search(queries, ef)) for _ in range(repeat))
    return len(queries) / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---- pytest-benchmark ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hnsw_data(sizes):
    return make_data(sizes.scale)


@pytest.fixture(scope="module")
def built(hnsw_data):
    base = hnsw_data[0]
    engines = available_engines()
    for e in engines:
        e.build(base, 0)
    return {e.name: e for e in engines}


ENGINE_NAMES = [e.name for e in available_engines()]


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_hnsw_build(benchmark, hnsw_data, name):
    base = hnsw_data[0]
    engine = next(e for e in available_engines() if e.name == name)
    benchmark.group = "hnsw-build"
    benchutil.describe(benchmark, dim=DIM, n=base.shape[0], nq=0, k=None, kind="float32",
                       metric="L2", threads=benchutil.hardware_threads(), impl=name, M=M,
                       ef_construction=EF_CONSTRUCTION)
    benchmark.pedantic(engine.build, args=(base, 0), rounds=1, iterations=1)
    assert recall(engine.search(hnsw_data[1], 64), hnsw_data[2]) >= 0.9


@pytest.mark.parametrize("batch", [1, 1000], ids=["one-query", "batch"])
@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_hnsw_search(benchmark, hnsw_data, built, name, batch):
    _, queries, truth = hnsw_data
    engine = built[name]
    q = queries[:batch]
    benchmark.group = f"hnsw-search-{'1' if batch == 1 else 'batch'}"
    benchutil.describe(benchmark, dim=DIM, n=hnsw_data[0].shape[0], nq=len(q), k=K,
                       kind="float32", metric="L2", threads=benchutil.hardware_threads(),
                       impl=name, ef=64, M=M)
    ids = benchmark(engine.search, q, 64)
    assert recall(ids, truth[: len(q)]) >= 0.9


# ---- script mode -----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=None, help="default: VECSTORE_BENCH_SCALE")
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--only-vecstore", action="store_true", help="skip the other engines")
    parser.add_argument("--skip-sq", action="store_true", help="skip the HNSW_SQ row")
    args = parser.parse_args()
    scale = benchutil.env_scale() if args.scale is None else args.scale
    base, queries, truth = make_data(scale)
    print(f"{base.shape[0]} x {DIM} clustered, {len(queries)} queries, M={M}, "
          f"efConstruction={EF_CONSTRUCTION}, k={K}, threads={args.threads or 'all'}, "
          f"SIMD {vecstore.simd_level()}, {benchutil.cpu_model()}")
    print()
    print("| engine | build s | smallest ef (recall@10 >= 0.95) | recall@10 | QPS 1/call | "
          "QPS 1,000/call |")
    print("|---|---|---|---|---|---|")
    ours, ours_ef = None, EF_LADDER[-1]
    for engine in available_engines():
        if args.only_vecstore and not isinstance(engine, Vecstore):
            continue
        if args.skip_sq and isinstance(engine, VecstoreSQ):
            continue
        start = time.perf_counter()
        engine.build(base, args.threads)
        build_s = time.perf_counter() - start
        ef, r = smallest_ef(engine, queries, truth)
        single = qps_single(engine, queries[:200], ef)
        batch = qps_batch(engine, queries, ef)
        print(f"| {engine.name} | {build_s:.2f} | {ef} | {r:.3f} | {single:,.0f} | "
              f"{batch:,.0f} |", flush=True)
        if type(engine) is Vecstore:
            ours, ours_ef = engine, ef
        else:
            del engine.index
    if ours is not None:
        filtered_table(ours.index, base, queries, ours_ef, args.threads)


def filtered_table(index: HnswIndex, base, queries, ef: int, threads: int) -> None:
    """vecstore with an allow-set: recall@10 against exact filtered k-NN and batch QPS."""
    print()
    print(f"Filtered search (vecstore, ef={ef}, {len(queries):,} queries per call):")
    print()
    print("| allowed | path | recall@10 | QPS (batch) |")
    print("|---|---|---|---|")
    rng = benchutil.make_rng("hnsw-allow")
    for fraction in (0.001, 0.01, 0.1, 0.5, 1.0):
        allow = rng.random(base.shape[0]) < fraction
        truth = vecstore.knn(queries, base, K, "L2", allow=allow)[0]
        stats: dict = {}
        ids = index.search(queries, K, ef=ef, allow=allow, threads=threads, stats=stats)[0]
        path = "graph" if stats["graph_queries"] else "exact scan"
        best = min(_timed(lambda a=allow: index.search(queries, K, ef=ef, allow=a,
                                                        threads=threads)) for _ in range(3))
        r = float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum())
                           for a, b in zip(ids, truth)]))
        print(f"| {fraction:.1%} | {path} | {r:.3f} | {len(queries) / best:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
