"""vecstore's MilvusClient against Milvus Lite (pymilvus + milvus-lite): issue 4's criteria.

Both systems get the same data (``n`` x 128 float32 rows with an INT64 ``category`` = id % 100,
100k rows at scale 1.0), the same queries and the same calls (vecstore's client mirrors pymilvus):

(a) durable insert: ``insert`` in 10,000-row batches into a fresh FLAT/L2 collection, then
    ``flush``; rows/s with and without the flush. Milvus Lite takes only rows (a list of dicts,
    prepared before timing); vecstore is timed on the same rows and on columns (a dict of arrays,
    its fast path). vecstore runs with its default WAL policy, ``sync="always"``: every insert
    is acknowledged after fsync (Milvus Lite's own durability policy is not configurable here);
(b) FLAT search, one query per call, k=10, L2, ``output_fields=["id"]``: QPS, and recall of
    both against a float64 exact top-k (and of each against the other);
(c) filtered query returning ids: ``category == 7`` (1%) and ``category >= 40 and category < 42``
    (2%), checked to return the same id sets;
(d) vecstore's whole stack (client.search) vs numpy's fastest single-query scan of the same
    array (``norms - 2 * (X @ q)``, argpartition, sort of k), at ``n`` and ``big_n`` rows;
(e) filter-only ``query(filter, output_fields=["count(*)"])`` over ``big_n`` rows (1M at 1.0)
    against one exact search over the same collection.

Run as pytest-benchmark (parts needing Milvus Lite skip when pymilvus/milvus_lite are missing)::

    python -m pytest bench/bench_milvus_lite.py --benchmark-group-by=group

or as a script that prints a Markdown table of both systems and the ratios (best of
``--repeat`` interleaved rounds, the two systems alternating so that load from elsewhere hits
both)::

    python bench/bench_milvus_lite.py [--scale 1.0] [--repeat 3] [--profile]

``VECSTORE_BENCH_SCALE`` (or ``--scale``) scales n, big_n and the query count.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchutil  # noqa: E402
import vecstore  # noqa: E402

DIM = 128
BATCH = 10_000
K = 10
CATEGORIES = 100
METRIC = "L2"
FILTERS = {"eq": "category == 7", "range": "category >= 40 and category < 42"}
COUNT_FILTER = "category == 7"
MIN_RECALL = 0.99
COLLECTION = "bench"

TARGETS = {"insert": 30.0, "search": 50.0, "numpy": 0.80}


@dataclass(frozen=True)
class LiteSizes:
    scale: float
    n: int  # rows of the side-by-side collection
    nq: int  # single queries timed per round
    big_n: int  # rows of the filter-vs-search collection (vecstore only)


def lite_sizes(scale: float | None = None) -> LiteSizes:
    s = benchutil.env_scale() if scale is None else scale
    return LiteSizes(
        scale=s,
        n=max(10 * K, round(100_000 * s)),
        nq=max(3, round(100 * s)),
        big_n=max(10 * K, round(1_000_000 * s)),
    )


@dataclass
class Data:
    ids: np.ndarray
    category: np.ndarray
    vectors: np.ndarray
    queries: np.ndarray

    @property
    def n(self) -> int:
        return self.vectors.shape[0]

    def columns(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {
            "id": self.ids[start:stop],
            "category": self.category[start:stop],
            "vector": self.vectors[start:stop],
        }

    def rows(self) -> list[dict]:
        # int() and numpy rows: pymilvus takes numpy vectors, and tolist() rows were no faster.
        return [
            {"id": int(i), "category": int(c), "vector": v}
            for i, c, v in zip(self.ids, self.category, self.vectors)
        ]


def make_data(n: int, nq: int, key: str = "milvus-lite") -> Data:
    rng = benchutil.make_rng(key)
    vectors = benchutil.gaussian(rng, n, DIM)
    queries = benchutil.gaussian(rng, nq, DIM)
    ids = np.arange(n, dtype=np.int64)
    return Data(ids=ids, category=ids % CATEGORIES, vectors=vectors, queries=queries)


def expected_filter_ids(data: Data, name: str) -> set[int]:
    c = data.category
    mask = c == 7 if name == "eq" else (c >= 40) & (c < 42)
    return set(data.ids[mask].tolist())


# --- the two systems, one API ------------------------------------------------------------------


def have_milvus_lite() -> bool:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError:
        return False
    return True


class Side:
    """One system's MilvusClient on its own data directory; the calls are identical for both."""

    def __init__(self, impl: str, root: str) -> None:
        self.impl = impl
        if impl == "vecstore":
            self.client = vecstore.MilvusClient(str(Path(root) / "vecstore-data"))
            self.schema_mod = vecstore
        else:
            import pymilvus

            # A path ending in .db starts Milvus Lite.
            self.client = pymilvus.MilvusClient(str(Path(root) / "milvus_lite.db"))
            self.schema_mod = pymilvus

    def create(self, name: str = COLLECTION) -> None:
        c, dt = self.client, self.schema_mod.DataType
        if c.has_collection(name):
            c.drop_collection(name)
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", dt.INT64, is_primary=True)
        schema.add_field("category", dt.INT64)
        schema.add_field("vector", dt.FLOAT_VECTOR, dim=DIM)
        index = c.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type=METRIC)
        c.create_collection(name, schema=schema, index_params=index)

    def insert_rows(self, rows: list[dict], name: str = COLLECTION) -> None:
        for s in range(0, len(rows), BATCH):
            self.client.insert(name, rows[s : s + BATCH])

    def insert_columns(self, data: Data, name: str = COLLECTION) -> None:
        for s in range(0, data.n, BATCH):
            self.client.insert(name, data.columns(s, s + BATCH))

    def flush(self, name: str = COLLECTION) -> None:
        self.client.flush(name)

    def search(self, q: np.ndarray, name: str = COLLECTION) -> list[int]:
        hits = self.client.search(
            name, [q], limit=K, output_fields=["id"], search_params={"metric_type": METRIC}
        )
        return [h["id"] for h in hits[0]]

    def query_ids(self, expr: str, name: str = COLLECTION) -> list[int]:
        return [r["id"] for r in self.client.query(name, filter=expr, output_fields=["id"])]

    def count(self, expr: str, name: str = COLLECTION) -> int:
        rows = self.client.query(name, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def close(self) -> None:
        self.client.close()


@contextlib.contextmanager
def opened(impl: str) -> Iterator[Side]:
    root = tempfile.mkdtemp(prefix=f"bench-{impl}-", dir="/tmp")
    side = Side(impl, root)
    try:
        yield side
    finally:
        with contextlib.suppress(Exception):
            side.close()
        shutil.rmtree(root, ignore_errors=True)


def load(side: Side, data: Data, name: str = COLLECTION) -> None:
    side.create(name)
    if side.impl == "vecstore":
        side.insert_columns(data, name)
    else:
        side.insert_rows(data.rows(), name)
    side.flush(name)
    assert side.count("", name) == data.n


def numpy_search_fn(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The fastest numpy single-query L2 top-k found: row norms once, then one gemv per query."""
    norms = np.einsum("ij,ij->i", x, x)

    def search(q: np.ndarray) -> np.ndarray:
        d = norms - 2.0 * (x @ q)
        part = np.argpartition(d, K - 1)[:K]
        return part[np.argsort(d[part])]

    return search


def run_queries(fn: Callable[[np.ndarray], object], queries: np.ndarray) -> list:
    return [fn(q) for q in queries]


# --- pytest-benchmark --------------------------------------------------------------------------

IMPLS = ["vecstore", "milvus_lite"]


def _need(impl: str) -> None:
    if impl == "milvus_lite":
        pytest.importorskip("pymilvus")
        pytest.importorskip("milvus_lite")


@pytest.fixture(scope="module")
def lsizes() -> LiteSizes:
    return lite_sizes()


@pytest.fixture(scope="module")
def data(lsizes) -> Data:
    return make_data(lsizes.n, lsizes.nq)


@pytest.fixture(scope="module")
def reference(data) -> np.ndarray:
    return benchutil.exact_topk(data.queries, data.vectors, K, METRIC)


@pytest.fixture(scope="module")
def loaded(data) -> Iterator[Callable[[str], Side]]:
    """``loaded(impl)``: that system with the module's data inserted and flushed (built once)."""
    stack = contextlib.ExitStack()
    sides: dict[str, Side] = {}

    def get(impl: str) -> Side:
        if impl not in sides:
            side = stack.enter_context(opened(impl))
            load(side, data)
            sides[impl] = side
        return sides[impl]

    with stack:
        yield get


def _describe(benchmark, group: str, impl: str, n: int, nq: int, **extra) -> None:
    benchmark.group = group
    benchutil.describe(
        benchmark,
        dim=DIM,
        n=n,
        nq=nq,
        k=K,
        kind="float32",
        metric=METRIC,
        threads=benchutil.hardware_threads(),
        impl=impl,
        **extra,
    )


@pytest.mark.parametrize("form", ["rows", "columns"])
@pytest.mark.parametrize("impl", IMPLS)
def test_insert(benchmark, data, impl, form):
    _need(impl)
    if impl == "milvus_lite" and form == "columns":
        pytest.skip("pymilvus' MilvusClient.insert takes rows only")
    _describe(
        benchmark,
        "milvus-lite-insert",
        impl,
        data.n,
        0,
        form=form,
        batch=BATCH,
        wal_sync="always" if impl == "vecstore" else "n/a",
    )
    rows = data.rows() if form == "rows" else None
    with opened(impl) as side:

        def setup():
            side.create()

        def run():
            if rows is not None:
                side.insert_rows(rows)
            else:
                side.insert_columns(data)
            side.flush()

        benchmark.pedantic(run, setup=setup, rounds=2, iterations=1)
        assert side.count("") == data.n
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["rows_per_s_best"] = data.n / stats.stats.min


@pytest.mark.parametrize("impl", IMPLS)
def test_search_flat(benchmark, data, reference, loaded, impl):
    _need(impl)
    side = loaded(impl)
    _describe(benchmark, "milvus-lite-search", impl, data.n, data.queries.shape[0])
    got = benchmark(run_queries, side.search, data.queries)
    ids = np.array(got, dtype=np.int64)
    assert benchutil.recall(ids, reference) >= MIN_RECALL
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["qps_best"] = data.queries.shape[0] / stats.stats.min


@pytest.mark.parametrize("which", sorted(FILTERS))
@pytest.mark.parametrize("impl", IMPLS)
def test_filter_query(benchmark, data, loaded, impl, which):
    _need(impl)
    side = loaded(impl)
    _describe(benchmark, f"milvus-lite-filter-{which}", impl, data.n, 1, filter=FILTERS[which])
    got = benchmark(side.query_ids, FILTERS[which])
    assert set(got) == expected_filter_ids(data, which)


@pytest.mark.parametrize("impl", ["vecstore-stack", "numpy"])
def test_search_vs_numpy(benchmark, data, reference, loaded, impl):
    if impl == "numpy":
        fn = numpy_search_fn(data.vectors)
    else:
        fn = loaded("vecstore").search
    _describe(
        benchmark,
        "milvus-lite-stack-vs-numpy",
        impl,
        data.n,
        data.queries.shape[0],
        numpy_blas_threads=benchutil.blas_threads(),
    )
    got = benchmark(run_queries, fn, data.queries)
    assert benchutil.recall(np.array(got, dtype=np.int64), reference) >= MIN_RECALL


@pytest.fixture(scope="module")
def big(lsizes) -> Iterator[tuple[Side, Data]]:
    data = make_data(lsizes.big_n, lsizes.nq, key="milvus-lite-big")
    with opened("vecstore") as side:
        load(side, data)
        yield side, data


@pytest.mark.parametrize("op", ["filter-count", "exact-search"])
def test_filter_vs_search_big(benchmark, big, op):
    side, data = big
    _describe(
        benchmark,
        "milvus-lite-filter-vs-search-big",
        "vecstore",
        data.n,
        1,
        filter=COUNT_FILTER if op == "filter-count" else "",
    )
    if op == "filter-count":
        assert benchmark(side.count, COUNT_FILTER) == data.n // CATEGORIES + (
            1 if data.n % CATEGORIES > 7 else 0
        )
    else:
        assert len(benchmark(side.search, data.queries[0])) == K


# --- script: side-by-side table ----------------------------------------------------------------


def best_time(
    fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> float:
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def interleaved(
    fns: dict[str, tuple[Callable[[], object], Callable[[], object] | None]], repeat: int
) -> dict[str, float]:
    """Best wall time per name, the functions alternating round by round (setup untimed)."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, (fn, setup) in fns.items():
            best[name] = min(best[name], best_time(fn, 1, setup))
    return best


def profile(fn: Callable[[], object], label: str, limit: int = 18) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(limit)
    return f"### cProfile: {label}\n\n```\n{out.getvalue().strip()}\n```\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile vecstore's calls")
    args = parser.parse_args(argv)
    s = lite_sizes(args.scale)
    lite = have_milvus_lite()
    r = args.repeat
    print(f"sizes: {s}; Milvus Lite: {'yes' if lite else 'not installed'}", file=sys.stderr)
    info = benchutil.machine_info()
    if lite:
        import milvus_lite
        import pymilvus

        info["pymilvus"] = pymilvus.__version__
        info["milvus-lite"] = getattr(milvus_lite, "__version__", "?")

    data = make_data(s.n, s.nq)
    rows = data.rows()
    ref = benchutil.exact_topk(data.queries, data.vectors, K, METRIC)
    table = _EchoList()  # rows are echoed to stderr as they are measured
    profiles: list[str] = []

    with contextlib.ExitStack() as stack:
        vs = stack.enter_context(opened("vecstore"))
        ml = stack.enter_context(opened("milvus_lite")) if lite else None

        # (a) insert, fresh collection each round: insert only, and insert + flush.
        def ins(side: Side, form: str, with_flush: bool) -> Callable[[], None]:
            def run() -> None:
                if form == "rows":
                    side.insert_rows(rows, "ins")
                else:
                    side.insert_columns(data, "ins")
                if with_flush:
                    side.flush("ins")

            return run

        fns = {}
        for flush in (False, True):
            tag = "+flush" if flush else ""
            fns[f"vs-rows{tag}"] = (ins(vs, "rows", flush), lambda: vs.create("ins"))
            fns[f"vs-cols{tag}"] = (ins(vs, "columns", flush), lambda: vs.create("ins"))
            if ml is not None:
                fns[f"ml-rows{tag}"] = (ins(ml, "rows", flush), lambda: ml.create("ins"))
        t = interleaved(fns, r)
        rate = {k: s.n / v for k, v in t.items()}
        for tag, label in (("+flush", "insert + flush"), ("", "insert only (no flush)")):
            for form, key in (("rows", "vs-rows"), ("columns", "vs-cols")):
                ml_rate = rate.get(f"ml-rows{tag}")
                table.append(
                    _row(
                        f"(a) {label}, vecstore {form} vs Milvus Lite rows, rows/s",
                        rate[key + tag],
                        ml_rate,
                        TARGETS["insert"] if tag else None,
                    )
                )
        if args.profile:
            vs.create("ins")
            profiles.append(profile(ins(vs, "columns", True), "vecstore insert columns + flush"))
            vs.create("ins")
            profiles.append(profile(ins(vs, "rows", True), "vecstore insert rows + flush"))

        # (b) FLAT search, one query per call.
        load(vs, data)
        if ml is not None:
            load(ml, data)
        got = {"vecstore": np.array(run_queries(vs.search, data.queries))}
        fns = {"vecstore": (lambda: run_queries(vs.search, data.queries), None)}
        if ml is not None:
            got["milvus_lite"] = np.array(run_queries(ml.search, data.queries))
            fns["milvus_lite"] = (lambda: run_queries(ml.search, data.queries), None)
        t = interleaved(fns, r)
        qps = {k: s.nq / v for k, v in t.items()}
        recalls = {k: benchutil.recall(v, ref) for k, v in got.items()}
        agree = benchutil.recall(got["vecstore"], got["milvus_lite"]) if ml else None
        table.append(
            _row(
                f"(b) FLAT search, 1 query/call, {s.n:,} x {DIM}, k={K}, QPS",
                qps["vecstore"],
                qps.get("milvus_lite"),
                TARGETS["search"],
            )
        )
        if args.profile:
            profiles.append(
                profile(
                    lambda: run_queries(vs.search, data.queries),
                    f"vecstore {s.nq} single-query searches",
                )
            )

        # (c) filtered query returning ids.
        for which, expr in FILTERS.items():
            want = expected_filter_ids(data, which)
            assert set(vs.query_ids(expr)) == want, expr
            fns = {"vecstore": (lambda e=expr: vs.query_ids(e), None)}
            if ml is not None:
                assert set(ml.query_ids(expr)) == want, expr
                fns["milvus_lite"] = (lambda e=expr: ml.query_ids(e), None)
            t = interleaved(fns, max(r, 5))
            table.append(
                _row(
                    f"(c) query(filter=`{expr}`) -> {len(want):,} ids, ms",
                    t["vecstore"] * 1e3,
                    t.get("milvus_lite", float("nan")) * 1e3,
                    None,
                    lower_is_better=True,
                )
            )

        # (d) vecstore stack vs numpy, same array, same queries.
        np_fn = numpy_search_fn(data.vectors)
        assert benchutil.recall(np.array(run_queries(np_fn, data.queries)), ref) >= MIN_RECALL
        t = interleaved(
            {
                "stack": (lambda: run_queries(vs.search, data.queries), None),
                "numpy": (lambda: run_queries(np_fn, data.queries), None),
            },
            r,
        )
        table.append(
            _row(
                f"(d) exact single query, {s.n:,} rows: vecstore stack vs numpy, ms",
                t["stack"] / s.nq * 1e3,
                t["numpy"] / s.nq * 1e3,
                TARGETS["numpy"],
                lower_is_better=True,
                peer_name="numpy",
            )
        )
        vs.client.drop_collection(COLLECTION)
        if ml is not None:
            ml.client.drop_collection(COLLECTION)
            stack.pop_all().close()  # stop Milvus Lite before the 1M collection

    # (d) at big_n and (e): filter-only count vs one exact search, vecstore alone.
    big = make_data(s.big_n, s.nq, key="milvus-lite-big")
    with opened("vecstore") as vs:
        load(vs, big)
        np_fn = numpy_search_fn(big.vectors)
        nq_big = min(s.nq, 20)
        qs = big.queries[:nq_big]
        big_ref = benchutil.exact_topk(qs, big.vectors, K, METRIC)
        assert benchutil.recall(np.array(run_queries(vs.search, qs)), big_ref) >= MIN_RECALL
        assert benchutil.recall(np.array(run_queries(np_fn, qs)), big_ref) >= MIN_RECALL
        t = interleaved(
            {
                "stack": (lambda: run_queries(vs.search, qs), None),
                "numpy": (lambda: run_queries(np_fn, qs), None),
            },
            r,
        )
        table.append(
            _row(
                f"(d) exact single query, {s.big_n:,} rows: vecstore stack vs numpy, ms",
                t["stack"] / nq_big * 1e3,
                t["numpy"] / nq_big * 1e3,
                TARGETS["numpy"],
                lower_is_better=True,
                peer_name="numpy",
            )
        )
        want = int((big.category == 7).sum())
        assert vs.count(COUNT_FILTER) == want
        t = interleaved(
            {
                "count": (lambda: vs.count(COUNT_FILTER), None),
                "search": (lambda: vs.search(qs[0]), None),
            },
            max(r, 5),
        )
        table.append(
            (
                f"(e) {s.big_n:,} rows: query(filter=`{COUNT_FILTER}`, count(*)) vs one "
                "exact search, ms",
                f"{t['count'] * 1e3:.1f}",
                f"{t['search'] * 1e3:.1f} (search)",
                f"{t['count'] / t['search']:.3f} of a search",
                "well under 1",
                "PASS" if t["count"] < 0.2 * t["search"] else "FAIL",
            )
        )
        if args.profile:
            profiles.append(
                profile(
                    lambda: run_queries(vs.search, qs),
                    f"vecstore {nq_big} searches over {s.big_n:,} rows",
                )
            )

    print("| machine | " + "; ".join(f"{k}: {v}" for k, v in info.items()) + " |\n")
    print(
        f"best of {r} interleaved rounds; recall@{K} vs float64 exact: "
        + ", ".join(f"{k} {v:.3f}" for k, v in recalls.items())
        + (f"; vecstore vs Milvus Lite ids agree: {agree:.3f}" if agree is not None else "")
    )
    print()
    print("| criterion | vecstore | peer | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    for p in profiles:
        print("\n" + p)
    return 0


class _EchoList(list):
    def append(self, row: tuple[str, ...]) -> None:
        print("| " + " | ".join(row) + " |", file=sys.stderr, flush=True)
        super().append(row)


def _row(
    label: str,
    ours: float,
    peer: float | None,
    target: float | None,
    *,
    lower_is_better: bool = False,
    peer_name: str = "Milvus Lite",
) -> tuple[str, ...]:
    if peer is None or peer != peer:
        return (label, f"{ours:,.1f}", "not run", "", "", "")
    if lower_is_better and target is not None and target < 1:
        # target expressed as "vecstore reaches >= target of the peer's speed"
        ratio = peer / ours
        text = f"{ratio:.2f} of {peer_name}'s speed"
    elif lower_is_better:
        ratio = peer / ours
        text = f"{ratio:.1f}x faster"
    else:
        ratio = ours / peer
        text = f"{ratio:.1f}x"
    fmt = "{:,.2f}" if lower_is_better else "{:,.0f}" if ours > 100 else "{:,.1f}"
    tgt = "" if target is None else (f">= {target:.0%}" if target < 1 else f">= {target:.0f}x")
    result = "" if target is None else ("PASS" if ratio >= target else "FAIL")
    return (label, fmt.format(ours), fmt.format(peer), text, tgt, result)


if __name__ == "__main__":
    sys.exit(main())
