"""Prometheus metrics of ``vecstore serve`` (text exposition format 0.0.4), served at
``http://HOST:PORT/metrics`` by a small ``http.server`` thread when ``--metrics-port`` is given.

Series (labels in braces):

- ``vecstore_requests_total{method,status}``: calls per RPC and outcome (``0`` success, a Milvus
  code, or a gRPC status name such as ``UNAUTHENTICATED``).
- ``vecstore_request_duration_seconds{method,status}``: histogram of call latency.
- ``vecstore_rows_inserted_total``, ``vecstore_rows_upserted_total``,
  ``vecstore_rows_deleted_total``: rows acknowledged by Insert, Upsert and Delete replies.
- ``vecstore_collection_sealed_segments{db,collection}``, ``..._sealed_rows``: committed
  segments and their rows; ``..._growing_rows``: rows still in the growing (in-memory) segment.
  Growing rows are exactly the WAL records not yet flushed into a segment, so they are the WAL
  lag; ``vecstore_collection_wal_bytes`` is the size of the collection's WAL files on disk.
- ``vecstore_process_resident_memory_bytes``: RSS of the server process.

With authentication on, the endpoint wants HTTP basic auth with any valid user and password
(the same store as the gRPC side); no credentials or wrong ones get 401.

Thread safety: :meth:`Metrics.observe` is called from gRPC worker threads under one lock;
collection gauges are read from the deployment when the endpoint is scraped.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vecstore.server.auth import AuthError

log = logging.getLogger("vecstore.server")

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kw: Any) -> str:
    return "{" + ",".join(f'{k}="{_esc(str(v))}"' for k, v in kw.items()) + "}"


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Metrics:
    def __init__(self, deployment: Any = None) -> None:
        self._dep = deployment
        self._mu = threading.Lock()
        self._count: dict[tuple[str, str], int] = {}
        self._sum: dict[tuple[str, str], float] = {}
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._rows = {"inserted": 0, "upserted": 0, "deleted": 0}

    def observe(self, method: str, status: str, seconds: float, response: Any = None) -> None:
        key = (method, status)
        with self._mu:
            self._count[key] = self._count.get(key, 0) + 1
            self._sum[key] = self._sum.get(key, 0.0) + seconds
            b = self._buckets.setdefault(key, [0] * len(BUCKETS))
            i = bisect.bisect_left(BUCKETS, seconds)
            if i < len(BUCKETS):
                b[i] += 1
            if status == "0" and response is not None:
                if method == "Insert":
                    self._rows["inserted"] += int(response.insert_cnt)
                elif method == "Upsert":
                    self._rows["upserted"] += int(response.upsert_cnt)
                elif method == "Delete":
                    self._rows["deleted"] += int(response.delete_cnt)

    def render(self) -> str:
        out: list[str] = []
        with self._mu:
            count, total = dict(self._count), dict(self._sum)
            buckets = {k: list(v) for k, v in self._buckets.items()}
            rows = dict(self._rows)
        out += ["# HELP vecstore_requests_total gRPC calls by method and status.",
                "# TYPE vecstore_requests_total counter"]
        for (m, s), n in sorted(count.items()):
            out.append(f"vecstore_requests_total{_labels(method=m, status=s)} {n}")
        out += ["# HELP vecstore_request_duration_seconds gRPC call latency.",
                "# TYPE vecstore_request_duration_seconds histogram"]
        for (m, s), b in sorted(buckets.items()):
            acc = 0
            for le, n in zip(BUCKETS, b):
                acc += n
                out.append("vecstore_request_duration_seconds_bucket"
                           f"{_labels(method=m, status=s, le=le)} {acc}")
            lab = _labels(method=m, status=s, le="+Inf")
            out.append(f"vecstore_request_duration_seconds_bucket{lab} {count[(m, s)]}")
            out.append(f"vecstore_request_duration_seconds_sum{_labels(method=m, status=s)} "
                       f"{total[(m, s)]:.6f}")
            out.append(f"vecstore_request_duration_seconds_count{_labels(method=m, status=s)} "
                       f"{count[(m, s)]}")
        for what, n in rows.items():
            out += [f"# HELP vecstore_rows_{what}_total Rows acknowledged as {what}.",
                    f"# TYPE vecstore_rows_{what}_total counter", f"vecstore_rows_{what}_total {n}"]
        out += self._collections()
        out += self._roles()
        out += ["# HELP vecstore_process_resident_memory_bytes Resident set size.",
                "# TYPE vecstore_process_resident_memory_bytes gauge",
                f"vecstore_process_resident_memory_bytes {rss_bytes()}"]
        return "\n".join(out) + "\n"

    def _collections(self) -> list[str]:
        dep = self._dep
        if dep is None:
            return []
        series: dict[str, list[str]] = {
            "sealed_segments": [], "sealed_rows": [], "growing_rows": [], "wal_bytes": []}
        catalog = dep.coordinator.catalog
        try:
            for db in catalog.list_databases():
                for name in catalog.list_collections(db):
                    try:
                        meta = catalog.resolve(db, name)
                        segs = dep.coordinator.segments(meta.id)
                        growing = dep.growing_rows(meta.id)
                    except Exception:  # noqa: BLE001 (dropped while scraping: skip it)
                        continue
                    lab = _labels(db=db, collection=name)
                    series["sealed_segments"].append(f"{lab} {len(segs)}")
                    series["sealed_rows"].append(f"{lab} {sum(s.rows for s in segs)}")
                    series["growing_rows"].append(f"{lab} {growing}")
                    wal = dep.datadir.path / "wal" / dep.streaming.channel(meta.id)
                    series["wal_bytes"].append(f"{lab} {_dir_bytes(wal)}")
        except Exception:  # noqa: BLE001 (metrics never fail a scrape over a catalog race)
            log.exception("reading collection metrics")
        helps = {"sealed_segments": "Committed (sealed) segments.",
                 "sealed_rows": "Rows in committed segments (deleted rows included).",
                 "growing_rows": "Rows in the WAL not yet flushed into a segment (WAL lag).",
                 "wal_bytes": "Bytes of the collection's WAL files."}
        out: list[str] = []
        for key, lines in series.items():
            name = f"vecstore_collection_{key}"
            out += [f"# HELP {name} {helps[key]}", f"# TYPE {name} gauge"]
            out += [name + line for line in lines]
        return out


    def _roles(self) -> list[str]:
        """Processes and restarts per role run as processes (the in-process roles have none)."""
        dep = self._dep
        if dep is None:
            return []
        pools = {"query_node": getattr(dep.query, "pool", None), "streaming_node": dep.wal_nodes,
                 "data_node": getattr(dep.work, "nodes", None)}
        pools = {role: pool for role, pool in pools.items() if pool is not None}
        out = ["# HELP vecstore_role_processes Live processes of each role run as processes.",
               "# TYPE vecstore_role_processes gauge"]
        for role, pool in pools.items():
            up = sum(1 for p in pool.processes if p.proc is not None and p.proc.poll() is None)
            out.append(f"vecstore_role_processes{_labels(role=role)} {up}")
        out += ["# HELP vecstore_role_restarts_total Processes of the role replaced after a "
                "failure.", "# TYPE vecstore_role_restarts_total counter"]
        for role, pool in pools.items():
            out.append(f"vecstore_role_restarts_total{_labels(role=role)} {pool.restarts}")
        if dep.wal_nodes is not None:
            # As of each node's last heartbeat; a restarted node counts from 0 again.
            beats = [p.last_heartbeat for p in dep.wal_nodes.processes]
            out += ["# HELP vecstore_streaming_node_growing_searches_total Growing-segment "
                    "vector searches the streaming nodes served from their copies.",
                    "# TYPE vecstore_streaming_node_growing_searches_total counter",
                    "vecstore_streaming_node_growing_searches_total "
                    f"{sum(int(b.get('growing_searches', 0)) for b in beats)}",
                    "# HELP vecstore_streaming_node_mirrored_segments Growing segments whose "
                    "vectors the streaming nodes hold a copy of.",
                    "# TYPE vecstore_streaming_node_mirrored_segments gauge",
                    "vecstore_streaming_node_mirrored_segments "
                    f"{sum(int(b.get('mirrored_segments', 0)) for b in beats)}"]
        return out


def _dir_bytes(path: Any) -> int:
    total = 0
    try:
        for entry in os.scandir(path):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat().st_size
    except OSError:
        pass
    return total


class MetricsServer:
    """``GET /metrics`` on ``host:port`` in a daemon thread; ``store`` (when auth is on) checks
    HTTP basic credentials."""

    def __init__(self, metrics: Metrics, host: str, port: int, store: Any = None) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if outer.store is not None:
                    try:
                        outer.store.authenticate(
                            self.headers.get("Authorization", "").removeprefix("Basic "))
                    except AuthError:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="vecstore"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = outer.metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.metrics = metrics
        self.store = store
        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="vecstore-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
