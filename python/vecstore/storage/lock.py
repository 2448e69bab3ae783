"""DataDirLock: one owner process per data directory, through ``<dir>/LOCK``.

The owner holds ``flock(LOCK_EX | LOCK_NB)`` on an open file descriptor of ``<dir>/LOCK`` for as
long as it owns the directory, and writes a one-line JSON description of itself into the file::

    {"pid": 4242, "hostname": "box", "started_at": "2026-11-26T10:00:00Z", "role": "embedded"}

A second acquirer — another process, or another ``DataDirLock`` in the same process (flock locks
belong to an open file description, and each ``DataDirLock`` opens its own, so they conflict even
within one process) — gets :class:`DataDirLocked`, whose message names the directory and the owner
read from the file.

The kernel drops the lock when the descriptor is closed, including when the owner dies (even by
SIGKILL), so a crashed owner never leaves a stale lock; the JSON it leaves in the file is only
informative. The descriptor is opened close-on-exec, so programs the owner starts with exec do not
inherit the lock; a child created by a bare ``fork`` does share it until it exits (vecstore starts
processes with spawn or subprocess, never a bare fork). On NFS, Linux emulates flock with POSIX
byte-range locks; keep data directories on local disks.

:meth:`DataDirLock.release` empties the file (while still locked) so it does not name a departed
owner, then unlocks and closes it. Thread safety: acquire and release are guarded by a lock.
POSIX only (``fcntl``).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import threading
from dataclasses import dataclass

from vecstore.errors import InvalidArgument, NotFoundError, StorageError
from vecstore.storage.fsutil import text_path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "LOCK"
_MAX_OWNER_BYTES = 4096


@dataclass(frozen=True)
class LockOwner:
    """Who holds a data directory, as its LOCK file says."""

    pid: int
    hostname: str
    started_at: str
    role: str

    def describe(self) -> str:
        this = " (this process)" if self.pid == os.getpid() and self.hostname == _hostname() else ""
        role = f", role {self.role!r}" if self.role else ""
        return f"pid {self.pid}{this} on host {self.hostname}{role}, since {self.started_at}"


class DataDirLocked(StorageError):
    """The data directory is owned by another process (or another client of this process).

    ``directory`` is the directory; ``owner`` the :class:`LockOwner` read from its LOCK file, or
    ``None`` if the owner had not written it yet.
    """

    code = 2002

    def __init__(
        self,
        message: str,
        *,
        directory: str = "",
        owner: LockOwner | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.directory = directory
        self.owner = owner


def _hostname() -> str:
    return socket.gethostname()


def _read_owner(fd: int) -> LockOwner | None:
    try:
        raw = os.pread(fd, _MAX_OWNER_BYTES, 0)
        data = json.loads(raw.decode("utf-8"))
        return LockOwner(
            pid=int(data["pid"]),
            hostname=str(data["hostname"]),
            started_at=str(data["started_at"]),
            role=str(data.get("role", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # empty (owner starting or released) or not ours: the lock itself decides


class DataDirLock:
    """Exclusive ownership of the data directory ``path`` (see the module docstring).

    ``role``: free-form text saying what the owner is (``"embedded"``, ``"server unix:/tmp/s"``),
    shown to whoever finds the directory locked. ``create``: make ``path`` if it is missing.

    Use as a context manager (``with DataDirLock(path, role="embedded"):``) or call
    :meth:`acquire` and :meth:`release`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, role: str = "", create: bool = False
    ) -> None:
        directory = text_path(path, "data directory")
        if not isinstance(role, str):
            raise InvalidArgument(f"role must be a str, got {type(role).__name__}")
        if fcntl is None:
            raise StorageError(
                "DataDirLock needs fcntl.flock, which this platform lacks; run vecstore on Linux "
                "or macOS"
            )
        self._directory = os.path.abspath(directory)
        self._role = role
        self._create = bool(create)
        self._fd: int | None = None
        self._mutex = threading.Lock()

    @property
    def directory(self) -> str:
        return self._directory

    @property
    def path(self) -> str:
        """The LOCK file."""
        return os.path.join(self._directory, LOCK_FILE)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DataDirLock:
        """Take the lock or raise :class:`DataDirLocked` at once (never waits). Returns self."""
        with self._mutex:
            if self._fd is not None:
                raise InvalidArgument(
                    f"this DataDirLock already holds {self._directory}; release() it first"
                )
            self._prepare_directory()
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as e:
                raise StorageError(
                    f"cannot open {self.path}: {e.strerror}; check the data directory's permissions"
                ) from e
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self._locked_error(_read_owner(fd)) from None
                self._write_owner(fd)
            except BaseException:
                os.close(fd)  # closing also drops the flock if we got it
                raise
            self._fd = fd
            return self

    def _prepare_directory(self) -> None:
        if os.path.isdir(self._directory):
            return
        if os.path.exists(self._directory):
            raise InvalidArgument(
                f"data directory {self._directory} exists but is not a directory; pass a directory"
            )
        if not self._create:
            raise NotFoundError(
                f"data directory {self._directory} does not exist; create it first or pass "
                "create=True"
            )
        try:
            os.makedirs(self._directory, exist_ok=True)
        except OSError as e:
            raise StorageError(
                f"cannot create data directory {self._directory}: {e.strerror}"
            ) from e

    def _write_owner(self, fd: int) -> None:
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        record = {
            "pid": os.getpid(),
            "hostname": _hostname(),
            "started_at": started,
            "role": self._role,
        }
        data = (json.dumps(record) + "\n").encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except OSError as e:
            raise StorageError(
                f"cannot write the owner into {self.path}: {e.strerror}; check the disk"
            ) from e

    def _locked_error(self, owner: LockOwner | None) -> DataDirLocked:
        who = owner.describe() if owner is not None else "a process that is starting up or gone"
        return DataDirLocked(
            f"data directory {self._directory} is in use by another vecstore client ({who}). "
            "Only one process may open a data directory: close the other client "
            "(MilvusClient.close()), or, if it is a server (vecstore serve), connect to its "
            "address instead; if that process has exited, retry (the lock goes with it)",
            directory=self._directory,
            owner=owner,
        )

    def release(self) -> None:
        """Give the directory up. Idempotent."""
        with self._mutex:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                os.ftruncate(fd, 0)  # still locked: nobody reads a half-cleared owner
            except OSError:
                pass  # informative content only; the lock is what matters
            finally:
                os.close(fd)  # drops the flock

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        state = "held" if self._fd is not None else "not held"
        return f"DataDirLock({self._directory!r}, {state})"
