"""The wire against the embedded client, side by side in one run:

- ``search_one``: ``search(coll, [q], limit=10)``, one query per call, over N x 128 rows (FLAT,
  L2, flushed: one sealed segment);
- ``insert_10k``: ``insert(coll, batch)`` with 10,000 rows per call (durable on return), as row
  dicts or as columns (``{"id": int64 array, "vector": (10000, 128) float32 array}``).

Clients: ``embedded`` (``vecstore.MilvusClient(dir)``), ``pymilvus`` (pymilvus's own
``MilvusClient`` against ``vecstore serve``) and ``remote`` (``vecstore.MilvusClient(uri)``: the
same pymilvus client whose insert encodes with numpy, see ``vecstore/client/remote_insert.py``).
All make the same calls with the same data; the server runs in a subprocess on loopback
(``vecstore serve --port 0``), so wire figures include client encoding, gRPC and the server's
decoding. The issue's bar: server >= 50% of embedded for both (rows vs rows, columns vs columns).

``--clients K`` (script only) adds concurrent search throughput: K threads of the embedded client
against K pymilvus client processes (one process each, as K users of a server would be; threads
of one pymilvus process would share its GIL), all searching at once for the same seconds.

N is 100,000 x ``VECSTORE_BENCH_SCALE`` (at least 2,000). Run as a script for a side-by-side
table: ``python bench/bench_server.py [--n 100000] [--seconds 3] [--rounds 3]``.
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
import vecstore

pytest.importorskip("grpc")
pytest.importorskip("pymilvus")

DIM = 128
BATCH = 10_000


def _n() -> int:
    return max(2_000, int(100_000 * benchutil.env_scale()))


def start_server(data: Path, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    # The same vecstore as this process (installed, or the source tree with its built _core).
    package_dir = str(Path(vecstore.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=package_dir + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "vecstore", "serve", "--data", str(data),
                             "--port", "0", *extra], stdout=subprocess.PIPE, text=True,
                            env=env)
    line = proc.stdout.readline()
    if not line.startswith("vecstore serving"):
        proc.kill()
        raise RuntimeError(f"vecstore serve did not start: {line!r}")
    return proc, "http://127.0.0.1:" + line.rsplit(":", 1)[1].strip()


class Pair:
    """The clients, each with collection "bench" holding the same n x 128 rows (the two remote
    clients share the server's)."""

    def __init__(self, root: Path, n: int, serve_args: tuple[str, ...] = ()) -> None:
        from pymilvus import MilvusClient as Remote

        import vecstore

        self.proc, uri = start_server(root / "served", serve_args)
        self.uri = uri
        self.clients = {"embedded": vecstore.MilvusClient(str(root / "embedded")),
                        "pymilvus": Remote(uri), "remote": vecstore.MilvusClient(uri)}
        rng = benchutil.make_rng("server")
        self.base = rng.standard_normal((n, DIM), dtype=np.float32)
        self.queries = rng.standard_normal((200, DIM), dtype=np.float32)
        self.batch = rng.standard_normal((BATCH, DIM), dtype=np.float32)
        self.next_id = itertools.count(n)
        for via in ("embedded", "remote"):
            c = self.clients[via]
            for name in ("bench", "ins"):
                schema = c.create_schema()
                schema.add_field("id", 5, is_primary=True)  # INT64
                schema.add_field("vector", 101, dim=DIM)  # FLOAT_VECTOR
                ip = c.prepare_index_params()
                ip.add_index("vector", index_type="FLAT", metric_type="L2")
                c.create_collection(name, schema=schema, index_params=ip)
            for start in range(0, n, BATCH):
                stop = min(n, start + BATCH)
                c.insert("bench", {"id": np.arange(start, stop), "vector": self.base[start:stop]})
            c.flush("bench")

    def rows(self) -> list[dict]:
        first = next(self.next_id) * BATCH
        return [{"id": first + i, "vector": v} for i, v in enumerate(self.batch)]

    def columns(self) -> dict:
        first = next(self.next_id) * BATCH
        return {"id": np.arange(first, first + BATCH), "vector": self.batch}

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.proc.terminate()
        self.proc.wait(30)
        self.proc.stdout.close()


# (label, client, batch form): pymilvus's MilvusClient takes rows only.
INSERTS = [("embedded", "embedded", "rows"), ("embedded", "embedded", "columns"),
           ("pymilvus", "pymilvus", "rows"), ("remote", "remote", "rows"),
           ("remote", "remote", "columns")]
SEARCHES = ["embedded", "pymilvus", "remote"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("bench_server"), _n())
    yield p
    p.close()


@pytest.mark.benchmark(group="server-search-1")
@pytest.mark.parametrize("via", SEARCHES)
def test_search_one(benchmark, pair, via):
    client = pair.clients[via]
    qs = itertools.cycle(pair.queries)
    benchmark.extra_info.update(n=len(pair.base), dim=DIM, index="FLAT", via=via)
    hits = benchmark(lambda: client.search("bench", [next(qs)], limit=10))
    assert len(hits[0]) == 10


@pytest.mark.benchmark(group="server-insert-10k")
@pytest.mark.parametrize("via,form", [(v, f) for _, v, f in INSERTS])
def test_insert_10k(benchmark, pair, via, form):
    client = pair.clients[via]
    benchmark.extra_info.update(rows_per_call=BATCH, dim=DIM, via=via, form=form)
    make = pair.rows if form == "rows" else pair.columns
    res = benchmark.pedantic(lambda batch: client.insert("ins", batch),
                             setup=lambda: ((make(),), {}), rounds=3)
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


# One pymilvus client process of the concurrent search: connects, waits for the common start,
# searches until the common end, prints its call count.
_SEARCH_CLIENT = """
import sys, time, numpy as np
from pymilvus import MilvusClient
uri, seed, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
c = MilvusClient(uri)
qs = np.random.default_rng(seed).standard_normal((200, DIM), dtype=np.float32)
c.search("bench", [qs[0]], limit=10)
time.sleep(max(0.0, start - time.time()))
n = 0
while time.time() < end:
    c.search("bench", [qs[n % 200]], limit=10)
    n += 1
print(n)
""".replace("DIM", str(DIM))


def concurrent_search(p: Pair, clients: int, seconds: float) -> dict[str, float]:
    """QPS of ``clients`` embedded threads and of ``clients`` pymilvus processes, one after the
    other, each searching for ``seconds``."""
    import threading

    out: dict[str, float] = {}
    counts = [0] * clients
    start = time.time() + 0.2
    end = start + seconds

    def embedded(i: int) -> None:
        c, qs = p.clients["embedded"], itertools.cycle(p.queries[i::clients])
        time.sleep(max(0.0, start - time.time()))
        while time.time() < end:
            c.search("bench", [next(qs)], limit=10)
            counts[i] += 1

    threads = [threading.Thread(target=embedded, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["embedded"] = sum(counts) / seconds
    start = time.time() + 8.0  # the processes import pymilvus and connect first
    end = start + seconds
    procs = [subprocess.Popen([sys.executable, "-c", _SEARCH_CLIENT, p.uri, str(i), str(start),
                               str(end)], stdout=subprocess.PIPE, text=True)
             for i in range(clients)]
    total = 0
    for proc in procs:
        text, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"a search client failed (status {proc.returncode})")
        total += int(text.split()[-1])
    if time.time() < end:
        raise RuntimeError("the search clients ended before the common end")
    out["pymilvus"] = total / seconds
    return out


def main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve-args", default="",
                    help="extra `vecstore serve` options, e.g. '--proxies 2 --query-nodes 2'")
    ap.add_argument("--clients", type=int, default=0,
                    help="also measure K concurrent searchers (embedded threads vs pymilvus "
                         "processes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        p = Pair(Path(tmp), args.n, tuple(args.serve_args.split()))
        print(f"loaded {args.n:,} x {DIM} into both in {time.perf_counter() - start:.1f} s")
        try:
            for via in SEARCHES:  # warm up: first-search setup is not part of the rate
                p.clients[via].search("bench", [p.queries[0]], limit=10)
            qps, rps = {}, {}
            # Interleaved rounds, so that load on the shared machine hits every client alike.
            for _ in range(args.rounds):
                for via in SEARCHES:
                    c, qs = p.clients[via], itertools.cycle(p.queries)
                    qps.setdefault(via, []).append(_rate(
                        lambda _, c=c, qs=qs: c.search("bench", [next(qs)], limit=10),
                        args.seconds))
                for _, via, form in INSERTS:
                    c = p.clients[via]
                    rps.setdefault((via, form), []).append(_rate(
                        lambda batch, c=c: c.insert("ins", batch), args.seconds, BATCH,
                        setup=p.rows if form == "rows" else p.columns))
            qps = {k: float(np.median(v)) for k, v in qps.items()}
            rps = {k: float(np.median(v)) for k, v in rps.items()}
            print(f"\n{args.n:,} x {DIM} FLAT, median of {args.rounds} interleaved rounds, "
                  f"vecstore serve {args.serve_args or '(all roles in one process)'}\n")
            print("| client | search QPS (1 query/call) | vs embedded | insert form | "
                  "insert rows/s (10k/call) | vs embedded (same form) |")
            print("|---|---:|---:|---|---:|---:|")
            for via, form in [(v, f) for _, v, f in INSERTS]:
                q = f"{qps[via]:,.0f}" if form == "rows" else ""
                qr = f"{qps[via] / qps['embedded']:.0%}" if form == "rows" else ""
                r = rps[(via, form)]
                print(f"| {via} | {q} | {qr} | {form} | {r:,.0f} | "
                      f"{r / rps[('embedded', form)]:.0%} |")
            if args.clients:
                runs = [concurrent_search(p, args.clients, args.seconds)
                        for _ in range(args.rounds)]
                emb = float(np.median([r["embedded"] for r in runs]))
                pym = float(np.median([r["pymilvus"] for r in runs]))
                print(f"\n{args.clients} concurrent searchers, median of {args.rounds} rounds: "
                      f"embedded (threads) {emb:,.0f} QPS, pymilvus (processes) {pym:,.0f} QPS, "
                      f"{pym / emb:.0%}")
        finally:
            p.close()


if __name__ == "__main__":
    main()
