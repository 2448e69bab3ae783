"""DataDir: one opened data directory, the storage every role of an embedded or standalone
deployment shares (layout: ../../../shared/ARCHITECTURE.md, "Storage layout")::

    my_data/
      LOCK              the owner process (DataDirLock): one DataDir per directory at a time
      meta.sqlite       the meta store (SqliteMetaStore): the commit point of every change
      wal/<channel>/    one write-ahead log per channel (FileWal)
      segments/         the object store root (LocalObjectStore): segments, delete logs, indexes

Opening takes the LOCK first, so a second opener (another process, or another DataDir in this
process) fails with DataDirLocked naming the owner before touching anything else. close() closes
the WALs and the meta store and releases the LOCK; it is idempotent. Thread-safe.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from vecstore.errors import InvalidArgument
from vecstore.storage.fsutil import text_path
from vecstore.storage.lock import DataDirLock
from vecstore.storage.meta import SqliteMetaStore
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.wal import FileWal, Wal

_CHANNEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_channel(channel: object) -> str:
    """``channel`` if it is a valid WAL channel name, else InvalidArgument."""
    if not isinstance(channel, str) or not _CHANNEL_RE.match(channel):
        raise InvalidArgument(
            f"invalid WAL channel name {channel!r}: use 1-128 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit"
        )
    return channel


class DataDir:
    """An opened data directory. ``role`` is written into LOCK to tell a second opener who owns
    it. ``create``: make the directory if it does not exist (otherwise NotFoundError)."""

    def __init__(self, path: str | os.PathLike[str], *, role: str = "embedded",
                 create: bool = True) -> None:
        self.path = Path(text_path(path, "data directory")).absolute()
        self._mu = threading.Lock()
        self._wals: dict[str, Wal] = {}
        self._closed = False
        # Opens a channel's WAL where it is not a FileWal in this process: ``vecstore serve
        # --streaming-nodes N`` sets it (the WAL is written by a streaming-node process).
        self.wal_opener: Callable[[str], Wal] | None = None
        self.lock = DataDirLock(self.path, role=role, create=create).acquire()
        try:
            self.meta = SqliteMetaStore(str(self.path / "meta.sqlite"))
            try:
                self.objects = LocalObjectStore(self.path / "segments")
            except BaseException:
                self.meta.close()
                raise
        except BaseException:
            self.lock.release()
            raise

    def wal(self, channel: str, **options: object) -> Wal:
        """The WAL of ``channel`` (opened, and recovered, on first use; later calls return the
        same object and must not pass options). Channel names: letters, digits, ``_ . -``."""
        check_channel(channel)
        with self._mu:
            self._check_open()
            wal = self._wals.get(channel)
            if wal is None:
                if self.wal_opener is not None and not options:
                    wal = self.wal_opener(channel)
                else:
                    wal = FileWal(self.path / "wal" / channel, **options)  # type: ignore[arg-type]
                self._wals[channel] = wal
            elif options:
                raise InvalidArgument(
                    f"WAL channel {channel!r} is already open; options apply only to the first "
                    "wal() call"
                )
            return wal

    def close_wal(self, channel: str) -> None:
        """Closes a channel's WAL if it is open (before its directory is removed)."""
        with self._mu:
            wal = self._wals.pop(channel, None)
        if wal is not None:
            wal.close()

    def channels(self) -> list[str]:
        """Channels that have a WAL directory, open or not."""
        wal_root = self.path / "wal"
        if not wal_root.is_dir():
            return []
        names = (p.name for p in wal_root.iterdir() if p.is_dir())
        return sorted(n for n in names if _CHANNEL_RE.match(n))

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgument(f"data directory {self.path} is closed; open a new DataDir")

    def close(self) -> None:
        with self._mu:
            if self._closed:
                return
            self._closed = True
            try:
                for wal in self._wals.values():
                    wal.close()
                self.meta.close()
            finally:
                self.lock.release()

    def __enter__(self) -> DataDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
