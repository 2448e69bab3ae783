"""A proxy process of ``vecstore serve --proxies N``: ``python -m vecstore.server.proxy_process
--core unix:PATH --host H --port P``, one of N stateless processes that share the public port
(``SO_REUSEPORT``: the kernel spreads connections over them) and pass every MilvusService call
to the core process (the coordinator and the nodes' owner) over a Unix-domain socket.

A call goes through unchanged: the request bytes, the caller's metadata (``authorization``,
``dbname``: the core authenticates and checks privileges, so nothing is served that the core
would refuse) and its deadline; the reply or status comes back unchanged. The proxy terminates
TLS (``--tls-cert``/``--tls-key``) and enforces the message-size limit.

A proxy holds no state, so one killed is replaced by the launcher and clients reconnect to the
same port. Calls made while the core restarts wait for it (gRPC ``wait_for_ready``, within the
caller's deadline) instead of failing; a call the core was running when it died fails with
UNAVAILABLE, as it would against a single server.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from typing import Any

log = logging.getLogger("vecstore.server.proxy")

SERVICE_PREFIX = "/milvus.proto.milvus.MilvusService/"
# Core channel: reconnect quickly after a core restart (gRPC's default backoff grows to 120 s).
_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
              ("grpc.max_reconnect_backoff_ms", 1000)]


def _identity(b: bytes) -> bytes:
    return b


class Forwarder:
    """The generic handler: every MilvusService method, passed to the core."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._mu = threading.Lock()
        self._calls: dict[str, Any] = {}

    def _call(self, method: str) -> Any:
        with self._mu:
            call = self._calls.get(method)
            if call is None:
                call = self._channel.unary_unary(method, request_serializer=_identity,
                                                 response_deserializer=_identity)
                self._calls[method] = call
            return call

    def handler(self) -> Any:
        import grpc

        forwarder = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: Any) -> Any:
                if not details.method.startswith(SERVICE_PREFIX):
                    return None  # gRPC answers UNIMPLEMENTED
                call = forwarder._call(details.method)
                return grpc.unary_unary_rpc_method_handler(
                    lambda request, context: forwarder.forward(call, request, context),
                    request_deserializer=_identity, response_serializer=_identity)

        return Handler()

    @staticmethod
    def forward(call: Any, request: bytes, context: Any) -> bytes:
        import grpc

        metadata = [(k, v) for k, v in context.invocation_metadata()
                    if not k.startswith((":", "grpc-")) and k != "user-agent"]
        remaining = context.time_remaining()
        # No deadline reads as ~9.2e18 s, which gRPC's own timeout arithmetic overflows on.
        timeout = remaining if remaining is not None and remaining < 1e9 else None
        try:
            return call(request, metadata=metadata, timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as e:
            context.abort(e.code(), e.details() or "")
        raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    import grpc

    p = argparse.ArgumentParser(prog="vecstore proxy")
    p.add_argument("--core", required=True, help="the core's address (unix:PATH)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--max-message-mb", type=int, default=512)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--parent", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s proxy-{args.index}[{os.getpid()}] "
                               "%(name)s: %(message)s")
    max_bytes = min(args.max_message_mb, 2047) * 1024 * 1024
    sizes = [("grpc.max_send_message_length", max_bytes),
             ("grpc.max_receive_message_length", max_bytes)]
    channel = grpc.insecure_channel(args.core, options=sizes + _RECONNECT)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers,
                                                    thread_name_prefix="vecstore-proxy"),
                         options=[*sizes, ("grpc.so_reuseport", 1)])
    server.add_generic_rpc_handlers((Forwarder(channel).handler(),))
    host = f"[{args.host}]" if ":" in args.host else args.host
    address = f"{host}:{args.port}"
    if args.tls_cert:
        with open(args.tls_cert, "rb") as f:
            cert = f.read()
        with open(args.tls_key, "rb") as f:
            key = f.read()
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        print(f"vecstore proxy: cannot listen on {address}", file=sys.stderr, flush=True)
        return 2
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    server.start()
    print(f"vecstore proxy {args.index} on {address}", flush=True)
    while not stop.wait(0.5):
        if args.parent and os.getppid() != args.parent:
            log.warning("launcher %d is gone: exiting", args.parent)
            break
    server.stop(5).wait()
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
