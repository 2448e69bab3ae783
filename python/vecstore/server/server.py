"""VecstoreServer: a gRPC server speaking pymilvus's MilvusService over one data directory.

All roles run in this process (the embedded deployment); the access layer is the gRPC servicer.
Starting opens the data directory (taking its ``LOCK``: :class:`DataDirLocked` if another process
owns it), then binds the address with ``SO_REUSEPORT`` off, so a port another server holds is an
:class:`AddressInUse` error rather than a silently shared port, and writes ``server.json`` (the
address and pid) into the directory. Stopping lets in-flight calls finish (grace period), removes
``server.json`` and closes the deployment (flushing what it holds, releasing the lock).

Message size limits are 512 MiB each way by default (``ServerOptions.limits``): pymilvus sets no
limit on its side, and gRPC's 4 MiB default would refuse an insert of ~8k 128-d vectors.

Security (:class:`ServerOptions`): the default host is loopback; a non-loopback address is
refused (:class:`InsecureBind`) unless authentication is on or ``insecure_bind`` says otherwise.
With ``auth`` every call needs a user and password (:mod:`.auth`, :mod:`.access`); root's password
must be configured before the first such start (``root_password``). ``tls_cert``/``tls_key``
serve TLS instead of plaintext. ``metrics_port`` starts the Prometheus endpoint (:mod:`.metrics`).
Every call leaves one JSON line in the request log (``server.log`` in the data directory unless
``log_file`` says otherwise; ``-`` is stderr).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

from vecstore.errors import InvalidArgument, VecstoreError
from vecstore.server.limits import Limits

log = logging.getLogger("vecstore.server")

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
SERVER_FILE = "server.json"
LOG_FILE = "server.log"


@dataclass
class ServerOptions:
    auth: bool = False
    root_password: str | None = None  # sets root's password if it has none yet
    insecure_bind: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    metrics_port: int | None = None  # None: no metrics endpoint; 0: any free port
    metrics_host: str = "127.0.0.1"
    log_file: str | None = None  # None: DATA/server.log; "-": stderr; "": no request log
    # What server.json tells clients to connect to, when it is not this server's own address:
    # the proxies' port, when this process is the core behind ``--proxies N``.
    public_address: str | None = None
    public_tls: bool = False  # the proxies serve TLS


class InsecureBind(VecstoreError, ValueError):
    """A non-loopback address without authentication (and without the explicit override)."""

    code = 1100


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AddressInUse(VecstoreError, OSError):
    """The address to serve on is taken (another server, or another program)."""

    code = 2003


class VecstoreServer:
    def __init__(self, data_dir: str, host: str = "127.0.0.1", port: int = 19530,
                 workers: int = 8, options: ServerOptions | None = None) -> None:
        self.data_dir = os.fspath(data_dir)
        self.host = host
        self.port = port
        self.workers = workers
        self.options = options if options is not None else ServerOptions()
        self.metrics_port: int | None = None
        self._client: Any = None
        self._server: Any = None
        self._metrics_server: Any = None
        self._log_handler: logging.Handler | None = None

    @property
    def local(self) -> bool:
        """Listening on a Unix-domain socket (``host`` "unix:PATH"): the core behind proxies."""
        return self.host.startswith("unix:")

    @property
    def address(self) -> str:
        if self.local:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _check_bind(self) -> None:
        opts = self.options
        for host in (self.host, opts.metrics_host if opts.metrics_port is not None else None):
            if host is None or is_loopback(host) or opts.auth or opts.insecure_bind or \
                    (host is self.host and self.local):
                continue
            raise InsecureBind(f"refusing to listen on {host}, which is not a loopback address, "
                               "without authentication: add --auth (with a root password), or "
                               "--insecure-bind if the network is trusted")
        if bool(opts.tls_cert) != bool(opts.tls_key):
            raise InvalidArgument("TLS needs both --tls-cert and --tls-key")

    def start(self) -> int:
        """Opens the directory, binds and starts serving; returns the port (useful with 0)."""
        import grpc
        from pymilvus.grpc_gen import milvus_pb2_grpc

        from vecstore.client import MilvusClient
        from vecstore.server.access import AccessInterceptor
        from vecstore.server.auth import CredentialStore, RootPasswordMissing
        from vecstore.server.metrics import Metrics, MetricsServer
        from vecstore.server.servicer import Servicer

        self._check_bind()
        opts = self.options
        credentials = None
        if opts.tls_cert:
            with open(opts.tls_cert, "rb") as f:
                cert = f.read()
            with open(opts.tls_key, "rb") as f:
                key = f.read()
            credentials = grpc.ssl_server_credentials([(key, cert)])
        # Always the embedded client: MilvusClient(dir) would connect to a live server that owns
        # the directory, where a second server must get DataDirLocked instead.
        client = object.__new__(MilvusClient)
        client.__init__(self.data_dir)
        self._client = client
        try:
            store = CredentialStore(self.data_dir)
            if opts.root_password and store.init_root(opts.root_password):
                log.info("root password set")
            if opts.auth and not store.has_root():
                raise RootPasswordMissing(
                    "authentication is on but root has no password yet: on the first start "
                    "pass --root-password-file FILE or set VECSTORE_ROOT_PASSWORD")
            self._open_request_log()
            metrics = Metrics(client._dep)
            max_bytes = opts.limits.max_message_bytes
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=self.workers,
                                           thread_name_prefix="vecstore-grpc"),
                interceptors=[AccessInterceptor(store if opts.auth else None, opts.limits,
                                                metrics)],
                options=[("grpc.max_send_message_length", max_bytes),
                         ("grpc.max_receive_message_length", max_bytes),
                         ("grpc.so_reuseport", 0)])
            milvus_pb2_grpc.add_MilvusServiceServicer_to_server(Servicer(self._client, store),
                                                                server)
            try:
                if credentials is not None:
                    bound = server.add_secure_port(self.address, credentials)
                else:
                    bound = server.add_insecure_port(self.address)
            except RuntimeError:
                bound = 0
            if not bound:
                raise AddressInUse(f"cannot listen on {self.address}: the port is in use (or "
                                   "the address is not this machine's); pass another --port")
            if not self.local:
                self.port = bound
            if opts.metrics_port is not None:
                try:
                    self._metrics_server = MetricsServer(metrics, opts.metrics_host,
                                                         opts.metrics_port,
                                                         store if opts.auth else None)
                except OSError as e:
                    raise AddressInUse(f"cannot serve metrics on {opts.metrics_host}:"
                                       f"{opts.metrics_port}: {e.strerror}") from e
                self.metrics_port = self._metrics_server.port
            server.start()
            self._server = server
        except BaseException:
            if self._metrics_server is not None:
                self._metrics_server.close()
                self._metrics_server = None
            self._close_request_log()
            self._client.close()
            self._client = None
            raise
        self._write_server_file()
        return bound

    def _open_request_log(self) -> None:
        from vecstore.server.access import request_log

        where = self.options.log_file
        if where == "":
            return
        if where == "-":
            handler: logging.Handler = logging.StreamHandler(sys.stderr)
        else:
            handler = logging.FileHandler(where or os.path.join(self.data_dir, LOG_FILE))
        handler.setFormatter(logging.Formatter("%(message)s"))
        request_log.addHandler(handler)
        request_log.propagate = False
        if request_log.level == logging.NOTSET:
            request_log.setLevel(logging.INFO)
        self._log_handler = handler

    def _close_request_log(self) -> None:
        from vecstore.server.access import request_log

        if self._log_handler is not None:
            request_log.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def _write_server_file(self) -> None:
        path = os.path.join(self.data_dir, SERVER_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            opts = self.options
            json.dump({"address": opts.public_address or self.address, "pid": os.getpid(),
                       "tls": bool(opts.tls_cert) or opts.public_tls, "auth": opts.auth,
                       "metrics_port": self.metrics_port}, f)
        os.replace(tmp, path)

    def wait(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Stops accepting calls, waits up to ``grace`` seconds for running ones, then closes
        the embedded deployment. Safe to call twice."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self._metrics_server is not None:
            self._metrics_server.close()
            self._metrics_server = None
        self._close_request_log()
        if self._client is not None:
            try:
                os.remove(os.path.join(self.data_dir, SERVER_FILE))
            except FileNotFoundError:
                pass
            self._client.close()
            self._client = None
