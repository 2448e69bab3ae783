"""Scalar indexes: filter cost with and without an STL_SORT / INVERTED index, through MilvusClient.

Two collections hold the same ``--n`` rows (1M by default: an INT64 ``tag`` uniform in
[0, 100,000), a VARCHAR ``s`` of 10,000 distinct values, a 4-d vector), flushed into sealed
segments; one declares STL_SORT on ``tag`` and INVERTED on ``s``. Each measured call is a
``query(filter=..., output_fields=["count(*)"])`` with a constant not used before, so the
per-segment filter cache never answers and the index (or the scan) does the work. Reported per
filter shape: milliseconds per call without and with the index, and the speedup.

``python bench/bench_scalar_index.py [--n N] [--calls C]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np

from vecstore import DataType, MilvusClient

SHAPES = [("tag == {v}", "equality, ~0.001%"), ("tag < {v100}", "range, ~0.1%"),
          ("tag in [{v}, {v2}, {v3}]", "in-list of 3"), ("s == 'k{v4}'", "VARCHAR equality"),
          ("tag < {v10k}", "range, ~10%")]


def build(c: MilvusClient, name: str, n: int, indexed: bool) -> None:
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("s", DataType.VARCHAR, max_length=8)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    if indexed:
        idx.add_index("tag", index_type="STL_SORT")
        idx.add_index("s", index_type="INVERTED")
    c.create_collection(name, schema=schema, index_params=idx, consistency_level="Bounded")
    rng = np.random.default_rng(5)
    for start in range(0, n, 200_000):
        m = min(200_000, n - start)
        c.insert(name, {"id": np.arange(start, start + m), "tag": rng.integers(0, 100_000, m),
                        "s": [f"k{x:04d}" for x in rng.integers(0, 10_000, m)],
                        "v": rng.standard_normal((m, 4), dtype=np.float32)})
    c.flush(name)


def per_call(c: MilvusClient, name: str, shape: str, calls: int, salt: int) -> float:
    rng = np.random.default_rng(salt)
    texts = [shape.format(v=v, v2=v + 1, v3=v + 2, v4=f"{v % 10_000:04d}", v100=100 + v % 50,
                          v10k=10_000 + v % 500)
             for v in rng.choice(100_000, calls + 1, replace=False)]
    c.query(name, filter=texts[0], output_fields=["count(*)"])  # warm: builds the sorted column
    start = time.perf_counter()
    for t in texts[1:]:
        c.query(name, filter=t, output_fields=["count(*)"])
    return (time.perf_counter() - start) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    path = tempfile.mkdtemp(prefix="vecstore-scalar-")
    try:
        c = MilvusClient(f"{path}/db")
        build(c, "plain", args.n, False)
        build(c, "indexed", args.n, True)
        print(f"# {args.n:,} rows, {args.calls} calls per cell, each with a new constant")
        print("| filter | shape | scan ms | index ms | speedup |")
        print("|---|---|---:|---:|---:|")
        for i, (shape, label) in enumerate(SHAPES):
            scan = per_call(c, "plain", shape, args.calls, i)
            indexed = per_call(c, "indexed", shape, args.calls, i)
            print(f"| `{shape}` | {label} | {scan * 1e3:.2f} | {indexed * 1e3:.2f} | "
                  f"{scan / indexed:.1f}x |", flush=True)
        c.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
