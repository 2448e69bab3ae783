"""The ``vecstore`` command line (also ``python -m vecstore``).

Commands:
    demo    index a generated, clustered data set and answer queries with exact k-NN, printing
            recall against a float64 numpy oracle and the speed next to numpy's matmul+argpartition.
    info    version, SIMD level, CPU features and threads.
    serve   serve a data directory over Milvus's gRPC protocol (pymilvus connects to it).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import vecstore
from vecstore import _core


def clustered(rng: np.random.Generator, n: int, dim: int, clusters: int) -> np.ndarray:
    """n float32 vectors around `clusters` random centres (a stand-in for real embeddings)."""
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) * 4
    labels = rng.integers(0, clusters, n)
    return centres[labels] + rng.standard_normal((n, dim)).astype(np.float32)


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cmd_demo(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    print(f"vecstore {vecstore.__version__}: SIMD level {vecstore.simd_level()}, "
          f"{_core.hardware_threads()} hardware threads")
    print(f"generating {args.n:,} x {args.dim} float32 vectors in {args.clusters} clusters "
          f"(seed {args.seed}) and {args.queries:,} queries ...")
    base = clustered(rng, args.n, args.dim, args.clusters)
    queries = base[rng.choice(args.n, args.queries, replace=False)]
    queries = queries + 0.1 * rng.standard_normal(queries.shape).astype(np.float32)

    ids, dist = vecstore.knn(queries, base, args.k, args.metric, threads=args.threads)
    batch_s = best_of(lambda: vecstore.knn(queries, base, args.k, args.metric,
                                           threads=args.threads), 2)
    single = queries[: min(50, args.queries)]
    single_s = best_of(lambda: [vecstore.knn(q[None], base, args.k, args.metric,
                                             threads=args.threads) for q in single], 1)

    # Oracle: float64 brute force over a sample of the queries.
    sample = np.arange(min(args.check, args.queries))
    q64, b64 = queries[sample].astype(np.float64), base.astype(np.float64)
    if args.metric.upper() == "L2":
        d = (q64**2).sum(1)[:, None] + (b64**2).sum(1)[None, :] - 2 * q64 @ b64.T
    else:
        d = -(q64 @ b64.T)
        if args.metric.upper() == "COSINE":
            d /= np.linalg.norm(q64, axis=1)[:, None] * np.linalg.norm(b64, axis=1)[None, :]
    truth = np.argsort(d, axis=1)[:, : args.k]
    hits = sum(len(set(ids[i]) & set(truth[j])) for j, i in enumerate(sample))
    recall = hits / (len(sample) * args.k)

    def numpy_knn():
        if args.metric.upper() == "L2":
            dd = (base * base).sum(1)[None, :] - 2 * queries @ base.T
        else:
            dd = -(queries @ base.T)
        return np.argpartition(dd, args.k, axis=1)[:, : args.k]

    numpy_s = best_of(numpy_knn, 1)
    print(f"\nexact {args.metric.upper()} k-NN, k={args.k}, threads={args.threads or 'all'}")
    print(f"  recall@{args.k} vs float64 oracle ({len(sample)} queries): {recall:.4f}")
    print(f"  batch of {args.queries:,} queries: {batch_s * 1e3:8.1f} ms  "
          f"({args.queries / batch_s:,.0f} queries/s)")
    print(f"  one query at a time:   {single_s / len(single) * 1e3:8.2f} ms per query  "
          f"({len(single) / single_s:,.0f} queries/s)")
    print(f"  numpy matmul+argpartition, same batch: {numpy_s * 1e3:8.1f} ms  "
          f"(vecstore is {numpy_s / batch_s:.1f}x faster)")
    print(f"  first query's neighbours: {ids[0][:5].tolist()}, "
          f"distances {[round(float(v), 3) for v in dist[0][:5]]}")
    return 0 if recall >= 0.999 else 1


def cmd_info(args: argparse.Namespace) -> int:
    print(f"vecstore {vecstore.__version__}")
    levels = ", ".join(_core.available_simd_levels())
    print(f"simd level: {vecstore.simd_level()} (available: {levels})")
    extra = _core.simd_features()
    print(f"extension kernels: {extra or 'none'}")
    feats = [k for k, v in _core.cpu_features().items() if v]
    print(f"cpu features: {', '.join(feats) or 'none detected'}")
    print(f"hardware threads: {_core.hardware_threads()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vecstore", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="index generated vectors and answer queries")
    d.add_argument("--n", type=int, default=200_000, help="base vectors (default 200,000)")
    d.add_argument("--dim", type=int, default=128)
    d.add_argument("--queries", type=int, default=1_000)
    d.add_argument("--k", type=int, default=10)
    d.add_argument("--metric", default="L2", choices=["L2", "IP", "COSINE", "l2", "ip", "cosine"])
    d.add_argument("--clusters", type=int, default=100)
    d.add_argument("--threads", type=int, default=0, help="0 = all cores")
    d.add_argument("--check", type=int, default=100, help="queries checked against the oracle")
    d.add_argument("--seed", type=int, default=42)
    d.set_defaults(fn=cmd_demo)
    i = sub.add_parser("info", help="version, SIMD level and CPU features")
    i.set_defaults(fn=cmd_info)
    b = sub.add_parser("bench", help="vecstore vs Milvus Lite, LanceDB, Chroma, hnswlib, usearch, "
                                     "faiss: ingestion rows/s, recall@10 and QPS (--quick: "
                                     "a few minutes)")
    from vecstore.benchmark import runner

    runner.add_arguments(b)
    b.set_defaults(fn=runner.run)
    from vecstore.bulk import cli as bulk_cli

    bulk_cli.register(sub)  # import, export
    from vecstore.server import serve

    serve.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except vecstore.VecstoreError as e:
        print(f"vecstore: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
