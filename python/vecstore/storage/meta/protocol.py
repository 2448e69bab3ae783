"""The MetaStore protocol: small keyed metadata with revisions, transactions and watches.

The model is etcd's (v3), so that an etcd implementation can replace the embedded SQLite one
without touching a caller:

- keys are ``str`` (non-empty, no NUL, at most 1024 bytes once UTF-8 encoded), values are ``bytes``;
  keys sort by their UTF-8 bytes, which is also Python's ``str`` order;
- the store has one **revision**, a counter that every committed change bumps by exactly one and
  that never goes back (it survives restarts). A transaction that changes several keys commits
  them all at one revision; a transaction that changes nothing (only reads, or deletes of absent
  keys) does not bump it;
- each key keeps ``create_revision`` (the revision that created it since it was last absent),
  ``mod_revision`` (the revision of its last change) and ``version`` (puts since creation; 0 when
  absent), exactly like etcd's ``KeyValue``;
- :meth:`MetaStore.txn` is etcd's ``Txn``: if every :class:`Compare` holds, apply the ``success``
  ops, else the ``failure`` ops, atomically (all of them or none) at one revision;
- :meth:`MetaStore.watch` delivers the changes under a prefix in revision order, optionally
  replaying history from a past revision. History is bounded: a revision older than the store's
  compaction point raises :class:`Compacted`, and the caller reloads with
  :meth:`MetaStore.scan_with_revision` and watches from the revision it returns plus one.

Portability rules that etcd enforces and that the embedded store enforces too, so code tested
embedded behaves the same on etcd: a transaction branch may not put a key twice, nor put and delete
one key, nor put a key under a ``DeletePrefix`` of the same branch.

Everything here is validated when constructed: a bad key, value or operator raises
:class:`~vecstore.errors.InvalidArgument` before any store is touched.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

from vecstore.errors import InvalidArgument, NotFoundError

# Slotted where the running Python supports it (3.10+); 3.10's slots=True also keeps them picklable.
_FROZEN: dict = {"frozen": True, **({"slots": True} if sys.version_info >= (3, 10) else {})}

MAX_KEY_BYTES = 1024

EVENT_PUT = "put"
EVENT_DELETE = "delete"

_TARGETS = ("value", "version", "create_revision", "mod_revision")
_OPERATORS = ("==", "!=", "<", ">")


class Compacted(NotFoundError):
    """A watch asked for revisions that the store no longer keeps (history is bounded).

    ``compact_revision`` is the newest revision that is gone. Recover by reloading the state with
    :meth:`MetaStore.scan_with_revision` and watching again from the returned revision + 1.
    """

    code = 3001

    def __init__(self, message: str, *, compact_revision: int = 0) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


def check_key(key: object, name: str = "key") -> str:
    """Return ``key`` if it is a valid meta store key, else raise InvalidArgument naming the fix."""
    if not isinstance(key, str):
        raise InvalidArgument(
            f"meta store {name} must be a str, got {type(key).__name__}; "
            "decode bytes keys first (key.decode('utf-8'))"
        )
    if not key:
        raise InvalidArgument(
            f"meta store {name} must not be empty; use a path such as 'collections/1'"
        )
    return _check_key_text(key, name)


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if valid for scan/watch ('' means every key), else InvalidArgument."""
    if not isinstance(prefix, str):
        raise InvalidArgument(
            f"meta store prefix must be a str, got {type(prefix).__name__}; use '' for every key"
        )
    return _check_key_text(prefix, "prefix") if prefix else prefix


def _check_key_text(key: str, name: str) -> str:
    if "\x00" in key:
        raise InvalidArgument(f"meta store {name} {key!r} contains a NUL character; remove it")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"meta store {name} {key!r} is not encodable as UTF-8 (it holds a lone surrogate); "
            "use valid text"
        ) from None
    if size > MAX_KEY_BYTES:
        raise InvalidArgument(
            f"meta store {name} is {size} bytes long in UTF-8, over the limit of {MAX_KEY_BYTES}; "
            f"use a shorter {name} (store long names in the value)"
        )
    return key


def check_value(value: object, name: str = "value") -> bytes:
    """Return ``value`` as ``bytes`` (bytes-like objects are copied), else raise InvalidArgument."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        raise InvalidArgument(
            f"meta store {name} must be bytes, got str; encode it first (value.encode('utf-8'))"
        )
    raise InvalidArgument(
        f"meta store {name} must be bytes, got {type(value).__name__}; serialise it first "
        "(for example json.dumps(obj).encode())"
    )


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise InvalidArgument(f"{name} must be >= 0, got {value}")
    return value


@dataclass(**_FROZEN)
class KeyValue:
    """One key with its value and etcd-style revisions."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


@dataclass(**_FROZEN)
class Compare:
    """One condition of a transaction: ``<target of key> <op> <operand>``, as in etcd.

    ``target`` is ``"value"`` (operand: bytes, compared byte-wise), ``"version"``,
    ``"create_revision"`` or ``"mod_revision"`` (operand: int); ``op`` is ``==``, ``!=``, ``<`` or
    ``>``. An absent key has version, create_revision and mod_revision 0, and every ``"value"``
    comparison on an absent key is false (etcd's rule). Prefer the constructors
    :meth:`value_equals`, :meth:`exists`, :meth:`absent`, :meth:`mod_revision_equals`.
    """

    key: str
    target: str
    op: str
    operand: bytes | int

    def __post_init__(self) -> None:
        check_key(self.key)
        if self.target not in _TARGETS:
            raise InvalidArgument(
                f"Compare target {self.target!r} is unknown; use one of {', '.join(_TARGETS)}"
            )
        if self.op not in _OPERATORS:
            raise InvalidArgument(
                f"Compare operator {self.op!r} is unknown; use one of {' '.join(_OPERATORS)}"
            )
        if self.target == "value":
            object.__setattr__(self, "operand", check_value(self.operand, "Compare value"))
        else:
            _check_int(self.operand, f"Compare operand for {self.target}")

    @classmethod
    def value_equals(cls, key: str, value: bytes) -> Compare:
        """The key exists and holds exactly ``value``."""
        return cls(key, "value", "==", value)

    @classmethod
    def exists(cls, key: str) -> Compare:
        """The key exists (any value)."""
        return cls(key, "version", ">", 0)

    @classmethod
    def absent(cls, key: str) -> Compare:
        """The key does not exist."""
        return cls(key, "version", "==", 0)

    @classmethod
    def mod_revision_equals(cls, key: str, revision: int) -> Compare:
        """The key was last changed at ``revision`` (0: the key is absent)."""
        return cls(key, "mod_revision", "==", revision)

    def holds(self, kv: KeyValue | None) -> bool:
        """Evaluate against the key's current state (``None``: absent). For implementations."""
        if self.target == "value":
            if kv is None:
                return False
            actual: bytes | int = kv.value
        elif kv is None:
            actual = 0
        else:
            actual = getattr(kv, self.target)
        operand = self.operand
        if self.op == "==":
            return actual == operand
        if self.op == "!=":
            return actual != operand
        if self.op == "<":
            return actual < operand  # type: ignore[operator]
        return actual > operand  # type: ignore[operator]


@dataclass(**_FROZEN)
class Put:
    """Set ``key`` to ``value``."""

    key: str
    value: bytes

    def __post_init__(self) -> None:
        check_key(self.key)
        object.__setattr__(self, "value", check_value(self.value))


@dataclass(**_FROZEN)
class Delete:
    """Delete ``key`` (not an error if it is absent)."""

    key: str

    def __post_init__(self) -> None:
        check_key(self.key)


@dataclass(**_FROZEN)
class DeletePrefix:
    """Delete every key starting with ``prefix`` (non-empty: dropping everything is not an op)."""

    prefix: str

    def __post_init__(self) -> None:
        if isinstance(self.prefix, str) and not self.prefix:
            raise InvalidArgument(
                "DeletePrefix prefix must not be empty (that would delete every key); "
                "name the subtree, e.g. DeletePrefix('collections/7/')"
            )
        check_prefix(self.prefix)


@dataclass(**_FROZEN)
class Get:
    """Read ``key`` inside the transaction (sees the branch's earlier writes)."""

    key: str

    def __post_init__(self) -> None:
        check_key(self.key)


Op = Union[Put, Delete, DeletePrefix, Get]


@dataclass(**_FROZEN)
class PutResponse:
    """Response to a :class:`Put`: the revision the key now has as its ``mod_revision``."""

    revision: int


@dataclass(**_FROZEN)
class DeleteResponse:
    """Response to a :class:`Delete` or :class:`DeletePrefix`: how many keys were removed."""

    deleted: int


@dataclass(**_FROZEN)
class GetResponse:
    """Response to a :class:`Get`: the key's state, ``None`` if absent."""

    kv: KeyValue | None


OpResponse = Union[PutResponse, DeleteResponse, GetResponse]


@dataclass(**_FROZEN)
class TxnResult:
    """Outcome of :meth:`MetaStore.txn`.

    ``succeeded``: whether every compare held (so the ``success`` branch ran). ``revision``: the
    store revision after the transaction. ``responses``: one per op of the branch that ran, in
    order.
    """

    succeeded: bool
    revision: int
    responses: tuple[OpResponse, ...]


@dataclass(**_FROZEN)
class WatchEvent:
    """One change seen by a watch. ``kind`` is ``"put"`` or ``"delete"``; ``value`` is ``None``
    for a delete; ``revision`` is the revision that committed the change."""

    kind: str
    key: str
    value: bytes | None
    revision: int


def check_ops(ops: object, name: str) -> tuple[Op, ...]:
    """Validate one transaction branch: a sequence of ops writing no key twice (etcd's rule)."""
    if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence):
        raise InvalidArgument(
            f"txn {name} must be a list of Put/Delete/DeletePrefix/Get, got {type(ops).__name__}"
        )
    puts: set[str] = set()
    deletes: set[str] = set()
    prefixes: list[str] = []
    for op in ops:
        if not isinstance(op, (Put, Delete, DeletePrefix, Get)):
            raise InvalidArgument(
                f"txn {name} holds {op!r}, which is not an op; use Put, Delete, DeletePrefix or "
                "Get from vecstore.storage.meta"
            )
        if isinstance(op, (Put, Delete)):
            if op.key in puts or (isinstance(op, Put) and op.key in deletes):
                raise InvalidArgument(
                    f"txn {name} writes key {op.key!r} twice (two Puts, or a Put and a Delete); "
                    "etcd rejects that, so vecstore does too: keep one write per key"
                )
            (puts if isinstance(op, Put) else deletes).add(op.key)
        elif isinstance(op, DeletePrefix):
            prefixes.append(op.prefix)
    for prefix in prefixes:
        for op in ops:
            if isinstance(op, Put) and op.key.startswith(prefix):
                raise InvalidArgument(
                    f"txn {name} puts key {op.key!r} and deletes prefix {prefix!r} that covers it; "
                    "etcd rejects that, so vecstore does too: split it into two transactions"
                )
    return tuple(ops)


def check_compares(compares: object) -> tuple[Compare, ...]:
    """Validate the compares of a transaction."""
    if isinstance(compares, (str, bytes)) or not isinstance(compares, Sequence):
        raise InvalidArgument(
            f"txn compares must be a list of Compare, got {type(compares).__name__}"
        )
    for c in compares:
        if not isinstance(c, Compare):
            raise InvalidArgument(
                f"txn compares holds {c!r}, which is not a Compare; build one with "
                "Compare.value_equals/exists/absent/mod_revision_equals"
            )
    return tuple(compares)


class Watch(Protocol):
    """A stream of :class:`WatchEvent` for one prefix, in revision order (then op order).

    Iterating blocks for the next event and ends when the watch (or its store) is closed.
    """

    def get(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event; ``None`` if none arrived within ``timeout`` seconds or the watch is
        closed. ``timeout=None`` waits until an event arrives or the watch is closed."""
        ...

    def close(self) -> None:
        """Stop the watch; a thread blocked in :meth:`get` or iteration wakes up. Idempotent."""
        ...

    def __iter__(self) -> Iterator[WatchEvent]: ...

    def __enter__(self) -> Watch: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class MetaStore(Protocol):
    """Keyed metadata with revisions, etcd-style transactions and watches.

    Every method validates its arguments first (InvalidArgument, nothing changed). Storage failures
    raise :class:`~vecstore.errors.StorageError`; a damaged store raises
    :class:`~vecstore.errors.CorruptionError`. After :meth:`close` every method raises
    InvalidArgument.
    """

    @property
    def revision(self) -> int:
        """The store's current revision (0 for a store never written)."""
        ...

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None`` if absent."""
        ...

    def get_kv(self, key: str) -> KeyValue | None:
        """The value and revisions of ``key``, or ``None`` if absent."""
        ...

    def put(self, key: str, value: bytes) -> int:
        """Set ``key``; returns the revision of this change."""
        ...

    def delete(self, key: str) -> bool:
        """Delete ``key``; ``True`` if it existed (only then does the revision move)."""
        ...

    def scan(self, prefix: str = "") -> list[tuple[str, bytes]]:
        """Every ``(key, value)`` whose key starts with ``prefix`` (literally), sorted by key."""
        ...

    def scan_with_revision(self, prefix: str = "") -> tuple[list[KeyValue], int]:
        """Like :meth:`scan` with revisions, plus the store revision the snapshot was read at:
        ``watch(prefix, start_revision=revision + 1)`` continues it without a gap."""
        ...

    def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
    ) -> TxnResult:
        """If every compare holds apply ``success``, else ``failure``; atomically, one revision."""
        ...

    def compare_and_put(self, key: str, expected: bytes | None, value: bytes) -> bool:
        """Set ``key`` to ``value`` only if it currently holds ``expected`` (``None``: only if
        absent). ``True`` if it was set."""
        ...

    def watch(self, prefix: str = "", start_revision: int | None = None) -> Watch:
        """Changes to keys under ``prefix`` committed at ``start_revision`` or later (``None``:
        changes after this call). Raises :class:`Compacted` if that history is gone."""
        ...

    def close(self) -> None:
        """Release the store and end its watches. Idempotent."""
        ...
