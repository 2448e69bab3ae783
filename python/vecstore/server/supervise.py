"""``vecstore serve --supervise``: restarts the server process when it dies.

The supervisor runs no role itself. It starts ``python -m vecstore serve`` (the same arguments,
without ``--supervise``) as a child process, passes the child's output lines through, and, when
the child dies without being asked to (a signal such as SIGKILL, or an unexpected exit status),
starts a new one on the same port. The new server recovers like any reopen: the meta store, the
mapped segment files and the WAL replay bring back every acknowledged write, and clients
reconnect (pymilvus retries while the port is down). SIGTERM or SIGINT to the supervisor is
passed to the child, and the supervisor exits with the child's status once it has stopped.

Restart policy: exit status 0 means the server stopped on request and ends supervision; status 2
(a start-up refusal: bad option, port taken, directory owned) ends it too when it is the first
start, and is retried for a few seconds after a crash (the dead server's port and directory lock
take a moment to free). More than ``MAX_RESTARTS`` restarts within ``WINDOW_S`` seconds end
supervision with the child's status, so a server that cannot run does not spin.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

MAX_RESTARTS = 10
WINDOW_S = 60.0
RETRY_S = 15.0  # how long a restart may keep hitting status 2 (port or lock still held)


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` answers SIGTERM and SIGINT inside the block; the previous handlers are back
    after it."""
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class RestartBudget:
    """At most MAX_RESTARTS restarts within any WINDOW_S seconds. ``spend(who, status)``
    records one now, says on stderr that ``who`` exited with ``status`` and is restarted, or
    that it gave up, and returns whether it is still within the budget (False: give up, it
    cannot run)."""

    def __init__(self, program: str) -> None:
        self._program = program  # what the messages start with
        self._times: deque[float] = deque()

    def spend(self, who: str, status: int | None) -> bool:
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > WINDOW_S:
            self._times.popleft()
        if len(self._times) > MAX_RESTARTS:
            print(f"{self._program}: {who} restarted {MAX_RESTARTS} times within "
                  f"{WINDOW_S:.0f} s; giving up", file=sys.stderr, flush=True)
            return False
        print(f"{self._program}: {who} exited with status {status}; restarting it",
              file=sys.stderr, flush=True)
        return True


def child_arguments(argv: list[str]) -> list[str]:
    """The ``serve`` arguments for the child: ``argv`` (the supervisor's own command line after
    the program name) without ``--supervise``."""
    if "serve" not in argv:
        raise ValueError("--supervise works from the command line: vecstore serve --supervise ...")
    return [a for a in argv[argv.index("serve"):] if a != "--supervise"]


def _with_port(args: list[str], port: int) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--port":
            skip = True
            continue
        if a.startswith("--port="):
            continue
        out.append(a)
    return [*out, "--port", str(port)]


class Supervisor:
    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.port: int | None = None
        self.stopping = threading.Event()
        self.child: subprocess.Popen | None = None
        self.budget = RestartBudget("vecstore serve --supervise")

    def _start(self) -> subprocess.Popen:
        args = self.args if self.port is None else _with_port(self.args, self.port)
        child = subprocess.Popen([sys.executable, "-m", "vecstore", *args],
                                 stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, args=(child,), daemon=True).start()
        return child

    def _pump(self, child: subprocess.Popen) -> None:
        """Passes the child's output through, learning the port from its readiness line."""
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("vecstore serving") and self.port is None:
                self.port = int(line.rsplit(":", 1)[1])
            sys.stdout.write(line)
            sys.stdout.flush()

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        self.child = self._start()
        first, crashed_at = True, None
        while True:
            code = self.child.wait()
            if self.stopping.is_set():
                return code
            now = time.monotonic()
            if code == 0 or (code == 2 and (first or now - (crashed_at or now) > RETRY_S)):
                return code
            if code != 2:
                crashed_at = now
                if not self.budget.spend("the server", code):
                    return code
            else:
                time.sleep(0.5)  # the dead server's port or lock is not free yet
            first = False
            if self.stopping.is_set():
                return code
            self.child = self._start()


def supervise(argv: list[str]) -> int:
    """Runs the supervisor for the command line ``argv`` (without the program name)."""
    sup = Supervisor(child_arguments(argv))
    with on_stop_signals(sup.on_signal):
        return sup.run()
