"""The child side of a role process: ``serve_role`` runs one role's RPC service on a Unix-domain
socket until SIGTERM, or until its parent goes away, so a killed server leaves no orphan. The
role's object has one method per RPC name, taking the decoded (header, arrays) and returning a
header or a (header, arrays) pair.

Every role process takes the same arguments: ``--data DIR --socket PATH [--parent PID]
[--threads N]``. ``call`` turns a method's outcome into a reply or a status: NotFoundError is
NOT_FOUND, a bad request (VecstoreError, ValueError, TypeError, KeyError) INVALID_ARGUMENT, any
other exception INTERNAL, each with the error text as details.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

from vecstore.errors import NotFoundError, VecstoreError
from vecstore.transport import rpc

log = logging.getLogger("vecstore.transport.role")


def call(fn: Callable[[dict, dict], Any], request: bytes, context: Any) -> bytes:
    """Runs ``fn(header, arrays)`` on a decoded request; its result (a header, or a (header,
    arrays) pair) is the encoded reply."""
    import grpc

    try:
        header, arrays = rpc.decode(request)
        out = fn(header, arrays)
        return rpc.encode(*out) if isinstance(out, tuple) else rpc.encode(out)
    except NotFoundError as e:
        context.abort(grpc.StatusCode.NOT_FOUND, str(e))
    except (VecstoreError, ValueError, TypeError, KeyError) as e:
        log.warning("bad request to %s: %s", getattr(fn, "__name__", fn), e)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{type(e).__name__}: {e}")
    except Exception as e:  # reported to the caller, who falls back or retries
        log.exception("%s failed", getattr(fn, "__name__", fn))
        context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
    raise AssertionError("unreachable")


def _watch_parent(parent: int, socket: str, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        if os.getppid() != parent:
            log.warning("parent %d is gone: exiting", parent)
            _unlink(socket)
            try:  # the killed server's socket directory, once its last role process is gone
                os.rmdir(os.path.dirname(socket))
            except OSError:
                pass
            os._exit(0)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def serve_role(role: str, service: str, methods: Sequence[str],
               build: Callable[[str], Any], argv: list[str] | None = None,
               on_stop: Callable[[Any], None] | None = None) -> int:
    """Parses the role arguments, builds the implementation with ``build(data_dir)`` and serves
    it until stopped; ``on_stop(impl)`` runs after the server stopped. Returns the exit status."""
    import grpc

    p = argparse.ArgumentParser(prog=f"vecstore {role}")
    p.add_argument("--data", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--parent", type=int, default=0)
    p.add_argument("--threads", type=int, default=8, help="concurrent calls (default 8)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s {role}[{os.getpid()}] "
                               "%(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.parent:
        threading.Thread(target=_watch_parent, args=(args.parent, args.socket, stop),
                         daemon=True).start()
    _unlink(args.socket)  # a stale socket of a killed process
    impl = build(args.data)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.threads,
                                                    thread_name_prefix=f"{role}-rpc"),
                         options=rpc.CHANNEL_OPTIONS)
    def serving(fn: Callable[[dict, dict], Any]) -> Callable[[bytes, Any], bytes]:
        return lambda request, context: call(fn, request, context)

    handlers = {name: serving(getattr(impl, name)) for name in methods}
    server.add_generic_rpc_handlers((rpc.method_handlers(service, handlers),))
    if not server.add_insecure_port(f"unix:{args.socket}"):
        log.error("cannot listen on %s", args.socket)
        return 2
    server.start()
    log.info("serving %s on %s", args.data, args.socket)
    started = time.monotonic()
    while not stop.wait(0.5):
        pass
    log.info("stopping after %.1f s", time.monotonic() - started)
    server.stop(0)
    if on_stop is not None:
        on_stop(impl)
    _unlink(args.socket)
    return 0
