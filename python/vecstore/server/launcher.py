"""``vecstore serve --proxies N``: the launcher, which runs no role itself. It starts

- the core: ``vecstore serve`` with the same options, listening only on a Unix-domain socket in
  a private directory (the coordinator, the shards and the query/data/streaming-node pools: every
  role that holds state or starts node processes), and
- N proxy processes (:mod:`vecstore.server.proxy_process`) sharing the public ``--host``/``--port``
  (``SO_REUSEPORT``), each passing every call to the core,

prints ``vecstore serving DIR on HOST:PORT`` once all are ready, and restarts any of them that
dies: a proxy on the same port (clients reconnect; the other proxies keep serving meanwhile), the
core on the same socket (it recovers from the meta store, the segment files and the WAL, like any
reopen; calls that arrive meanwhile wait for it in the proxies). ``DATA/proxies.json`` names the
pids. SIGTERM or SIGINT stops the proxies, then the core, and exits with the core's status.

Options: TLS and the message-size limit apply at the proxies; authentication, privileges, the
other limits, metrics and the request log at the core, which sees every call with its caller's
credentials. A non-loopback ``--host`` without ``--auth`` is refused, as without proxies. The
restart policy is ``--supervise``'s (:mod:`vecstore.server.supervise`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from vecstore.server.supervise import RestartBudget, on_stop_signals

READY_TIMEOUT_S = 120.0
STATUS_FILE = "proxies.json"
# Options the launcher handles itself or hands to the proxies only: (name, takes a value).
_NOT_FOR_CORE = {"--host": True, "--port": True, "--tls-cert": True, "--tls-key": True,
                 "--proxies": True, "--supervise": False}


def core_arguments(argv: list[str]) -> list[str]:
    """The core's ``serve`` arguments: ``argv`` (from ``serve`` on) without the options the
    launcher and the proxies take."""
    out, skip = [], False
    for a in argv[argv.index("serve"):]:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in _NOT_FOR_CORE:
            skip = _NOT_FOR_CORE[name] and "=" not in a
            continue
        out.append(a)
    return out


def _free_port(host: str, port: int) -> int:
    """``port`` if nothing listens on it (checked without SO_REUSEPORT, so a port another
    server shares is taken too), or a free one for 0; OSError if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, port))
        return s.getsockname()[1]


class _Child:
    def __init__(self, name: str, argv: list[str], ready: str, log: str | None) -> None:
        self.name, self.argv, self.ready, self.log = name, argv, ready, log
        self.proc: subprocess.Popen | None = None
        self.generation = -1
        self.budget = RestartBudget("vecstore serve")

    def start(self) -> None:
        """Starts it and waits for its readiness line; RuntimeError if it exits first."""
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
        err = open(self.log, "ab") if self.log else None
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", *self.argv],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, text=True, env=env)
        finally:
            if err is not None:
                err.close()
        self.generation += 1
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        for line in self.proc.stdout:
            if line.startswith(self.ready):
                break
            if time.monotonic() > deadline:
                break
        else:
            code = self.proc.wait()
            where = f" (see {self.log})" if self.log else ""
            raise RuntimeError(f"{self.name} exited with status {code} while starting{where}")
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()

    @staticmethod
    def _drain(proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("vecstore "):  # readiness lines are the launcher's to print
                sys.stdout.write(line)
                sys.stdout.flush()

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


class Launcher:
    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.data = os.path.abspath(args.data)
        self.stopping = threading.Event()
        self.sockets = tempfile.mkdtemp(prefix="vecstore-core-")  # sun_path holds 108 bytes
        self.core_socket = os.path.join(self.sockets, "core.sock")
        self.core_args = core_arguments(argv)

    def _children(self, port: int) -> tuple[_Child, list[_Child]]:
        a = self.args
        host = f"[{a.host}]" if ":" in a.host else a.host
        core = _Child("the core", ["vecstore", *self.core_args, "--listen-unix",
                                   self.core_socket, "--public-address", f"{host}:{port}",
                                   *(["--public-tls"] if a.tls_cert else [])],
                      "vecstore serving", None)
        tls = ["--tls-cert", a.tls_cert, "--tls-key", a.tls_key] if a.tls_cert else []
        proxies = [_Child(f"proxy {i}", ["vecstore.server.proxy_process", "--core",
                                         f"unix:{self.core_socket}", "--host", a.host,
                                         "--port", str(port), "--index", str(i),
                                         "--workers", str(a.workers), "--max-message-mb",
                                         str(a.max_message_mb), "--parent", str(os.getpid()),
                                         *tls],
                          "vecstore proxy", os.path.join(self.data, f"proxy-{i}.log"))
                   for i in range(a.proxies)]
        return core, proxies

    def _write_status(self, core: _Child, proxies: list[_Child]) -> None:
        status = {"launcher": os.getpid(), "core": core.proc.pid if core.proc else None,
                  "core_generation": core.generation,
                  "workers": [{"index": i, "pid": p.proc.pid if p.proc else None,
                               "generation": p.generation} for i, p in enumerate(proxies)]}
        path = os.path.join(self.data, STATUS_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(status, f)
        os.replace(path + ".tmp", path)

    def _restart(self, child: _Child) -> bool:
        """Restarts a child that died; False when it restarted too often (give up)."""
        if not child.budget.spend(child.name, child.proc.returncode if child.proc else None):
            return False
        for _ in range(30):  # the dead core's directory lock takes a moment to free
            try:
                child.start()
                return True
            except RuntimeError:
                if self.stopping.is_set():
                    return False
                time.sleep(0.5)
        return False

    def run(self) -> int:
        a = self.args
        os.makedirs(self.data, exist_ok=True)
        try:
            port = _free_port(a.host, a.port)
        except OSError as e:
            print(f"vecstore serve: cannot listen on {a.host}:{a.port}: {e.strerror}; pass "
                  "another --port", file=sys.stderr)
            return 2
        core, proxies = self._children(port)
        try:
            core.start()
        except RuntimeError:
            return core.proc.returncode if core.proc and core.proc.returncode else 2
        try:
            for p in proxies:
                p.start()
        except RuntimeError as e:
            print(f"vecstore serve: {e}", file=sys.stderr)
            for p in proxies:
                p.stop()
            core.stop()
            return 2
        self._write_status(core, proxies)
        host = f"[{a.host}]" if ":" in a.host else a.host
        print(f"vecstore serving {a.data} on {host}:{port}", flush=True)
        code = 0
        while not self.stopping.wait(0.2):
            for child in (core, *proxies):
                if child.proc is not None and child.proc.poll() is not None \
                        and not self.stopping.is_set():
                    if not self._restart(child):
                        self.stopping.set()
                        code = 1
                        break
                    self._write_status(core, proxies)
        for p in proxies:
            p.stop()
        core_code = core.stop()
        shutil.rmtree(self.sockets, ignore_errors=True)
        try:
            os.remove(os.path.join(self.data, STATUS_FILE))
        except OSError:
            pass
        return code or (core_code or 0)

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping.set()


def launch(args: argparse.Namespace, argv: list[str]) -> int:
    """Runs ``vecstore serve --proxies N`` for the parsed ``args`` and the command line ``argv``
    (without the program name)."""
    from vecstore.server.server import is_loopback

    if args.proxies < 0:
        print("vecstore serve: --proxies must be 0 or more", file=sys.stderr)
        return 2
    if "serve" not in argv:
        print("vecstore serve: --proxies works from the command line", file=sys.stderr)
        return 2
    if not (is_loopback(args.host) or args.auth or args.insecure_bind):
        print(f"vecstore serve: refusing to listen on {args.host}, which is not a loopback "
              "address, without authentication: add --auth (with a root password), or "
              "--insecure-bind if the network is trusted", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("vecstore serve: TLS needs both --tls-cert and --tls-key", file=sys.stderr)
        return 2
    launcher = Launcher(args, argv)
    with on_stop_signals(launcher.on_signal):
        return launcher.run()
