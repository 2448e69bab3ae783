"""SqliteMetaStore: the embedded MetaStore, one SQLite file (``<data dir>/meta.sqlite``).

Uses only Python's ``sqlite3``. Settings: WAL journal mode, ``synchronous=FULL`` (a commit returns
only once the WAL is fsynced, so a committed change survives power loss), a busy timeout for
writers in other connections, and ``BEGIN IMMEDIATE`` for every change, so one logical change
(one :meth:`~SqliteMetaStore.txn`) is one SQLite transaction: all of its ops or none. The parent
directory is fsynced once when the file is created.

Tables (format 1)::

    vecstore_meta(name TEXT PRIMARY KEY, value INTEGER)  'format' = 1, 'revision',
                                                        'compact_revision'
    kv(key BLOB PRIMARY KEY, value BLOB, create_revision, mod_revision, version)
    changes(revision, seq, key BLOB, value BLOB NULL)    one row per changed key (NULL: delete)

Keys are stored as their UTF-8 bytes, so ``ORDER BY key`` and prefix ranges are byte-wise (etcd's
order, which is also Python's ``str`` order) and a prefix is matched as a ``key >= prefix AND key <
prefix-successor`` range: no ``LIKE``, so ``%`` and ``_`` in a prefix are ordinary characters.

The revision is read and bumped inside each write transaction, so several ``SqliteMetaStore``
objects (in this process or in others) may share one file and still agree on one revision sequence.

**Watches** read the ``changes`` table, which keeps the last ``history_revisions`` revisions
(older rows are pruned as new revisions commit; the newest pruned revision is
``compact_revision``). A watch is woken at once by commits made through any ``SqliteMetaStore`` of
this process on the same file; changes committed by another process are picked up by polling, at
most every ``poll_interval_s`` seconds, and only while a thread waits in :meth:`SqliteWatch.get`.
Each poll is one indexed range query. A watch that falls more than ``history_revisions`` behind
raises :class:`~vecstore.storage.meta.protocol.Compacted`.

**Thread safety**: one connection per store, guarded by a lock: every method may be called from any
thread; calls are serialised. Watches may be consumed from other threads than the store's users.

``path=":memory:"`` gives a private in-memory store (tests; nothing persists).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from vecstore.errors import (
    CorruptionError,
    InternalError,
    InvalidArgument,
    NotFoundError,
    StorageError,
)
from vecstore.storage.fsutil import fsync_dir, text_path
from vecstore.storage.meta.protocol import (
    EVENT_DELETE,
    EVENT_PUT,
    Compacted,
    Compare,
    Delete,
    DeletePrefix,
    DeleteResponse,
    Get,
    GetResponse,
    KeyValue,
    Op,
    OpResponse,
    Put,
    PutResponse,
    TxnResult,
    WatchEvent,
    check_compares,
    check_key,
    check_ops,
    check_prefix,
)
from vecstore.storage.meta.watch import SqliteWatch, _Notifier, _notifier_for

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MEMORY = ":memory:"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_HEADER_BYTES = 100
_WATCH_BATCH = 1024

_SCHEMA = (
    "CREATE TABLE vecstore_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,"
    " mod_revision INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE changes (revision INTEGER NOT NULL, seq INTEGER NOT NULL, key BLOB NOT NULL,"
    " value BLOB, PRIMARY KEY (revision, seq)) WITHOUT ROWID",
    f"INSERT INTO vecstore_meta VALUES ('format', {FORMAT_VERSION}), ('revision', 0),"
    " ('compact_revision', 0)",
)


def _prefix_range(prefix: str) -> tuple[bytes, bytes | None]:
    """``[lo, hi)`` covering every UTF-8 key starting with ``prefix`` (``hi`` None: unbounded)."""
    lo = prefix.encode("utf-8")
    end = lo.rstrip(b"\xff")
    if not end:
        return lo, None
    return lo, end[:-1] + bytes([end[-1] + 1])


def _range_sql(prefix: str) -> tuple[str, tuple[bytes, ...]]:
    if not prefix:
        return "", ()
    lo, hi = _prefix_range(prefix)
    if hi is None:
        return " AND key >= ?", (lo,)
    return " AND key >= ? AND key < ?", (lo, hi)


def _check_sqlite_header(path: str) -> bool:
    """Whether ``path`` exists and is non-empty; CorruptionError if it is not an SQLite file."""
    try:
        with open(path, "rb") as f:
            header = f.read(_SQLITE_HEADER_BYTES)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        raise InvalidArgument(
            f"meta store path {path} is a directory; pass the database file, e.g. "
            f"{os.path.join(path, 'meta.sqlite')}"
        ) from None
    except OSError as e:
        raise StorageError(f"cannot read meta store {path}: {e.strerror or e}") from e
    if not header:
        return False
    if len(header) < _SQLITE_HEADER_BYTES or not header.startswith(_SQLITE_MAGIC):
        raise CorruptionError(
            f"meta store {path} is not an SQLite database (bad or truncated header): the file is "
            "damaged or is not vecstore's; restore it from a backup or move it away"
        )
    return True


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back after an error without masking it (SQLite may already have rolled back)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed")


class SqliteMetaStore:
    """The embedded :class:`~vecstore.storage.meta.MetaStore` over one SQLite file.

    ``path``: the database file (created if missing; its directory must exist), or ``":memory:"``.
    ``busy_timeout_s``: how long a write waits for another connection's write transaction.
    ``history_revisions``: how many recent revisions watches can replay. ``poll_interval_s``: how
    often a waiting watch looks for changes committed by other processes.

    Raises :class:`~vecstore.errors.CorruptionError` (naming the file) if the file is not a sound
    vecstore meta store, :class:`~vecstore.errors.NotFoundError` if its directory is missing.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_s: float = 10.0,
        history_revisions: int = 10_000,
        poll_interval_s: float = 0.05,
    ) -> None:
        path = text_path(path, "meta store path")
        for name, value in (
            ("busy_timeout_s", busy_timeout_s),
            ("poll_interval_s", poll_interval_s),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgument(f"{name} must be a number > 0, got {value!r}")
        if (
            isinstance(history_revisions, bool)
            or not isinstance(history_revisions, int)
            or history_revisions < 1
        ):
            raise InvalidArgument(
                f"history_revisions must be an int >= 1, got {history_revisions!r}"
            )

        self._memory = path == MEMORY
        self._path = path if self._memory else os.path.abspath(path)
        self._history = history_revisions
        self._poll_interval_s = float(poll_interval_s)
        self._lock = threading.RLock()
        self._watches: weakref.WeakSet[SqliteWatch] = weakref.WeakSet()
        self._conn: sqlite3.Connection | None = None

        created = False
        if not self._memory:
            directory = os.path.dirname(self._path)
            if not os.path.isdir(directory):
                raise NotFoundError(
                    f"directory {directory} of meta store {self._path} does not exist; create it "
                    "first (os.makedirs)"
                )
            created = not _check_sqlite_header(self._path)
        # One notifier per file; an in-memory database is private to its store.
        self._notifier = (
            _Notifier() if self._memory else _notifier_for(os.path.realpath(self._path))
        )

        try:
            conn = sqlite3.connect(
                self._path,
                timeout=float(busy_timeout_s),
                isolation_level=None,  # autocommit; transactions are explicit BEGIN/COMMIT
                check_same_thread=False,  # guarded by self._lock instead
            )
        except sqlite3.Error as e:
            raise StorageError(f"cannot open meta store {self._path}: {e}") from e
        self._conn = conn
        try:
            with self._errors("open"):
                self._open_schema(conn)
        except BaseException:
            self._conn = None
            conn.close()
            raise
        if created:
            try:
                fsync_dir(os.path.dirname(self._path))
            except OSError as e:
                self.close()
                raise StorageError(
                    f"cannot fsync the directory of new meta store {self._path}: {e.strerror or e}"
                ) from e

    def _open_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal" and not self._memory:
            logger.warning("meta store %s: journal_mode is %s, not wal", self._path, mode)
        conn.execute("PRAGMA synchronous = FULL")
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            problems = "; ".join(str(row[0]) for row in check[:3])
            raise CorruptionError(
                f"meta store {self._path} failed its integrity check ({problems}); restore it from "
                "a backup or move it away"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:
                for statement in _SCHEMA:
                    conn.execute(statement)
            elif not {"vecstore_meta", "kv", "changes"} <= tables:
                raise CorruptionError(
                    f"{self._path} is an SQLite database but not a vecstore meta store (tables: "
                    f"{', '.join(sorted(tables))}); pass the data directory's meta.sqlite"
                )
            else:
                row = conn.execute(
                    "SELECT value FROM vecstore_meta WHERE name = 'format'"
                ).fetchone()
                if row is None or not isinstance(row[0], int):
                    raise CorruptionError(
                        f"meta store {self._path} has no format version; restore it from a backup"
                    )
                if row[0] > FORMAT_VERSION:
                    raise StorageError(
                        f"meta store {self._path} has format {row[0]}, newer than this vecstore "
                        f"reads ({FORMAT_VERSION}); upgrade vecstore"
                    )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The database file (absolute), or ``":memory:"``."""
        return self._path

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise InvalidArgument(
                f"meta store {self._path} is closed; open it again with "
                f"SqliteMetaStore({self._path!r})"
            )
        return conn

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate sqlite3 errors into vecstore's, naming the file."""
        try:
            yield
        except sqlite3.OperationalError as e:
            text = str(e)
            if "locked" in text or "busy" in text:
                hint = (
                    "another connection held a write transaction longer than the busy timeout; "
                    "retry, or raise busy_timeout_s"
                )
            elif "full" in text:
                hint = "the disk is full; free space and retry"
            else:
                hint = "check the disk and the file's permissions"
            raise StorageError(f"meta store {self._path}: {what} failed: {text}; {hint}") from e
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError) as e:
            raise InternalError(f"meta store {self._path}: {what} failed: {e}") from e
        except sqlite3.DatabaseError as e:
            raise CorruptionError(
                f"meta store {self._path} is damaged ({e}) during {what}; restore it from a "
                "backup or move it away"
            ) from e

    @contextmanager
    def _read_snapshot(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN")
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @staticmethod
    def _meta(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT value FROM vecstore_meta WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _read_kv(conn: sqlite3.Connection, key: str) -> KeyValue | None:
        row = conn.execute(
            "SELECT value, create_revision, mod_revision, version FROM kv WHERE key = ?",
            (key.encode("utf-8"),),
        ).fetchone()
        if row is None:
            return None
        return KeyValue(key, bytes(row[0]), row[1], row[2], row[3])

    # -- reads ------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The store's current revision (0 for a store never written)."""
        with self._lock, self._errors("reading the revision"):
            return self._meta(self._connection(), "revision")

    @property
    def compact_revision(self) -> int:
        """The newest revision whose changes are no longer kept for watches (0: none pruned)."""
        with self._lock, self._errors("reading the compact revision"):
            return self._meta(self._connection(), "compact_revision")

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None`` if absent."""
        kv = self.get_kv(key)
        return None if kv is None else kv.value

    def get_kv(self, key: str) -> KeyValue | None:
        """The value and revisions of ``key``, or ``None`` if absent."""
        check_key(key)
        with self._lock, self._errors(f"get {key!r}"):
            return self._read_kv(self._connection(), key)

    def scan(self, prefix: str = "") -> list[tuple[str, bytes]]:
        """Every ``(key, value)`` whose key starts with ``prefix`` (literally), sorted by key."""
        kvs, _ = self.scan_with_revision(prefix)
        return [(kv.key, kv.value) for kv in kvs]

    def scan_with_revision(self, prefix: str = "") -> tuple[list[KeyValue], int]:
        """Like :meth:`scan` with revisions, plus the revision the snapshot was read at."""
        check_prefix(prefix)
        where, params = _range_sql(prefix)
        with self._lock, self._errors(f"scan {prefix!r}"):
            conn = self._connection()
            with self._read_snapshot(conn):
                rows = conn.execute(
                    "SELECT key, value, create_revision, mod_revision, version FROM kv"
                    f" WHERE 1{where} ORDER BY key",
                    params,
                ).fetchall()
                revision = self._meta(conn, "revision")
        return [
            KeyValue(bytes(r[0]).decode("utf-8"), bytes(r[1]), r[2], r[3], r[4]) for r in rows
        ], (revision)

    # -- writes -----------------------------------------------------------------------------

    def put(self, key: str, value: bytes) -> int:
        """Set ``key`` to ``value``; returns the revision of this change."""
        return self.txn((), (Put(key, value),)).revision

    def delete(self, key: str) -> bool:
        """Delete ``key``; ``True`` if it existed (only then does the revision move)."""
        response = self.txn((), (Delete(key),)).responses[0]
        assert isinstance(response, DeleteResponse)
        return response.deleted > 0

    def compare_and_put(self, key: str, expected: bytes | None, value: bytes) -> bool:
        """Set ``key`` only if it holds ``expected`` (``None``: only if absent); ``True`` if set."""
        compare = Compare.absent(key) if expected is None else Compare.value_equals(key, expected)
        return self.txn((compare,), (Put(key, value),)).succeeded

    def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
    ) -> TxnResult:
        """If every compare holds apply ``success``, else ``failure``: one SQLite transaction, so
        all of the branch's ops commit at one revision or (on any error) none do."""
        compares = check_compares(compares)
        success_ops = check_ops(success, "success")
        failure_ops = check_ops(failure, "failure")
        with self._lock:
            conn = self._connection()
            with self._errors("transaction"):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    succeeded = all(c.holds(self._read_kv(conn, c.key)) for c in compares)
                    ops = success_ops if succeeded else failure_ops
                    revision = self._meta(conn, "revision")
                    responses, changed = self._apply(conn, ops, revision + 1)
                    if changed:
                        revision += 1
                        self._commit_revision(conn, revision)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        if changed:
            self._notifier.notify()
        return TxnResult(succeeded, revision, tuple(responses))

    def _apply(
        self, conn: sqlite3.Connection, ops: Sequence[Op], revision: int
    ) -> tuple[list[OpResponse], bool]:
        """Apply ``ops`` at ``revision`` inside the caller's transaction, logging each change."""
        responses: list[OpResponse] = []
        seq = 0
        for op in ops:
            if isinstance(op, Put):
                self._apply_put(conn, op, revision, seq)
                seq += 1
                responses.append(PutResponse(revision))
            elif isinstance(op, Delete):
                deleted = self._apply_delete(conn, [op.key.encode("utf-8")], revision, seq)
                seq += deleted
                responses.append(DeleteResponse(deleted))
            elif isinstance(op, DeletePrefix):
                where, params = _range_sql(op.prefix)
                keys = [
                    bytes(row[0])
                    for row in conn.execute(
                        f"SELECT key FROM kv WHERE 1{where} ORDER BY key", params
                    )
                ]
                deleted = self._apply_delete(conn, keys, revision, seq)
                seq += deleted
                responses.append(DeleteResponse(deleted))
            elif isinstance(op, Get):
                responses.append(GetResponse(self._read_kv(conn, op.key)))
            else:  # check_ops admits nothing else
                raise InternalError(f"unknown meta store op {op!r}")
        return responses, seq > 0

    def _apply_put(self, conn: sqlite3.Connection, op: Put, revision: int, seq: int) -> None:
        key = op.key.encode("utf-8")
        old = conn.execute(
            "SELECT create_revision, version FROM kv WHERE key = ?", (key,)
        ).fetchone()
        create_revision, version = (revision, 1) if old is None else (old[0], old[1] + 1)
        conn.execute(
            "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?)",
            (key, op.value, create_revision, revision, version),
        )
        conn.execute("INSERT INTO changes VALUES (?, ?, ?, ?)", (revision, seq, key, op.value))

    @staticmethod
    def _apply_delete(conn: sqlite3.Connection, keys: list[bytes], revision: int, seq: int) -> int:
        deleted = 0
        for key in keys:
            if conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount:
                conn.execute(
                    "INSERT INTO changes VALUES (?, ?, ?, NULL)", (revision, seq + deleted, key)
                )
                deleted += 1
        return deleted

    def _commit_revision(self, conn: sqlite3.Connection, revision: int) -> None:
        conn.execute("UPDATE vecstore_meta SET value = ? WHERE name = 'revision'", (revision,))
        # Keep the change history bounded: drop what is older than the last `history` revisions.
        horizon = revision - self._history
        if horizon > 0 and horizon > self._meta(conn, "compact_revision"):
            conn.execute("DELETE FROM changes WHERE revision <= ?", (horizon,))
            conn.execute(
                "UPDATE vecstore_meta SET value = ? WHERE name = 'compact_revision'", (horizon,)
            )

    # -- watches ----------------------------------------------------------------------------

    def watch(self, prefix: str = "", start_revision: int | None = None) -> SqliteWatch:
        """Changes to keys under ``prefix`` committed at ``start_revision`` or later (``None``:
        only changes committed after this call). Raises Compacted if that history is gone."""
        check_prefix(prefix)
        if start_revision is not None and (
            isinstance(start_revision, bool)
            or not isinstance(start_revision, int)
            or start_revision < 1
        ):
            raise InvalidArgument(
                f"start_revision must be an int >= 1 or None (changes from now on), got "
                f"{start_revision!r}"
            )
        with self._lock, self._errors("watch"):
            conn = self._connection()
            with self._read_snapshot(conn):
                revision = self._meta(conn, "revision")
                compact = self._meta(conn, "compact_revision")
            if start_revision is None:
                start_revision = revision + 1
            elif start_revision <= compact:
                raise self._compacted(start_revision, compact)
            w = SqliteWatch(self, prefix, start_revision)
            self._watches.add(w)
            return w

    def _compacted(self, revision: int, compact: int) -> Compacted:
        return Compacted(
            f"meta store {self._path} no longer keeps revision {revision} (history is kept after "
            f"revision {compact}); reload with scan_with_revision() and watch from its "
            "revision + 1",
            compact_revision=compact,
        )

    def _changes_since(
        self, prefix: str, revision: int, seq: int
    ) -> list[tuple[int, WatchEvent]] | None:
        """Up to a batch of ``(seq, event)`` at position ``(revision, seq)`` or later under
        ``prefix``, in order; ``None`` once the store is closed."""
        where, params = _range_sql(prefix)
        with self._lock:
            conn = self._conn
            if conn is None:
                return None
            with self._errors("watch"), self._read_snapshot(conn):
                rows = conn.execute(
                    "SELECT revision, seq, key, value FROM changes"
                    f" WHERE (revision, seq) >= (?, ?){where}"
                    f" ORDER BY revision, seq LIMIT {_WATCH_BATCH}",
                    (revision, seq, *params),
                ).fetchall()
                compact = self._meta(conn, "compact_revision")
            if revision <= compact:
                raise self._compacted(revision, compact)
        return [
            (
                row_seq,
                WatchEvent(
                    EVENT_PUT if value is not None else EVENT_DELETE,
                    bytes(key).decode("utf-8"),
                    None if value is None else bytes(value),
                    rev,
                ),
            )
            for rev, row_seq, key, value in rows
        ]

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and end this store's watches. Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
            watches = list(self._watches)
        for w in watches:
            w.close()
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as e:
                raise StorageError(f"closing meta store {self._path} failed: {e}") from e

    def __enter__(self) -> SqliteMetaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"SqliteMetaStore({self._path!r}, {state})"
