"""Distance-kernel throughput: one query against ``dist_n`` rows (100k at full size), one thread.

One benchmark per kind (float32, float16, bfloat16, int8: 128 dims; binary: 1024 bits) x metric x
available SIMD level, through ``vecstore.cdist`` with a single query, which runs the per-query
scan kernels (no packing, no top-k). Groups are per kind, so each table compares the metrics and
SIMD levels of one kind. ``extra_info`` holds the bytes read per call and the best round's GB/s
and rows/s.

    python -m pytest bench/bench_distance.py --benchmark-group-by=group
"""

from __future__ import annotations

import numpy as np
import pytest

import benchutil
import vecstore

CASES = [(kind, metric) for kind in benchutil.KINDS for metric in benchutil.metrics_for(kind)]


@pytest.mark.parametrize("kind,metric", CASES, ids=[f"{k}-{m}" for k, m in CASES])
def test_kernel_throughput(benchmark, simd, distance_data, distance_reference, kind, metric):
    query, rows = distance_data(kind)
    want, tol = distance_reference(kind, metric)
    benchmark.group = f"distance-{kind}"
    benchutil.describe(
        benchmark,
        dim=query.shape[1] * (8 if kind == "binary" else 1),
        n=rows.shape[0],
        nq=1,
        k=None,
        kind=kind,
        metric=metric,
        threads=1,
    )

    def run():
        return vecstore.cdist(query, rows, metric, threads=1)

    run()  # warm-up: page in the rows and the output outside the timed rounds
    got = benchmark(run)
    benchutil.add_throughput(benchmark, nbytes=rows.nbytes, rows=rows.shape[0])

    assert got.shape == (1, rows.shape[0]) and got.dtype == np.float32
    err = np.abs(got[0].astype(np.float64) - want)
    worst = int(np.argmax(err - tol))
    assert err[worst] <= tol[worst], f"row {worst}: got {got[0, worst]}, want {want[worst]}"
