"""VecstoreServer: a gRPC server speaking pymilvus's MilvusService over one data directory.

All roles run in this process (the embedded deployment); the access layer is the gRPC servicer.
Starting opens the data directory (taking its ``LOCK``: :class:`DataDirLocked` if another process
owns it), then binds the address with ``SO_REUSEPORT`` off, so a port another server holds is an
:class:`AddressInUse` error rather than a silently shared port, and writes ``server.json`` (the
address and pid) into the directory. Stopping lets in-flight calls finish (grace period), removes
``server.json`` and closes the deployment (flushing what it holds, releasing the lock).

Message size limits are 512 MiB each way: pymilvus sets no limit on its side, and gRPC's 4 MiB
default would refuse an insert of ~8k 128-d vectors.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent import futures
from typing import Any

from vecstore.errors import VecstoreError

log = logging.getLogger("vecstore.server")

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
SERVER_FILE = "server.json"


class AddressInUse(VecstoreError, OSError):
    """The address to serve on is taken (another server, or another program)."""

    code = 2003


class VecstoreServer:
    def __init__(self, data_dir: str, host: str = "127.0.0.1", port: int = 19530,
                 workers: int = 8) -> None:
        self.data_dir = os.fspath(data_dir)
        self.host = host
        self.port = port
        self.workers = workers
        self._client: Any = None
        self._server: Any = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> int:
        """Opens the directory, binds and starts serving; returns the port (useful with 0)."""
        import grpc
        from pymilvus.grpc_gen import milvus_pb2_grpc

        from vecstore.client import MilvusClient
        from vecstore.server.servicer import Servicer

        # Always the embedded client: MilvusClient(dir) would connect to a live server that owns
        # the directory, where a second server must get DataDirLocked instead.
        client = object.__new__(MilvusClient)
        client.__init__(self.data_dir)
        self._client = client
        try:
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=self.workers,
                                           thread_name_prefix="vecstore-grpc"),
                options=[("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                         ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                         ("grpc.so_reuseport", 0)])
            milvus_pb2_grpc.add_MilvusServiceServicer_to_server(Servicer(self._client), server)
            try:
                bound = server.add_insecure_port(self.address)
            except RuntimeError:
                bound = 0
            if not bound:
                raise AddressInUse(f"cannot listen on {self.address}: the port is in use (or "
                                   "the address is not this machine's); pass another --port")
            self.port = bound
            server.start()
            self._server = server
        except BaseException:
            self._client.close()
            self._client = None
            raise
        self._write_server_file()
        return bound

    def _write_server_file(self) -> None:
        path = os.path.join(self.data_dir, SERVER_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"address": self.address, "pid": os.getpid()}, f)
        os.replace(tmp, path)

    def wait(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Stops accepting calls, waits up to ``grace`` seconds for running ones, then closes
        the embedded deployment. Safe to call twice."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self._client is not None:
            try:
                os.remove(os.path.join(self.data_dir, SERVER_FILE))
            except FileNotFoundError:
                pass
            self._client.close()
            self._client = None
