"""``vecstore serve``: serve a data directory over Milvus's gRPC protocol.

``vecstore serve --data DIR [--host 127.0.0.1] [--port 19530]`` opens DIR (every role in this
process), listens on loopback by default, and prints ``vecstore serving DIR on HOST:PORT`` once the
port accepts connections (``--port 0`` picks a free port and prints it). SIGTERM or SIGINT stops
it cleanly: running calls finish, the deployment is closed and the directory released. Exits
with status 2 and a message on stderr when the port is taken, the directory is owned by another
process, or grpcio/pymilvus are missing (``pip install 'vecstore[server]'``).

Security and operations (README "Server"): ``--auth`` (with ``--root-password-file FILE`` or
``VECSTORE_ROOT_PASSWORD`` on the first start), ``--tls-cert``/``--tls-key``, ``--insecure-bind``
(a non-loopback ``--host`` without ``--auth`` is refused otherwise), the limits
``--max-message-mb``, ``--max-insert-rows``, ``--max-expr-kb``, ``--metrics-port`` (Prometheus
text on loopback), ``--log-file`` (one JSON line per request; default ``DATA/server.log``) and
``--log-level``.

``--query-nodes N`` (default 0: the query node runs in the server process) runs the sealed
segments' vector searches in N worker processes (:mod:`vecstore.query_node.remote`), restarted
when they die. ``--streaming-nodes N`` (default 0) has N streaming-node processes write the WAL
channels (:mod:`vecstore.streaming_node.remote`), reassigned when one dies. ``--data-nodes N``
(default 0) runs index builds and compaction merges in N data-node processes
(:mod:`vecstore.data_node.remote`), restarted when one dies, the interrupted work run again.
``--proxies N`` (default 0) serves the port from N proxy processes in front of a core process
(:mod:`vecstore.server.launcher`); docs/server.md maps every process and fault.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from vecstore.server.supervise import on_stop_signals


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve a data directory over Milvus's gRPC "
                                            "protocol (pymilvus connects to it)")
    p.add_argument("--data", required=True, help="the data directory to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=19530, help="port (default 19530; 0 = any free)")
    p.add_argument("--workers", type=int, default=8, help="gRPC worker threads (default 8)")
    p.add_argument("--auth", action="store_true",
                   help="require a user and password on every call (Milvus's scheme)")
    p.add_argument("--root-password-file", metavar="FILE",
                   help="sets root's password on the first start (or VECSTORE_ROOT_PASSWORD); "
                        "ignored once root has one")
    p.add_argument("--insecure-bind", action="store_true",
                   help="allow a non-loopback --host without --auth")
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain): serve TLS")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument("--max-message-mb", type=int, default=512,
                   help="largest gRPC message each way, MiB (default 512)")
    p.add_argument("--max-insert-rows", type=int, default=1_000_000,
                   help="most rows per insert/upsert call (default 1000000)")
    p.add_argument("--max-expr-kb", type=int, default=1024,
                   help="longest filter expression, KiB (default 1024)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics on this port (default: off; 0 = any free)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address of the metrics endpoint (default 127.0.0.1)")
    p.add_argument("--log-file", default=None,
                   help="request log, one JSON line per call (default DATA/server.log; "
                        "'-' = stderr, '' = none)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="level of the server's logs; request lines are INFO (default INFO)")
    p.add_argument("--query-nodes", type=int, default=0, metavar="N",
                   help="run sealed-segment searches in N query-node worker processes "
                        "(default 0: in the server process)")
    p.add_argument("--streaming-nodes", type=int, default=0, metavar="N",
                   help="write the WAL channels in N streaming-node processes, reassigned "
                        "when one dies (default 0: in the server process)")
    p.add_argument("--data-nodes", type=int, default=0, metavar="N",
                   help="run index builds and compaction merges in N data-node processes, "
                        "restarted when one dies (default 0: in the server process)")
    p.add_argument("--proxies", type=int, default=0, metavar="N",
                   help="serve the port from N proxy processes in front of a core process, "
                        "each restarted when it dies (default 0: this process serves it)")
    p.add_argument("--listen-unix", metavar="PATH", help=argparse.SUPPRESS)  # the core's socket
    p.add_argument("--public-address", help=argparse.SUPPRESS)  # its proxies' host:port
    p.add_argument("--public-tls", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--supervise", action="store_true",
                   help="run the server as a child process and restart it if it dies (a crash "
                        "or SIGKILL); it recovers from the WAL and segment files")
    p.set_defaults(fn=run)


def run(args: argparse.Namespace) -> int:
    if args.proxies and not args.listen_unix:
        from vecstore.server.launcher import launch

        return launch(args, sys.argv[1:])
    if args.supervise:
        from vecstore.server.supervise import supervise

        try:
            return supervise(sys.argv[1:])
        except ValueError as e:
            print(f"vecstore serve: {e}", file=sys.stderr)
            return 2
    try:
        import grpc  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as e:
        print(f"vecstore serve: {e.name} is not installed: pip install 'vecstore[server]'",
              file=sys.stderr)
        return 2
    from vecstore.server.limits import Limits
    from vecstore.server.server import ServerOptions, VecstoreServer

    root_password = os.environ.get("VECSTORE_ROOT_PASSWORD") or None
    if args.root_password_file:
        try:
            with open(args.root_password_file, encoding="utf-8") as f:
                root_password = f.read().strip()
        except OSError as e:
            print(f"vecstore serve: cannot read --root-password-file: {e}", file=sys.stderr)
            return 2
    for name in ("max_message_mb", "max_insert_rows", "max_expr_kb"):
        if getattr(args, name) < 1:
            print(f"vecstore serve: --{name.replace('_', '-')} must be at least 1",
                  file=sys.stderr)
            return 2
    for name in ("query_nodes", "streaming_nodes", "data_nodes"):
        if getattr(args, name) < 0:
            print(f"vecstore serve: --{name.replace('_', '-')} must be 0 or more",
                  file=sys.stderr)
            return 2
    from vecstore.transport import embedded

    if args.query_nodes:
        from vecstore.query_node.remote import factory as query_nodes

        embedded.QUERY_NODE_FACTORY = query_nodes(args.query_nodes)
    if args.streaming_nodes:
        from vecstore.streaming_node.remote import factory as streaming_nodes

        embedded.STREAMING_NODE_FACTORY = streaming_nodes(args.streaming_nodes)
    if args.data_nodes:
        from vecstore.data_node.remote import factory as data_nodes

        embedded.DATA_NODE_FACTORY = data_nodes(args.data_nodes)
    level = getattr(logging, args.log_level)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("vecstore").setLevel(level)
    logging.getLogger("vecstore.server.requests").setLevel(level)
    options = ServerOptions(
        auth=args.auth, root_password=root_password, insecure_bind=args.insecure_bind,
        tls_cert=args.tls_cert, tls_key=args.tls_key,
        limits=Limits(max_message_bytes=min(args.max_message_mb, 2047) * 1024 * 1024,
                      max_insert_rows=args.max_insert_rows,
                      max_expr_bytes=args.max_expr_kb * 1024),
        metrics_port=args.metrics_port, metrics_host=args.metrics_host, log_file=args.log_file,
        public_address=args.public_address, public_tls=args.public_tls)

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    host = f"unix:{args.listen_unix}" if args.listen_unix else args.host
    with on_stop_signals(on_signal):
        server = VecstoreServer(args.data, host, args.port, args.workers, options)
        try:
            server.start()  # VecstoreError (port taken, directory owned): cli.main reports it
            if server.metrics_port is not None:
                print(f"vecstore metrics on http://{args.metrics_host}:"
                      f"{server.metrics_port}/metrics", file=sys.stderr, flush=True)
            print(f"vecstore serving {args.data} on {server.address}", flush=True)
            while not stop.wait(0.5):
                pass
            print("vecstore serve: stopping", flush=True)
        finally:
            server.stop()
    return 0
