"""LocalObjectStore: the ObjectStore of the embedded and standalone modes, a local directory.

Object ``a/b/c`` is the file ``<root>/a/b/c``. Publishing follows the data directory's rule
(write temp file, fsync, rename, fsync directory):

- :meth:`~LocalObjectStore.put` writes ``<dir>/.tmp-<pid>-<random>`` in the object's own directory,
  fsyncs it, ``os.replace``-s it over the final name and fsyncs the directory. A reader sees the old
  file or the new one, never a partial one, and after ``put`` returns the object survives power
  loss. Directories that ``put`` creates are fsynced into their parents too.
- :meth:`~LocalObjectStore.put_parts` does the same with several buffers written one after another
  into the temp file (no joined copy); :meth:`~LocalObjectStore.open_writer` hands out the temp
  file as a :class:`LocalObjectWriter` (append, patch, then ``commit`` publishes like ``put``).
- :meth:`~LocalObjectStore.put_if_absent` writes and fsyncs the temp file the same way, then
  ``os.link``-s it to the final name: ``link`` fails with ``EEXIST`` if the name is taken, which
  makes it race-free between threads and processes (and needs a file system with hard links).
- A failed write (``ENOSPC``, ``EIO``, ...) removes its temp file and raises
  :class:`~vecstore.errors.StorageError` naming the key, with the OS ``errno``; no partial object
  becomes visible. Temp files left by a crashed process are never listed or read, and
  :meth:`~LocalObjectStore.remove_temp_files` deletes them.
- :meth:`~LocalObjectStore.delete` unlinks, fsyncs the directory, then removes the directories it
  left empty (like S3, a prefix exists only while objects are under it).

Local-only differences from S3: a key cannot be both an object and the prefix of other objects
(``a`` and ``a/b``: InvalidArgument); keys are checked against symbolic links pointing out of the
root (InvalidArgument), though a link swapped in concurrently is not detected; :meth:`list` reports
regular files only and does not follow directory links.

:meth:`~LocalObjectStore.local_path` exists only on local stores: the segment reader maps local
objects instead of reading them (see :class:`~vecstore.storage.object.protocol.SupportsLocalPath`).

Thread and process safety: the store keeps no state beyond its root, so any number of threads and
processes may use one directory at once.

The cluster wiring is planned on obstore (one API over local disk, S3, GCS and Azure, with
put-if-absent). This local store is written by hand because it must fsync the file *and* its
directory before a put returns, which obstore's ``LocalStore`` does not promise.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterable, Iterator

from vecstore.errors import InvalidArgument, NotFoundError, StorageError
from vecstore.storage.fsutil import fsync_dir, text_path
from vecstore.storage.object.protocol import (
    TEMP_PREFIX,
    BytesLike,
    ObjectMeta,
    check_key,
    check_prefix,
)

logger = logging.getLogger(__name__)

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MAX_WRITE = 1 << 30  # bytes per os.write call (Linux writes at most ~2 GiB at once)
_PUT_ATTEMPTS = 8  # a concurrent delete may remove a directory between mkdir and open


def _as_view(data: object, key: str) -> memoryview:
    """``data`` as a flat byte view without copying; InvalidArgument if it is not bytes-like."""
    if isinstance(data, str):
        raise InvalidArgument(
            f"object {key!r}: data must be bytes-like, got str; encode it first (data.encode())"
        )
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgument(
            f"object {key!r}: data must be bytes-like (bytes, bytearray, memoryview, numpy array), "
            f"got {type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        raise InvalidArgument(
            f"object {key!r}: data is not C-contiguous; pass np.ascontiguousarray(data) or bytes"
        )
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _hint(e: OSError) -> str:
    if e.errno == errno.ENOSPC or e.errno == getattr(errno, "EDQUOT", -1):
        return "the disk is full; free space and retry"
    if e.errno == errno.EIO:
        return "the disk reported an I/O error; check it (dmesg) before retrying"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "check the permissions of the data directory"
    if e.errno == errno.EROFS:
        return "the file system is read-only"
    return "check the disk and the data directory"


def _write_all(fd: int, view: memoryview) -> None:
    # os.write may write less than asked (signals, large sizes): loop until everything is out.
    offset, total = 0, len(view)
    while offset < total:
        written = os.write(fd, view[offset : offset + _MAX_WRITE])
        if written <= 0:
            raise OSError(errno.EIO, "write returned 0 bytes")
        offset += written


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalObjectStore:
    """An :class:`~vecstore.storage.object.ObjectStore` over the directory ``root_dir``.

    ``create``: make ``root_dir`` (and its parents) if missing; with ``create=False`` a missing
    root raises NotFoundError.
    """

    def __init__(self, root_dir: str | os.PathLike[str], *, create: bool = True) -> None:
        root = os.path.abspath(text_path(root_dir, "object store root"))
        if os.path.exists(root) and not os.path.isdir(root):
            raise InvalidArgument(
                f"object store root {root} exists but is not a directory; pass a directory"
            )
        if not os.path.isdir(root):
            if not create:
                raise NotFoundError(
                    f"object store root {root} does not exist; create it or pass create=True"
                )
            self._make_root(root)
        self._root = os.path.realpath(root)
        self._inside = os.path.join(self._root, "")  # every object path starts with this

    @staticmethod
    def _make_root(root: str) -> None:
        missing = []
        path = root
        while not os.path.isdir(path):
            missing.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        try:
            for path in reversed(missing):
                try:
                    os.mkdir(path)
                except FileExistsError:
                    continue
                fsync_dir(os.path.dirname(path))
        except OSError as e:
            err = StorageError(f"cannot create object store root {root}: {e.strerror}; {_hint(e)}")
            err.errno = e.errno
            raise err from e

    @property
    def root(self) -> str:
        """The root directory (absolute, symbolic links resolved)."""
        return self._root

    def __repr__(self) -> str:
        return f"LocalObjectStore({self._root!r})"

    # -- paths ------------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        """The file for a valid ``key``; InvalidArgument if it would resolve outside the root."""
        check_key(key)
        path = os.path.join(self._root, *key.split("/"))
        real = os.path.realpath(path)
        if not real.startswith(self._inside):
            raise InvalidArgument(
                f"object key {key!r} resolves to {real}, outside the store's root {self._root}, "
                "through a symbolic link; remove the link or use another key"
            )
        return path

    def _error(self, action: str, key: str, e: OSError) -> StorageError:
        err = StorageError(
            f"object store {self._root}: {action} {key!r} failed: "
            f"{e.strerror or e} ({errno.errorcode.get(e.errno or 0, e.errno)}); {_hint(e)}"
        )
        err.errno = e.errno
        return err

    def _not_found(self, key: str) -> NotFoundError:
        return NotFoundError(
            f"object {key!r} not found in {self._root}; check the key (list() shows what exists)"
        )

    def _check_writable(self, key: str, path: str) -> None:
        """InvalidArgument if ``key`` collides with a directory or an ancestor is an object."""
        if os.path.isdir(path):
            raise InvalidArgument(
                f"object key {key!r} is a prefix of other objects here; on a local store a key "
                "cannot be both an object and a prefix: choose another key"
            )
        parts = key.split("/")
        current = self._root
        for i, part in enumerate(parts[:-1]):
            current = os.path.join(current, part)
            if os.path.lexists(current) and not os.path.isdir(current):
                taken = "/".join(parts[: i + 1])
                raise InvalidArgument(
                    f"object key {key!r} needs {taken!r} to be a prefix, but {taken!r} is an "
                    "object; on a local store a key cannot be both: choose another key"
                )

    def _ensure_dirs(self, key: str) -> str:
        """Create the key's missing parent directories, each fsynced into its parent."""
        current = self._root
        for part in key.split("/")[:-1]:
            parent, current = current, os.path.join(current, part)
            try:
                os.mkdir(current)
            except FileExistsError:
                continue
            fsync_dir(parent)
        return current

    def _open_temp(self, key: str) -> tuple[int, str, str]:
        """A new temp file beside the object: ``(fd, temp path, directory)``."""
        for attempt in range(_PUT_ATTEMPTS):
            try:
                directory = self._ensure_dirs(key)
                temp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}")
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o644)
                return fd, temp, directory
            except FileNotFoundError as e:
                # A concurrent delete() pruned a directory we had just made: make it again.
                if attempt == _PUT_ATTEMPTS - 1:
                    raise self._error("writing", key, e) from e
            except OSError as e:
                raise self._error("writing", key, e) from e
        raise AssertionError("unreachable")

    def _write_temp(self, key: str, parts: Iterable[object]) -> tuple[str, str]:
        """Write ``parts`` one after another to a fsynced temp file beside the object:
        ``(temp path, directory)``. Each part is written from the caller's buffer (no copy); a
        failure, including one raised while ``parts`` is iterated, removes the temp file."""
        fd, temp, directory = self._open_temp(key)
        try:
            try:
                for part in parts:
                    _write_all(fd, _as_view(part, key))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            self._discard(temp)
            raise self._error("writing", key, e) from e
        except BaseException:
            self._discard(temp)
            raise
        return temp, directory

    def _publish(self, key: str, path: str, temp: str, directory: str) -> None:
        try:
            os.replace(temp, path)
        except OSError as e:
            self._discard(temp)
            raise self._error("publishing", key, e) from e
        except BaseException:
            self._discard(temp)
            raise
        self._sync_dir(directory, key)

    @staticmethod
    def _discard(temp: str) -> None:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("cannot remove temp file %s; remove_temp_files() will", temp)

    # -- writes -----------------------------------------------------------------------------

    def put(self, key: str, data: BytesLike) -> None:
        """Store ``data`` under ``key``, replacing any object there, atomically and durably."""
        path = self._path(key)
        view = _as_view(data, key)
        self._check_writable(key, path)
        temp, directory = self._write_temp(key, (view,))
        self._publish(key, path, temp, directory)

    def put_parts(self, key: str, parts: Iterable[BytesLike]) -> None:
        """Store the concatenation of ``parts`` under ``key``, exactly as :meth:`put` would store
        ``b"".join(parts)`` (atomic, durable), without joining them: each part is written from
        its own buffer. ``parts`` may be a generator; it is consumed once, in order, while the
        temp file is written, so only one part needs to exist at a time. A part that is not
        bytes-like, or an exception raised by the generator, aborts the put (no object, no temp
        file)."""
        path = self._path(key)
        self._check_writable(key, path)
        temp, directory = self._write_temp(key, parts)
        self._publish(key, path, temp, directory)

    def open_writer(self, key: str) -> LocalObjectWriter:
        """A :class:`LocalObjectWriter` that builds the object ``key`` piece by piece in a temp
        file and publishes it, like :meth:`put`, on ``commit()``."""
        path = self._path(key)
        self._check_writable(key, path)
        fd, temp, directory = self._open_temp(key)
        return LocalObjectWriter(self, key, path, fd, temp, directory)

    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        """Store ``data`` only if ``key`` is free; ``True`` if this call created the object.

        Exactly one of several concurrent callers, in any threads or processes, gets ``True``.
        """
        path = self._path(key)
        view = _as_view(data, key)
        self._check_writable(key, path)
        if os.path.lexists(path):
            return False  # cheap early answer; the link below is what decides a race
        temp, directory = self._write_temp(key, (view,))
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError as e:
            err = self._error("publishing", key, e)
            if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                err = StorageError(
                    f"{err.message} (put_if_absent needs a file system with hard links; keep the "
                    "data directory on one, e.g. ext4, xfs, btrfs, apfs)"
                )
                err.errno = e.errno
            raise err from e
        finally:
            self._discard(temp)
        self._sync_dir(directory, key)
        return True

    def _sync_dir(self, directory: str, key: str) -> None:
        try:
            fsync_dir(directory)
        except OSError as e:
            # The object is complete and visible but its directory entry may not survive a crash.
            raise self._error("syncing the directory of", key, e) from e

    def delete(self, key: str) -> bool:
        """Remove the object; ``True`` if it existed. Empty parent directories are removed too."""
        path = self._path(key)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return False  # a directory (prefix) or something else: not an object
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:
            raise self._error("deleting", key, e) from e
        directory = os.path.dirname(path)
        self._sync_dir(directory, key)
        while directory != self._root:
            try:
                os.rmdir(directory)  # fails unless empty: a concurrent put keeps its directory
            except OSError:
                break
            directory = os.path.dirname(directory)
        return True

    # -- reads ------------------------------------------------------------------------------

    def _open(self, key: str) -> int:
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(key) from None
        except OSError as e:
            raise self._error("reading", key, e) from e
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self._not_found(key)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _read(self, fd: int, key: str, start: int, length: int) -> bytes:
        try:
            size = os.fstat(fd).st_size
            length = max(0, min(length, size - start))
            chunks = []
            while length > 0:
                chunk = os.pread(fd, length, start)
                if not chunk:
                    break  # the file shrank under us (only a non-vecstore writer can do that)
                chunks.append(chunk)
                start += len(chunk)
                length -= len(chunk)
        except OSError as e:
            raise self._error("reading", key, e) from e
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def get(self, key: str) -> bytes:
        """The whole object; NotFoundError if missing."""
        fd = self._open(key)
        try:
            return self._read(fd, key, 0, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from offset ``start``; fewer (or none) past the object's end."""
        for name, value in (("start", start), ("length", length)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgument(
                    f"get_range {name} must be an int, got {type(value).__name__}"
                )
            if value < 0:
                raise InvalidArgument(
                    f"get_range {name} must be >= 0, got {value}; ranges are (offset, byte count) "
                    "from the start of the object"
                )
        fd = self._open(key)
        try:
            return self._read(fd, key, start, length)
        finally:
            os.close(fd)

    def head(self, key: str) -> ObjectMeta:
        """Size (bytes) and modification time (Unix seconds); NotFoundError if missing."""
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(key) from None
        except OSError as e:
            raise self._error("reading", key, e) from e
        if not stat.S_ISREG(st.st_mode):
            raise self._not_found(key)
        return ObjectMeta(key, st.st_size, st.st_mtime)

    def size(self, key: str) -> int:
        """Size in bytes; NotFoundError if missing."""
        return self.head(key).size

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return os.path.isfile(self._path(key))

    def local_path(self, key: str) -> str:
        """The file holding object ``key`` (local stores only), for mapping; NotFoundError if
        missing. The file is replaced, never rewritten in place, so a mapping stays consistent."""
        path = self._path(key)
        if not os.path.isfile(path):
            raise self._not_found(key)
        return path

    def list(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix`` (a literal string prefix), sorted. Never lists temp
        files; reports regular files only."""
        check_prefix(prefix)
        directory, _, _ = prefix.rpartition("/")
        base = os.path.join(self._root, *directory.split("/")) if directory else self._root
        if base != self._root and not os.path.realpath(base).startswith(self._inside):
            return []
        start = directory + "/" if directory else ""
        keys = [k for k in self._walk(base, start) if k.startswith(prefix)]
        keys.sort()
        return keys

    def _walk(self, directory: str, key_prefix: str) -> Iterator[str]:
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            return  # removed concurrently, or not there at all
        except OSError as e:
            raise self._error("listing", key_prefix or "/", e) from e
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._walk(entry.path, key_prefix + entry.name + "/")
                elif entry.is_file(follow_symlinks=False):
                    yield key_prefix + entry.name
            except FileNotFoundError:
                continue

    # -- maintenance ------------------------------------------------------------------------

    def remove_temp_files(self, stale_after_s: float = 3600.0) -> int:
        """Delete temp files left by interrupted writes; returns how many were removed.

        A temp file is removed if the process that wrote it (the pid in its name) is gone, or if
        it is older than ``stale_after_s`` seconds (pids get reused). Temp files of live writers
        are kept, so this is safe to call while other threads and processes write.
        """
        if (
            isinstance(stale_after_s, bool)
            or not isinstance(stale_after_s, (int, float))
            or stale_after_s < 0
        ):
            raise InvalidArgument(f"stale_after_s must be a number >= 0, got {stale_after_s!r}")
        now = time.time()
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self._root):
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = os.path.join(dirpath, name)
                pid_text = name[len(TEMP_PREFIX) :].split("-", 1)[0]
                pid = int(pid_text) if pid_text.isdigit() else -1
                try:
                    stale = now - os.lstat(path).st_mtime > stale_after_s
                    if not stale and _pid_alive(pid):
                        continue
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    continue  # its writer published or discarded it meanwhile
                except OSError as e:
                    relative = os.path.relpath(path, self._root)
                    raise self._error("removing temp file", relative, e) from e
        return removed


class LocalObjectWriter:
    """One object of a :class:`LocalObjectStore` being built in place: bytes are appended to a
    temp file beside the object (``write``), may be patched once written (``write_at``, e.g. a
    header whose content is known only at the end), and are published by :meth:`commit` exactly
    as :meth:`LocalObjectStore.put` publishes (fsync, ``os.replace``, fsync of the directory).
    Until then nothing is visible under the key; :meth:`abort` (or leaving a ``with`` block
    without committing, or any failed write) removes the temp file. A crashed process leaves a
    temp file that :meth:`LocalObjectStore.remove_temp_files` deletes.

    Not thread-safe: one writer belongs to one thread. Errors: StorageError naming the key (the
    writer is aborted first); InvalidArgument for a bad ``write_at`` range or a use after
    ``commit``/``abort``.
    """

    def __init__(self, store: LocalObjectStore, key: str, path: str, fd: int, temp: str,
                 directory: str) -> None:
        self.key = key
        self._store, self._path, self._fd = store, path, fd
        self._temp, self._directory = temp, directory
        self._size = 0
        self._state = "open"

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def _check_open(self) -> None:
        if self._state != "open":
            raise InvalidArgument(f"object writer for {self.key!r} is {self._state}; open a new "
                                  "one to write again")

    def write(self, data: BytesLike) -> None:
        """Append ``data`` (bytes-like, written from the caller's buffer)."""
        self._check_open()
        view = _as_view(data, self.key)
        try:
            _write_all(self._fd, view)
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise self._store._error("writing", self.key, e) from e
            raise
        self._size += len(view)

    def write_at(self, offset: int, data: BytesLike) -> None:
        """Overwrite bytes already written, from ``offset``; the object does not grow."""
        self._check_open()
        view = _as_view(data, self.key)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or \
                offset + len(view) > self._size:
            raise InvalidArgument(
                f"object writer for {self.key!r}: write_at({offset!r}, {len(view)} bytes) is "
                f"outside the {self._size} bytes written; write_at only patches written bytes")
        try:
            done = 0
            while done < len(view):
                n = os.pwrite(self._fd, view[done : done + _MAX_WRITE], offset + done)
                if n <= 0:
                    raise OSError(errno.EIO, "pwrite returned 0 bytes")
                done += n
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise self._store._error("writing", self.key, e) from e
            raise

    def commit(self) -> None:
        """Make the object durable and visible under the key (replacing any object there)."""
        self._check_open()
        self._state = "failed"  # until published: any error below leaves nothing to retry
        try:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
        except BaseException as e:
            self._store._discard(self._temp)
            if isinstance(e, OSError):
                raise self._store._error("writing", self.key, e) from e
            raise
        self._store._publish(self.key, self._path, self._temp, self._directory)
        self._state = "committed"

    def abort(self) -> None:
        """Discard what was written (idempotent; nothing after ``commit``)."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._store._discard(self._temp)

    def __enter__(self) -> LocalObjectWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "open":
            self.abort()
