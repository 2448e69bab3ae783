"""Small filesystem helpers shared by the local storage implementations (WAL, object store, meta
store, LOCK): argument checking for paths, and fsync of a directory — the step that makes a
created, renamed or deleted entry survive a crash."""

from __future__ import annotations

import os

from vecstore.errors import InvalidArgument

_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def text_path(value: object, what: str) -> str:
    """``value`` as a non-empty str path; InvalidArgument naming ``what`` otherwise."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgument(f"{what} must be a str or os.PathLike, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"{what} must be a non-empty text path")
    return path


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory, so the entries created, renamed or removed in it are durable."""
    fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
