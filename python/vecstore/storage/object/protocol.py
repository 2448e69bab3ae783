"""The ObjectStore protocol: whole blobs under '/'-separated keys, published atomically.

Semantics follow S3 so that the local directory store and an S3-compatible store are
interchangeable:

- a key is a relative '/'-separated path, at most 1024 bytes in UTF-8 (S3's limit), each
  component at most 255 bytes (a file name's limit); no empty, ``.`` or ``..`` component, no
  backslash, no NUL, no leading '/', and no component starting with ``.tmp-`` (reserved for
  in-flight writes);
- :meth:`ObjectStore.put` publishes a whole object atomically: a reader sees the old object or the
  new one, never a part; :meth:`ObjectStore.put_if_absent` does so only if the key is free, and
  exactly one of several concurrent callers (threads or processes) wins;
- :meth:`ObjectStore.put_parts` publishes the concatenation of several buffers (or of what a
  generator yields) exactly as ``put`` would publish their join, without ever joining them; and
  :meth:`ObjectStore.open_writer` builds one object piece by piece (:class:`ObjectWriter`:
  append, patch bytes already written, then ``commit`` publishes atomically and durably, or
  ``abort`` discards). Large objects (vector files) go through these in bounded memory. A store
  without local files (S3) implements the writer by spooling to a local temp file, or with a
  multipart upload when nothing is patched;
- :meth:`ObjectStore.get_range` past the end returns the bytes that exist (possibly none);
- :meth:`ObjectStore.list` takes a literal string prefix (``"seg"`` matches ``"segments/1"``) and
  returns keys sorted by their UTF-8 bytes (Python's ``str`` order).

Bad keys raise :class:`~vecstore.errors.InvalidArgument` before anything is touched; a missing
object raises :class:`~vecstore.errors.NotFoundError`; I/O failures raise
:class:`~vecstore.errors.StorageError` naming the key (with the OS ``errno`` when there is one).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

from vecstore.errors import InvalidArgument

MAX_KEY_BYTES = 1024
MAX_COMPONENT_BYTES = 255
TEMP_PREFIX = ".tmp-"

BytesLike = Union[bytes, bytearray, memoryview]

_FROZEN: dict = {"frozen": True, **({"slots": True} if sys.version_info >= (3, 10) else {})}


def _bad(key: str, problem: str, fix: str, name: str = "key") -> InvalidArgument:
    return InvalidArgument(f"object {name} {key!r} {problem}; {fix}")


def _check_components(text: str, parts: list[str], name: str) -> None:
    for part in parts:
        if part == "":
            raise _bad(
                text,
                "has an empty path component ('//', or a leading or trailing '/')",
                "join components with single '/' and no '/' at either end",
                name,
            )
        if part in (".", ".."):
            raise _bad(
                text,
                f"has a {part!r} component",
                "name the object by its plain relative path (no '.' or '..')",
                name,
            )
        if part.startswith(TEMP_PREFIX):
            raise _bad(
                text,
                f"has a component starting with {TEMP_PREFIX!r}, reserved for in-flight writes",
                "choose another name",
                name,
            )
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise _bad(
                text,
                f"has a component longer than {MAX_COMPONENT_BYTES} bytes",
                "shorten it (file systems limit a name to 255 bytes)",
                name,
            )


def _check_text(text: object, name: str) -> str:
    if not isinstance(text, str):
        raise InvalidArgument(
            f"object {name} must be a str, got {type(text).__name__}; "
            "pass a '/'-separated relative path such as 'segments/1/manifest'"
        )
    if "\x00" in text:
        raise _bad(text, "contains a NUL character", "remove it", name)
    if "\\" in text:
        raise _bad(text, "contains a backslash", "separate components with '/'", name)
    if text.startswith("/"):
        raise _bad(text, "is absolute", "use a path relative to the store's root", name)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad(
            text, "is not encodable as UTF-8 (lone surrogate)", "use valid text", name
        ) from None
    if size > MAX_KEY_BYTES:
        raise _bad(
            text[:40] + "...",
            f"is {size} bytes in UTF-8, over the limit of {MAX_KEY_BYTES}",
            "use a shorter key",
            name,
        )
    return text


def check_key(key: object) -> str:
    """Return ``key`` if it is a valid object key, else raise InvalidArgument naming the fix."""
    text = _check_text(key, "key")
    if not text:
        raise InvalidArgument("object key must not be empty; use a path such as 'segments/1/data'")
    _check_components(text, text.split("/"), "key")
    return text


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if valid for :meth:`ObjectStore.list` ('' lists everything).

    The components before the last '/' follow the key rules; the part after it is a literal
    string prefix of a name (it may be empty, as in ``"segments/"``).
    """
    text = _check_text(prefix, "prefix")
    if "/" in text:
        _check_components(text, text.split("/")[:-1], "prefix")
    return text


@dataclass(**_FROZEN)
class ObjectMeta:
    """What :meth:`ObjectStore.head` reports: size in bytes, last modification (Unix seconds)."""

    key: str
    size: int
    last_modified: float


class ObjectWriter(Protocol):
    """One object being built (see :meth:`ObjectStore.open_writer`); one thread uses it."""

    key: str

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, data: BytesLike) -> None:
        """Append ``data``."""
        ...

    def write_at(self, offset: int, data: BytesLike) -> None:
        """Overwrite bytes already written from ``offset`` (InvalidArgument past ``size``)."""
        ...

    def commit(self) -> None:
        """Publish the object, atomically and durably, replacing any object under the key."""
        ...

    def abort(self) -> None:
        """Discard what was written; nothing becomes visible (idempotent)."""
        ...


class ObjectStore(Protocol):
    """Blobs under '/'-separated keys (see the module docstring for the exact semantics)."""

    def put(self, key: str, data: BytesLike) -> None:
        """Store ``data`` under ``key``, replacing any object there, atomically and durably."""
        ...

    def put_parts(self, key: str, parts: Iterable[BytesLike]) -> None:
        """Store the concatenation of ``parts`` like :meth:`put`, without joining them."""
        ...

    def open_writer(self, key: str) -> ObjectWriter:
        """An :class:`ObjectWriter` for ``key``; nothing is visible before its ``commit``."""
        ...

    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        """Store ``data`` only if ``key`` is free; ``True`` if this call created the object."""
        ...

    def get(self, key: str) -> bytes:
        """The whole object; NotFoundError if missing."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from offset ``start`` (fewer at the end of the object)."""
        ...

    def head(self, key: str) -> ObjectMeta:
        """Size and modification time; NotFoundError if missing."""
        ...

    def size(self, key: str) -> int:
        """Size in bytes; NotFoundError if missing."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the object; ``True`` if it existed."""
        ...


@runtime_checkable
class SupportsLocalPath(Protocol):
    """A store whose objects are files on this machine (only local stores have this).

    The segment reader maps such files instead of reading them: ``isinstance(store,
    SupportsLocalPath)`` tells whether it can.
    """

    def local_path(self, key: str) -> str:
        """The file holding object ``key``; NotFoundError if missing."""
        ...
