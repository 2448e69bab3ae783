"""pymilvus against ``vecstore serve`` next to the embedded client, in one run:

- ``search_one``: ``search(coll, [q], limit=10)``, one query per call, over N x 128 rows (FLAT,
  L2, flushed: one sealed segment);
- ``insert_10k``: ``insert(coll, rows)`` with 10,000 row dicts per call (durable on return).

Both clients make the same MilvusClient calls with the same data; the server runs in a
subprocess on loopback (``vecstore serve --port 0``), so its figures include pymilvus's encoding,
gRPC and the server's decoding. The issue's bar: server >= 50% of embedded for both.

N is 100,000 x ``VECSTORE_BENCH_SCALE`` (at least 2,000). Run as a script for a side-by-side
table: ``python bench/bench_server.py [--n 100000] [--seconds 3]``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import benchutil

pytest.importorskip("grpc")
pytest.importorskip("pymilvus")

DIM = 128
BATCH = 10_000
ROOT = Path(__file__).resolve().parents[1]


def _n() -> int:
    return max(2_000, int(100_000 * benchutil.env_scale()))


def start_server(data: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python") + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "vecstore", "serve", "--data", str(data),
                             "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line.startswith("vecstore serving"):
        proc.kill()
        raise RuntimeError(f"vecstore serve did not start: {line!r}")
    return proc, "http://127.0.0.1:" + line.rsplit(":", 1)[1].strip()


class Pair:
    """The two clients, each with collection "bench" holding the same n x 128 rows."""

    def __init__(self, root: Path, n: int) -> None:
        from pymilvus import MilvusClient as Remote

        import vecstore

        self.proc, uri = start_server(root / "served")
        self.clients = {"embedded": vecstore.MilvusClient(str(root / "embedded")),
                        "server": Remote(uri)}
        rng = benchutil.make_rng("server")
        self.base = rng.standard_normal((n, DIM), dtype=np.float32)
        self.queries = rng.standard_normal((200, DIM), dtype=np.float32)
        self.batch = rng.standard_normal((BATCH, DIM), dtype=np.float32)
        self.next_id = itertools.count(n)
        for c in self.clients.values():
            for name in ("bench", "ins"):
                schema = c.create_schema()
                schema.add_field("id", 5, is_primary=True)  # INT64
                schema.add_field("vector", 101, dim=DIM)  # FLOAT_VECTOR
                ip = c.prepare_index_params()
                ip.add_index("vector", index_type="FLAT", metric_type="L2")
                c.create_collection(name, schema=schema, index_params=ip)
            for start in range(0, n, BATCH):
                stop = min(n, start + BATCH)
                c.insert("bench", [{"id": i, "vector": self.base[i]}
                                   for i in range(start, stop)])
            c.flush("bench")

    def rows(self) -> list[dict]:
        first = next(self.next_id) * BATCH
        return [{"id": first + i, "vector": v} for i, v in enumerate(self.batch)]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.proc.terminate()
        self.proc.wait(30)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("bench_server"), _n())
    yield p
    p.close()


@pytest.mark.benchmark(group="server-search-1")
@pytest.mark.parametrize("via", ["embedded", "server"])
def test_search_one(benchmark, pair, via):
    client = pair.clients[via]
    qs = itertools.cycle(pair.queries)
    benchmark.extra_info.update(n=len(pair.base), dim=DIM, index="FLAT", via=via)
    hits = benchmark(lambda: client.search("bench", [next(qs)], limit=10))
    assert len(hits[0]) == 10


@pytest.mark.benchmark(group="server-insert-10k")
@pytest.mark.parametrize("via", ["embedded", "server"])
def test_insert_10k(benchmark, pair, via):
    client = pair.clients[via]
    benchmark.extra_info.update(rows_per_call=BATCH, dim=DIM, via=via)
    res = benchmark.pedantic(lambda rows: client.insert("ins", rows),
                             setup=lambda: ((pair.rows(),), {}), rounds=5)
    assert res["insert_count"] == BATCH


def _rate(fn, seconds: float, per_call: int = 1, setup=None) -> float:
    """Calls (or rows) per second over at least `seconds` (and 3 calls)."""
    spent, calls = 0.0, 0
    while spent < seconds or calls < 3:
        arg = setup() if setup else None
        start = time.perf_counter()
        fn(arg)
        spent += time.perf_counter() - start
        calls += 1
    return calls * per_call / spent


def main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        p = Pair(Path(tmp), args.n)
        print(f"loaded {args.n:,} x {DIM} into both in {time.perf_counter() - start:.1f} s")
        try:
            res = {}
            for via, c in p.clients.items():
                qs = itertools.cycle(p.queries)
                res[via] = (
                    _rate(lambda _, c=c, qs=qs: c.search("bench", [next(qs)], limit=10),
                          args.seconds),
                    _rate(lambda rows, c=c: c.insert("ins", rows), args.seconds, BATCH,
                          setup=p.rows))
            print(f"{'':12} {'search QPS (1/call)':>20} {'insert rows/s (10k/call)':>26}")
            for via, (qps, rps) in res.items():
                print(f"{via:12} {qps:20,.0f} {rps:26,.0f}")
            e, s = res["embedded"], res["server"]
            print(f"{'server/embd':12} {s[0] / e[0]:20.0%} {s[1] / e[1]:26.0%}")
        finally:
            p.close()


if __name__ == "__main__":
    main()
