"""The parent side of a role process: :class:`RoleProcess` starts ``python -m MODULE --data DIR
--socket PATH --parent PID`` (subprocess, never fork: the parent has threads and gRPC), waits
until its socket answers a ``Heartbeat``, and replaces it (a new generation on a new socket) when
asked. :class:`Heartbeats` is the supervisor thread that notices a dead or hung process.

Every role's log goes to ``DATA/<kind>-<index>.log``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vecstore.errors import InternalError
from vecstore.transport import rpc

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
HEARTBEAT_S = 0.5
# How long a heartbeat may take (VECSTORE_ROLE_HEARTBEAT_TIMEOUT_S overrides it).
HEARTBEAT_TIMEOUT_S = float(os.environ.get(
    "VECSTORE_ROLE_HEARTBEAT_TIMEOUT_S",
    os.environ.get("VECSTORE_QUERY_NODE_HEARTBEAT_TIMEOUT_S", "5")))
MISSED_HEARTBEATS = 3  # in a row: a busy process is slow, not dead


class RoleFailed(InternalError):
    """A role process did not answer (dead, restarting, timed out) or could not do what was
    asked."""


def gone_codes() -> frozenset[Any]:
    """Statuses of a call whose process died, hung or is restarting: worth a restart."""
    import grpc

    c = grpc.StatusCode
    return frozenset({c.UNAVAILABLE, c.CANCELLED, c.DEADLINE_EXCEEDED, c.UNKNOWN})


class RoleProcess:
    """One role process (``kind`` names it in logs and file names). ``lock`` is held while it
    (re)starts; ``generation`` counts its starts, so a caller that saw a failure restarts it only
    if nobody did since."""

    def __init__(self, kind: str, index: int, module: str, service: str,
                 methods: Sequence[str], data_dir: str, sockets: str) -> None:
        self.kind, self.index, self.module = kind, index, module
        self.service, self.methods = service, tuple(methods)
        self.data_dir, self.sockets = data_dir, sockets
        self.lock = threading.Lock()
        self.generation = 0
        self.proc: subprocess.Popen | None = None
        self.channel: Any = None
        self.stub: rpc.Stub | None = None
        self.missed = 0
        self.last_heartbeat: dict[str, Any] = {}  # the newest Heartbeat reply (role counters)
        self._socket = self._logname = ""  # of the newest spawn

    def current(self) -> tuple[int, rpc.Stub | None]:
        """(generation, stub) of the running process, after any restart in progress: a caller
        whose call fails passes the generation to the pool's ``on_failed``/``replace``, so the
        process is replaced only if nobody did since; a None stub means it is not running."""
        with self.lock:
            return self.generation, self.stub

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, stop: threading.Event | None = None) -> None:
        """Starts the process and waits until its socket answers (``lock`` held, or unshared)."""
        self.spawn()
        self.wait_ready(stop)

    def spawn(self) -> None:
        """Starts the process without waiting for it (:meth:`wait_ready` does)."""
        import grpc

        socket = os.path.join(self.sockets, f"{self.kind}-{self.index}-{self.generation}.sock")
        self._logname = os.path.join(self.data_dir, f"{self.kind}-{self.index}.log")
        logfile = open(self._logname, "ab")
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--data", self.data_dir,
                 "--socket", socket, "--parent", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, env=env,
                close_fds=True)
        finally:
            logfile.close()
        self._socket = socket
        self.channel = grpc.insecure_channel(f"unix:{socket}", options=rpc.CHANNEL_OPTIONS)
        self.stub = rpc.Stub(self.channel, self.service, self.methods)

    def wait_ready(self, stop: threading.Event | None = None) -> None:
        """Waits until the spawned process answers a Heartbeat; RoleFailed if it exits first,
        ``stop`` is set or READY_TIMEOUT_S passes."""
        import grpc

        assert self.proc is not None and self.channel is not None and self.stub is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RoleFailed(f"{self.kind} {self.index} exited with status "
                                 f"{self.proc.returncode} while starting (see {self._logname})")
            if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
                self.proc.kill()
                raise RoleFailed(f"{self.kind} {self.index} did not start (see "
                                 f"{self._logname})")
            # A plain call, not grpc.channel_ready_future: that future's polling thread can
            # outlive its timeout and raise "Channel closed" once stop() closes the channel.
            try:
                self.stub.call("Heartbeat", {}, timeout=5)
                break
            except grpc.RpcError:
                time.sleep(0.05)  # the socket is not bound yet: UNAVAILABLE comes at once
        self.missed = 0
        log.info("%s %d started: pid %d on %s", self.kind, self.index, self.proc.pid,
                 self._socket)

    def stop(self, kill: bool) -> None:
        """Stops the process (SIGKILL with ``kill``, else SIGTERM and a wait)."""
        if self.channel is not None:
            self.channel.close()
            self.channel, self.stub = None, None
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self, stop: threading.Event | None = None) -> None:
        """Kills what is left of the process and starts the next generation (``lock`` held)."""
        self.stop(kill=True)
        self.generation += 1
        self.start(stop)


def write_status(data_dir: str, name: str, processes: Sequence[RoleProcess],
                 **extra: Any) -> None:
    """Writes ``DATA/name``: the server's pid and each process's index, pid and generation (and
    ``extra``), replaced atomically: what an operator or a fault test reads to find them."""
    import json

    status = {"server": os.getpid(), **extra,
              "workers": [{"index": p.index, "pid": p.pid, "generation": p.generation}
                          for p in processes]}
    path = os.path.join(data_dir, name)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(status, f)
    os.replace(path + ".tmp", path)


def remove_status(data_dir: str, name: str) -> None:
    try:
        os.remove(os.path.join(data_dir, name))
    except OSError:
        pass


def start_all(processes: Sequence[RoleProcess], stop: threading.Event | None = None) -> None:
    """Starts every process at once, then waits for each (a pool's start costs one process
    start-up, not N)."""
    for p in processes:
        p.spawn()
    for p in processes:
        p.wait_ready(stop)


class RolePool:
    """N processes of one role (``kind``, e.g. "data-node", running ``module``): their sockets in
    a private temporary directory, started at once by :meth:`start`, heartbeaten (a failed one
    goes to :meth:`on_failed`), listed in ``DATA/<status_file>`` and stopped by :meth:`close`.
    Subclasses add what the role's processes hold, and call :meth:`start` last."""

    def __init__(self, kind: str, module: str, service: str, methods: Sequence[str],
                 data_dir: str, count: int, status_file: str) -> None:
        if count < 1:
            raise ValueError(f"at least one {kind} is needed")
        self.kind, self.data_dir, self.status_file = kind, str(data_dir), status_file
        # sun_path holds 108 bytes: sockets go to a short directory of their own ("qn", "sn"...).
        short = "".join(w[0] for w in kind.split("-"))
        self._sockets = tempfile.mkdtemp(prefix=f"vecstore-{short}-")
        self._stop = threading.Event()
        self.restarts = 0
        self.processes = [RoleProcess(kind, i, module, service, methods, self.data_dir,
                                      self._sockets) for i in range(count)]

    def start(self) -> None:
        try:
            start_all(self.processes, self._stop)
        except BaseException:
            self.close()
            raise
        self.write_status()
        Heartbeats(f"vecstore-{self.kind}-heartbeat", self.processes, self.on_failed,
                   self._stop)

    def status(self) -> dict[str, Any]:
        """Fields of the status file besides the processes."""
        return {}

    def write_status(self) -> None:
        if self._stop.is_set():
            return  # closed: the file is gone for good
        write_status(self.data_dir, self.status_file, self.processes, restarts=self.restarts,
                     **self.status())

    def on_failed(self, process: RoleProcess, generation: int) -> None:
        """A process died or stopped answering: replaced by default."""
        self.replace(process, generation)

    def replace(self, process: RoleProcess, generation: int | None = None,
                then: Callable[[RoleProcess], None] | None = None) -> bool:
        """Restarts ``process`` unless someone did since ``generation`` (None: whatever it is)
        and runs ``then(process)`` before anyone else may call it; False if it did nothing."""
        with process.lock:
            if (generation is not None and process.generation != generation) or \
                    self._stop.is_set():
                return False
            log.warning("%s %d (pid %s) failed: restarting it", self.kind, process.index,
                        process.pid)
            process.restart(self._stop)
            self.restarts += 1
            if then is not None:
                then(process)
        self.write_status()
        return True

    def close(self) -> None:
        self._stop.set()
        for p in self.processes:
            with p.lock:
                p.stop(kill=False)
        shutil.rmtree(self._sockets, ignore_errors=True)
        remove_status(self.data_dir, self.status_file)


class Heartbeats:
    """A daemon thread that heartbeats ``processes`` every HEARTBEAT_S and calls
    ``on_failed(process, generation)`` for one whose process exited or that missed
    MISSED_HEARTBEATS in a row (a hung process). ``on_failed`` restarts it (or not); a process
    being restarted (its lock held) is skipped."""

    def __init__(self, name: str, processes: Sequence[RoleProcess],
                 on_failed: Callable[[RoleProcess, int], None], stop: threading.Event) -> None:
        self._processes, self._on_failed, self._stop = processes, on_failed, stop
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import grpc

        while not self._stop.wait(HEARTBEAT_S):
            for p in self._processes:
                gen, proc, stub = p.generation, p.proc, p.stub
                if p.lock.locked() or proc is None or stub is None:
                    continue
                failed = proc.poll() is not None
                if not failed:
                    try:
                        p.last_heartbeat = stub.call("Heartbeat", {},
                                                     timeout=HEARTBEAT_TIMEOUT_S)[0]
                        p.missed = 0
                    except (grpc.RpcError, ValueError):
                        p.missed += 1
                        failed = p.missed >= MISSED_HEARTBEATS
                if failed:
                    try:
                        self._on_failed(p, gen)
                    except Exception:
                        log.exception("could not recover %s %d", p.kind, p.index)
