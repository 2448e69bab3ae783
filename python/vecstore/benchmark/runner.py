"""``vecstore bench``: the benchmark users run, vecstore beside the libraries and databases they
would otherwise use, every system in the same run on the same data.

Parts (``--only``, comma-separated; all by default):

- ``ingest``: durable inserts, rows/s, vs Milvus Lite, LanceDB, Chroma and the disk's own
  write+fdatasync ceiling (:mod:`vecstore.benchmark.ingest`; issue 7's bars);
- ``hnsw``: vecstore's HNSW through MilvusClient vs hnswlib, usearch, faiss used directly
  (:mod:`vecstore.benchmark.indexes`);
- ``peers``: HNSW through vecstore vs Milvus Lite, LanceDB, Chroma
  (:mod:`vecstore.benchmark.peer_search`), on the first ``--peer-n`` rows;
- ``ivf``: IVF_FLAT / IVF_PQ vs faiss; ``filter``: filtered HNSW at 0.1%..100% allowed rows.

``--quick`` picks sizes that finish in a few minutes on 2 cores (each size can still be set);
without it the defaults are the full run (1M x 128 ingestion, 100k-row searches). Anything not
installed is skipped with a line saying so. Output: the tables on stdout, and under ``--out``
``results.json``, ``results.md`` and PNG plots (recall-QPS curves, ingestion bars).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import vecstore
from vecstore.benchmark import indexes, ingest, peer_search, report

PARTS = ("ingest", "hnsw", "peers", "ivf", "filter")
FULL = {"n": 100_000, "nq": 1_000, "peer_n": 100_000, "ingest_n": 1_000_000, "budget": 60.0,
        "nlist": 1024}
QUICK = {"n": 20_000, "nq": 200, "peer_n": 10_000, "ingest_n": 100_000, "budget": 10.0,
         "nlist": 128}
QUICK_LADDER = [10, 16, 24, 48, 96, 192]
PACKAGES = ("pymilvus", "milvus-lite", "lancedb", "chromadb", "hnswlib", "usearch", "faiss-cpu")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, a few minutes on 2 cores (100k-row ingestion, 20k-row "
                         "search, 10k rows for the database peers' search)")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated parts: {', '.join(PARTS)} (default: all)")
    ap.add_argument("--n", type=int, help="search base rows (default 100,000; quick 20,000)")
    ap.add_argument("--nq", type=int, help="queries (default 1,000; quick 200)")
    ap.add_argument("--dim", type=int, default=128,
                    help="dimension of generated data (default 128; minilm is 384)")
    ap.add_argument("--data", choices=("clustered", "minilm"), default="clustered",
                    help="search data: generated clusters, or MiniLM sentence embeddings "
                         "(384-d; ingestion always uses generated rows)")
    ap.add_argument("--peer-n", type=int,
                    help="rows for the database peers' search (default min(n, 100,000); "
                         "quick 10,000)")
    ap.add_argument("--ingest-n", type=int,
                    help="rows to ingest (default 1,000,000; quick 100,000)")
    ap.add_argument("--budget", type=float,
                    help="seconds of inserting after which Milvus Lite and Chroma stop "
                         "(default 60; quick 10)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="ingestion rounds, interleaved; each system keeps its best (default 1)")
    ap.add_argument("--dir", default=None,
                    help="parent directory for the ingestion databases and the disk test "
                         "(default: the temp dir); put it on the disk you care about")
    ap.add_argument("--out", default="vecstore-bench",
                    help="directory for results.json, results.md and plots "
                         "(default ./vecstore-bench; '' for none)")
    ap.add_argument("--plot", default="", help="also write the HNSW recall-QPS plot here (PNG)")
    ap.add_argument("--json", default="", help="also write the results here (JSON)")
    ap.add_argument("--nlist", type=int, help="IVF lists (default 1024; quick 128)")
    ap.add_argument("--m", type=int, default=16, help="IVF_PQ sub-quantizers (default 16)")


def settle(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes: explicit options, else the quick or full preset."""
    preset = QUICK if args.quick else FULL
    sizes = {k: getattr(args, k) if getattr(args, k) is not None else v
             for k, v in preset.items()}
    if not args.quick and args.peer_n is None:
        sizes["peer_n"] = min(sizes["n"], FULL["peer_n"])
    sizes["peer_n"] = min(sizes["peer_n"], sizes["n"])
    return sizes


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "vecstore": vecstore.__version__, "simd": vecstore.simd_level(),
            "versions": versions}


def load_data(args: argparse.Namespace, n: int, nq: int) -> tuple[Any, Any]:
    if args.data == "minilm":
        from vecstore.benchmark import embeddings

        # The corpus (the interpreter's stdlib docstrings, offline) has ~20k sentences.
        have = len(embeddings.stdlib_sentences(embeddings.DEFAULT_CACHE))
        if n + nq > have:
            print(f"  the MiniLM corpus has {have:,} sentences: using n={have - nq:,}, "
                  f"not {n:,}", flush=True)
            n = have - nq
        print("  (MiniLM vectors are computed once, minutes on 2 cores, then cached)",
              flush=True)
        return embeddings.minilm_corpus(n, nq)
    return indexes.clustered(n, nq, args.dim)


def run(args: argparse.Namespace) -> int:
    sizes = settle(args)
    only = [p for p in args.only.split(",") if p]
    unknown = set(only) - set(PARTS)
    if unknown:
        raise SystemExit(f"vecstore bench: unknown part(s) {sorted(unknown)}; use {PARTS}")
    out = Path(args.out) if args.out else None
    curve = bool(args.plot or out)
    ladder = QUICK_LADDER if args.quick else indexes.EF_LADDER
    meta = machine()
    result: dict[str, Any] = {"meta": meta, "quick": args.quick, "sizes": sizes,
                              "data": args.data, "parts": only}
    print(f"# vecstore bench{' --quick' if args.quick else ''}: {meta['cpu']}, {meta['cpus']} "
          f"CPUs, SIMD {meta['simd']}, {meta['date']}", flush=True)
    sections: list[str] = []
    if "ingest" in only:
        print(f"## ingestion, {sizes['ingest_n']:,} x {args.dim}", flush=True)
        result["ingest"] = ingest.run(sizes["ingest_n"], args.dim, sizes["budget"], args.dir,
                                      repeat=args.repeat)
        sections.append("## Ingestion\n\n" + ingest.table(result["ingest"]))
        print(sections[-1], flush=True)
    if set(only) & {"hnsw", "peers", "ivf", "filter"}:
        base, queries = load_data(args, sizes["n"], sizes["nq"])
        truth = vecstore.knn(queries, base, indexes.K, "L2")[0]
        data = (f"{args.data} {base.shape[0]:,} x {base.shape[1]}, {len(queries):,} queries")
        result.update(n=int(base.shape[0]), dim=int(base.shape[1]))
        if "hnsw" in only:
            print(f"## HNSW vs libraries, {data}", flush=True)
            result["hnsw"] = indexes.bench_hnsw(base, queries, truth, curve, ladder)
            sections.append(f"## HNSW: vecstore (whole stack) vs libraries, {data}\n\n"
                            + indexes.table_hnsw(result["hnsw"]))
            print(sections[-1], flush=True)
        if "peers" in only:
            pn = min(sizes["peer_n"], int(base.shape[0]))
            print(f"## HNSW vs databases, first {pn:,} rows", flush=True)
            ptruth = truth if pn == base.shape[0] else \
                vecstore.knn(queries, base[:pn], indexes.K, "L2")[0]
            result["peers"] = peer_search.bench_peers(base[:pn], queries, ptruth, curve, ladder)
            sections.append(f"## HNSW: vecstore vs databases, {args.data} {pn:,} x "
                            f"{base.shape[1]}\n\n" + peer_search.table(result["peers"]))
            print(sections[-1], flush=True)
        if "ivf" in only:
            m = math.gcd(args.m, base.shape[1])  # IVF_PQ needs m to divide dim
            print(f"## IVF vs faiss, nlist {sizes['nlist']}, m {m}", flush=True)
            result["ivf"] = indexes.bench_ivf(base, queries, truth, sizes["nlist"], m)
            sections.append(f"## IVF_FLAT / IVF_PQ vs faiss, {data}, nlist={sizes['nlist']}, "
                            f"m={m}\n\n" + indexes.table_ivf(result["ivf"]))
            print(sections[-1], flush=True)
        if "filter" in only:
            print("## filtered HNSW", flush=True)
            result["filter"] = indexes.bench_filter(base, queries, ladder)
            sections.append(f"## Filtered HNSW through vecstore, {data}\n\n"
                            + indexes.table_filter(result["filter"]))
            print(sections[-1], flush=True)
    summary = report.summary(result)
    print("\n" + summary, flush=True)
    if out is not None:
        report.write(result, out, [summary] + sections)
        print(f"\nwrote {out}/results.json, {out}/results.md and plots", flush=True)
    if args.plot and result.get("hnsw"):
        report.plot_hnsw(result, args.plot)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=float)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vecstore bench", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))
