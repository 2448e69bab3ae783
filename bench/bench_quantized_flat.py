"""Single-query exact k-NN: plain scan (``vecstore.knn``) vs two-stage ``QuantizedFlat``.

``knn_n`` rows x 128 dims (100k at scale 1.0), k=10, float32, one query per call, for gaussian and
clustered data; L2 at 1 thread and all cores, IP and COSINE at all cores. Both implementations must
return identical ids and values (asserted), so the comparison is like for like. Group
``qflat-build`` times building the quantised copy.

    python -m pytest bench/bench_quantized_flat.py --benchmark-group-by=group
"""

from __future__ import annotations

import numpy as np
import pytest

import benchutil
import vecstore
from vecstore.compute import QuantizedFlat

QUERIES = 16  # distinct queries cycled through, so that no call sees the previous one's answer


def _clustered(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    centres = rng.standard_normal((64, dim), dtype=np.float32) * 3
    labels = rng.integers(0, 64, n)
    return centres[labels] + rng.standard_normal((n, dim), dtype=np.float32)


@pytest.fixture(scope="module")
def qflat_data(sizes):
    out = {}
    for name in ("gaussian", "clustered"):
        rng = benchutil.make_rng("qflat", name)
        if name == "gaussian":
            base = benchutil.gaussian(rng, sizes.knn_n, sizes.dim)
        else:
            base = _clustered(rng, sizes.knn_n, sizes.dim)
        picks = rng.integers(0, sizes.knn_n, QUERIES)
        queries = base[picks] + 0.5 * rng.standard_normal((QUERIES, sizes.dim), dtype=np.float32)
        out[name] = (base, queries.astype(np.float32))
    return out


@pytest.fixture(scope="module")
def qflat_index():
    cache = {}

    def get(base: np.ndarray, name: str, metric: str) -> QuantizedFlat:
        key = (name, metric)
        if key not in cache:
            cache[key] = QuantizedFlat(base, metric)
        return cache[key]

    return get


CASES = [
    ("gaussian", "L2", 1),
    ("gaussian", "L2", 0),
    ("clustered", "L2", 1),
    ("clustered", "L2", 0),
    ("gaussian", "IP", 0),
    ("gaussian", "COSINE", 0),
]


@pytest.mark.parametrize("impl", ["knn", "qflat"])
@pytest.mark.parametrize(("data", "metric", "threads"), CASES)
def test_single_query(benchmark, qflat_data, qflat_index, sizes, impl, data, metric, threads):
    base, queries = qflat_data[data]
    index = qflat_index(base, data, metric)
    benchmark.group = f"qflat-{data}-{metric}-threads={threads or 'all'}"
    benchutil.describe(
        benchmark,
        dim=base.shape[1],
        n=base.shape[0],
        nq=1,
        k=sizes.k,
        kind="float32",
        metric=metric,
        threads=threads or benchutil.hardware_threads(),
        impl=impl,
        data=data,
    )
    counter = iter(range(1 << 62))

    def run():
        q = queries[next(counter) % QUERIES][None]
        if impl == "knn":
            return q, vecstore.knn(q, base, sizes.k, metric, threads=threads)
        return q, index.search(q, sizes.k, threads=threads)

    run()
    q, (ids, dist) = benchmark(run)
    ref_ids, ref_dist = vecstore.knn(q, base, sizes.k, metric)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(dist, ref_dist)
    stats: dict = {}
    index.search(q, sizes.k, stats=stats)
    benchmark.extra_info["candidates"] = stats["candidates"]
    benchutil.add_throughput(benchmark, nbytes=base.nbytes, rows=base.shape[0])


@pytest.mark.parametrize("data", ["gaussian", "clustered"])
def test_build(benchmark, qflat_data, sizes, data):
    base, _ = qflat_data[data]
    benchmark.group = "qflat-build"
    benchutil.describe(
        benchmark,
        dim=base.shape[1],
        n=base.shape[0],
        nq=0,
        k=None,
        kind="float32",
        metric="L2",
        threads=benchutil.hardware_threads(),
        impl="qflat",
        data=data,
    )
    index = benchmark(lambda: QuantizedFlat(base, "L2"))
    assert index.memory_bytes >= base.shape[0] * base.shape[1]
