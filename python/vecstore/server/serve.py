"""``vecstore serve``: serve a data directory over Milvus's gRPC protocol.

``vecstore serve --data DIR [--host 127.0.0.1] [--port 19530]`` opens DIR (every role in this
process), listens on loopback by default, and prints ``vecstore serving DIR on HOST:PORT`` once the
port accepts connections (``--port 0`` picks a free port and prints it). SIGTERM or SIGINT stops
it cleanly: running calls finish, the deployment is closed and the directory released. Exits
with status 2 and a message on stderr when the port is taken, the directory is owned by another
process, or grpcio/pymilvus are missing (``pip install 'vecstore[server]'``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve a data directory over Milvus's gRPC "
                                            "protocol (pymilvus connects to it)")
    p.add_argument("--data", required=True, help="the data directory to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=19530, help="port (default 19530; 0 = any free)")
    p.add_argument("--workers", type=int, default=8, help="gRPC worker threads (default 8)")
    p.set_defaults(fn=run)


def run(args: argparse.Namespace) -> int:
    try:
        import grpc  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as e:
        print(f"vecstore serve: {e.name} is not installed: pip install 'vecstore[server]'",
              file=sys.stderr)
        return 2
    from vecstore.server.server import VecstoreServer

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    server = VecstoreServer(args.data, args.host, args.port, args.workers)
    try:
        server.start()  # VecstoreError (port taken, directory owned): cli.main reports it
        print(f"vecstore serving {args.data} on {server.address}", flush=True)
        while not stop.wait(0.5):
            pass
        print("vecstore serve: stopping", flush=True)
    finally:
        server.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    return 0
