"""Prints a Markdown report of vecstore's exact-search performance against numpy and faiss.

Three comparisons, timed directly with ``time.perf_counter`` (best of N after one warm-up call):

1. single-query scan: ``vecstore.knn`` of one float32 query over 1M x 128 rows (k=10, 1 thread)
   vs numpy ``x.sum()`` reading the same bytes — the single-thread read-bandwidth reference;
2. batched k-NN, 1,000 x 100k x 128 float32, k=10, L2: vecstore vs numpy (BLAS matmul +
   argpartition) vs ``faiss.IndexFlatL2``, at 1 thread and at all cores, plus vecstore's float16,
   int8, IP and COSINE variants;
3. kernel throughput: one query vs 100k rows per kind x metric x available SIMD level, 1 thread.

The implementations being compared are timed in alternation, round by round, so that a burst of
load from elsewhere on a noisy machine hits all of them rather than whichever ran then.

Usage, from the repository root:

    python bench/report.py [--scale 1.0] [--repeat 5] [--json run1.json]
    python bench/report.py --merge run1.json run2.json   # best of several saved runs, per row

``--scale`` defaults to ``VECSTORE_BENCH_SCALE`` (1.0 = the sizes above). Timings are never
asserted; results are checked (recall against a float64 exact top-k is reported per row).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchutil  # noqa: E402
import vecstore  # noqa: E402
from vecstore import _core  # noqa: E402

try:
    import faiss
except ImportError:
    faiss = None


VARIANTS = (("float16", "L2"), ("int8", "L2"), ("float32", "IP"), ("float32", "COSINE"))


def timed_rounds(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, dict]:
    """Best wall time (and CPU time of that round) of each function, calls interleaved per round."""
    for fn in fns.values():
        fn()  # warm-up: page faults, allocator growth, thread-pool start
    best = {name: {"s": float("inf"), "cpu_s": 0.0} for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if wall < best[name]["s"]:
                best[name] = {"s": wall, "cpu_s": cpu}
    return best


def measure_scan(s: benchutil.Sizes, repeat: int) -> dict:
    query, rows = benchutil.scan_data(s)
    ids, _ = vecstore.knn(query, rows, s.k, "L2", threads=1)
    ref = benchutil.ref_distances(query[0], rows, "L2")
    want = np.argpartition(ref, s.k - 1)[: s.k]
    times = timed_rounds(
        {
            "vecstore": lambda: vecstore.knn(query, rows, s.k, "L2", threads=1),
            "numpy": rows.sum,
        },
        repeat,
    )
    return {
        "rows": rows.shape[0],
        "dim": rows.shape[1],
        "bytes": rows.nbytes,
        "times": times,
        "recall": benchutil.recall(ids, want[None, :]),
    }


def measure_knn(s: benchutil.Sizes, repeat: int) -> dict:
    data = benchutil.knn_data(s)
    queries, base = data["float32"]
    k, all_threads = s.k, benchutil.hardware_threads()
    results: dict[str, dict] = {}
    outputs: dict[str, np.ndarray] = {}

    def keep(name: str, fn: Callable[[], np.ndarray]) -> Callable[[], None]:
        def run() -> None:
            outputs[name] = fn()

        return run

    def numpy_knn() -> np.ndarray:
        d = (base * base).sum(1)[None, :] - 2 * queries @ base.T
        return np.argpartition(d, k, axis=1)[:, :k]

    index = None
    if faiss is not None:
        index = faiss.IndexFlatL2(base.shape[1])
        index.add(base)

    for threads in (1, all_threads):
        name = f"vecstore/{threads}"
        fns = {name: keep(name, lambda t=threads: vecstore.knn(queries, base, k, threads=t)[0])}
        if threads == all_threads or benchutil.blas_pinnable():
            fns[f"numpy/{threads}"] = keep(f"numpy/{threads}", numpy_knn)
        if index is not None:
            fns[f"faiss/{threads}"] = keep(f"faiss/{threads}", lambda: index.search(queries, k)[1])
        with benchutil.pinned_threads(threads):
            blas = benchutil.blas_threads()
            for name, t in timed_rounds(fns, repeat).items():
                results[name] = dict(t, threads=threads, blas_threads=blas)

    ref = benchutil.exact_topk(queries, base, k, "L2")
    for name, ids in outputs.items():
        results[name]["recall"] = benchutil.recall(ids, ref)

    variants: dict[str, dict] = {}
    for kind, metric in VARIANTS:
        q, b = data[kind]
        ref = benchutil.exact_topk(q, b, k, metric)
        for threads in (1, all_threads):
            name = f"{kind}-{metric}/{threads}"
            fns = {name: lambda q=q, b=b, m=metric, t=threads: vecstore.knn(q, b, k, m, threads=t)}
            variants[name] = dict(timed_rounds(fns, repeat)[name], threads=threads)
            ids = vecstore.knn(q, b, k, metric, threads=threads)[0]
            variants[name]["recall"] = benchutil.recall(ids, ref)
    return {
        "nq": queries.shape[0],
        "n": base.shape[0],
        "dim": base.shape[1],
        "k": k,
        "main": results,
        "variants": variants,
    }


def measure_kernels(s: benchutil.Sizes, repeat: int) -> dict:
    before = _core.simd_level()
    rows_out: dict[str, dict] = {}
    try:
        for kind in benchutil.KINDS:
            query, rows = benchutil.distance_data(s, kind)
            for metric in benchutil.metrics_for(kind):
                fns = {}
                for level in _core.available_simd_levels():
                    # Switching the level is process-wide; doing it inside the timed function keeps
                    # the levels interleaved like everything else (the switch costs nanoseconds).
                    def run(level=level, metric=metric, query=query, rows=rows):
                        vecstore.set_simd_level(level)
                        return vecstore.cdist(query, rows, metric, threads=1)

                    fns[level] = run
                for level, t in timed_rounds(fns, repeat).items():
                    rows_out[f"{kind}/{metric}/{level}"] = dict(
                        t,
                        kind=kind,
                        metric=metric,
                        level=level,
                        rows=rows.shape[0],
                        bytes=rows.nbytes,
                    )
    finally:
        vecstore.set_simd_level(before)
    return rows_out


def merge(runs: list[dict]) -> dict:
    """Per-row best of several runs (rows are keyed identically in each)."""
    out = json.loads(json.dumps(runs[0]))

    def best(dst: dict, others: list[dict]) -> None:
        for key, row in dst.items():
            for other in others:
                cand = other.get(key)
                if cand is not None and cand["s"] < row["s"]:
                    dst[key] = row = dict(cand)

    best(out["scan"]["times"], [r["scan"]["times"] for r in runs[1:]])
    best(out["knn"]["main"], [r["knn"]["main"] for r in runs[1:]])
    best(out["knn"]["variants"], [r["knn"]["variants"] for r in runs[1:]])
    best(out["kernels"], [r["kernels"] for r in runs[1:]])
    out["runs"] = len(runs)
    out["machine"]["date"] = max(r["machine"]["date"] for r in runs)
    return out


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}" if seconds >= 0.01 else f"{seconds * 1e3:,.3f}"


def at(threads: str) -> str:
    return f"at {threads} thread" + ("" if threads == "1" else "s")


def render(r: dict) -> str:
    lines: list[str] = []
    add = lines.append
    m = r["machine"]
    add(f"### Machine ({m['date']})\n")
    add("| | |\n|---|---|")
    for key, value in m.items():
        add(f"| {key} | {value} |")
    runs = r.get("runs", 1)
    add(
        f"\nscale {r['scale']}; per row the best of {r['repeat']} timed calls (batched k-NN) or "
        f"{4 * r['repeat']} (scan, kernels) after one warm-up call"
        + (f"; then the best of {runs} runs" if runs > 1 else "")
        + ".\n"
    )

    sc = r["scan"]
    t_vec, t_np = sc["times"]["vecstore"]["s"], sc["times"]["numpy"]["s"]
    add(
        f"### Single-query scan: 1 x {sc['rows']:,} x {sc['dim']} float32 "
        f"({sc['bytes'] / 1e6:,.0f} MB), 1 thread\n"
    )
    add("| implementation | time (ms) | GB/s | bandwidth vs numpy |")
    add("|---|---:|---:|---:|")
    add(
        f"| vecstore.knn(k=10, threads=1) | {fmt_ms(t_vec)} | {sc['bytes'] / t_vec / 1e9:.2f} | "
        f"{t_np / t_vec:.0%} |"
    )
    add(f"| numpy x.sum() | {fmt_ms(t_np)} | {sc['bytes'] / t_np / 1e9:.2f} | 100% |")
    add(f"\nvecstore's top-10 vs float64 reference: recall {sc['recall']:.3f}.\n")

    kn = r["knn"]
    main = kn["main"]
    add(
        f"### Batched k-NN: {kn['nq']:,} queries x {kn['n']:,} x {kn['dim']} float32, "
        f"k={kn['k']}, L2\n"
    )
    add(
        "| implementation | threads | time (ms) | CPU/wall | queries/s | recall@10 | "
        "time vs vecstore (same threads) |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in main.items():
        impl, threads = name.split("/")
        base = main[f"vecstore/{threads}"]["s"]
        label = {
            "vecstore": "vecstore.knn",
            "numpy": f"numpy matmul + argpartition (BLAS threads {row.get('blas_threads')})",
            "faiss": "faiss IndexFlatL2.search",
        }[impl]
        add(
            f"| {label} | {threads} | {fmt_ms(row['s'])} | {row['cpu_s'] / row['s']:.2f} | "
            f"{kn['nq'] / row['s']:,.0f} | {row.get('recall', float('nan')):.4f} | "
            f"{row['s'] / base:.2f}x |"
        )
    add(
        "\nCPU/wall is process CPU time over wall time for the best call: the cores actually "
        "used.\n"
    )
    add("| vecstore variant | threads | time (ms) | queries/s | recall@10 |")
    add("|---|---:|---:|---:|---:|")
    for name, row in kn["variants"].items():
        variant, threads = name.split("/")
        add(
            f"| {variant} | {threads} | {fmt_ms(row['s'])} | {kn['nq'] / row['s']:,.0f} | "
            f"{row['recall']:.4f} |"
        )

    ke = r["kernels"]
    first = next(iter(ke.values()))
    add(
        f"\n### Kernel throughput: 1 query x {first['rows']:,} rows "
        "(128 dims; binary 1024 bits), 1 thread, vecstore.cdist\n"
    )
    add("| kind | metric | SIMD | time (us) | Mrows/s | GB/s | speedup vs serial |")
    add("|---|---|---|---:|---:|---:|---:|")
    for row in ke.values():
        serial = ke.get(f"{row['kind']}/{row['metric']}/serial")
        speed = f"{serial['s'] / row['s']:.2f}x" if serial else "n/a"
        mrows, gbps = row["rows"] / row["s"] / 1e6, row["bytes"] / row["s"] / 1e9
        add(
            f"| {row['kind']} | {row['metric']} | {row['level']} | {row['s'] * 1e6:,.1f} | "
            f"{mrows:,.1f} | {gbps:.2f} | {speed} |"
        )

    add("\n### Criteria\n")
    if r["scale"] != 1.0:
        add(
            f"(measured at scale {r['scale']}: the targets are defined for scale 1.0, so the "
            "verdicts below say little)\n"
        )
    frac = t_np / t_vec
    add(
        f"- (a) single-vector scan reaches {frac:.0%} of numpy's single-thread read bandwidth "
        f"({sc['bytes'] / t_vec / 1e9:.2f} vs {sc['bytes'] / t_np / 1e9:.2f} GB/s; target >= 80%): "
        f"{'met' if frac >= 0.8 else 'MISSED'}."
    )
    for threads in sorted({name.split("/")[1] for name in main}, key=int):
        vec = main[f"vecstore/{threads}"]["s"]
        np_row = main.get(f"numpy/{threads}")
        if np_row:
            ratio = np_row["s"] / vec
            add(
                f"- (b) batched k-NN {at(threads)}: numpy/vecstore time = {ratio:.2f} "
                f"({fmt_ms(np_row['s'])} vs {fmt_ms(vec)} ms; target >= 1.0): "
                f"{'met' if ratio >= 1.0 else 'MISSED'}."
            )
        else:
            add(
                f"- (b) batched k-NN {at(threads)}: numpy's BLAS could not be pinned; not measured."
            )
    for threads in sorted({name.split("/")[1] for name in main}, key=int):
        vec = main[f"vecstore/{threads}"]["s"]
        fa = main.get(f"faiss/{threads}")
        if fa:
            ratio = vec / fa["s"]
            add(
                f"- (c) vs faiss IndexFlatL2 {at(threads)}: vecstore/faiss time = "
                f"{ratio:.2f} ({fmt_ms(vec)} vs {fmt_ms(fa['s'])} ms; target <= 1.5): "
                f"{'met' if ratio <= 1.5 else 'MISSED'}."
            )
        else:
            add(f"- (c) vs faiss {at(threads)}: faiss not installed; not measured.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="size factor (default: VECSTORE_BENCH_SCALE or 1.0)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="timed calls per batched k-NN row; scan and kernel rows, which take "
        "milliseconds, get 4x as many (default 5)",
    )
    parser.add_argument("--json", type=Path, help="also save the raw timings here")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="render the per-row best of saved --json runs instead of measuring",
    )
    args = parser.parse_args()

    if args.merge:
        print(render(merge([json.loads(p.read_text()) for p in args.merge])))
        return 0

    s = benchutil.sizes(args.scale)
    started = time.perf_counter()
    result = {
        "machine": benchutil.machine_info(),
        "scale": s.scale,
        "repeat": args.repeat,
        "scan": measure_scan(s, 4 * args.repeat),
        "knn": measure_knn(s, args.repeat),
        "kernels": measure_kernels(s, 4 * args.repeat),
    }
    result["elapsed_s"] = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(render(result))
    print(f"\n(measured in {result['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
