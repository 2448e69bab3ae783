"""Consistency levels: which timestamp a read must be able to see, as Milvus's proxy decides it.

A read carries a *guarantee timestamp*: every write stamped at or before it must be visible. The
level picks it (shared/MILVUS_API.md §2.5):

- ``Strong``: a fresh timestamp from the TSO (everything written before the request);
- ``Session``: the newest write this proxy acknowledged for the collection (read your writes);
- ``Bounded`` (Milvus's default): now minus the graceful time (5 s);
- ``Eventually``: 1 (no wait).

The read then runs at the shard's serviceable timestamp or the guarantee, whichever is newer. In
the embedded wiring a shard applies every write before acknowledging it and stamps writes under
its lock, so once the proxy holds a snapshot taken under that lock every write stamped before the
guarantee is already applied: reads never wait, and the level only decides how fresh the snapshot
must be. Across processes (server mode) the same guarantee is what a read waits for.
"""

from __future__ import annotations

from enum import IntEnum

from vecstore.errors import InvalidArgument

# Milvus's common.gracefulTime for Bounded reads, as a hybrid-timestamp offset (ms << 18 logical
# bits; see coordinator.tso for the timestamp layout).
GRACEFUL_TIME_MS = 5000
_LOGICAL_BITS = 18


class ConsistencyLevel(IntEnum):
    """pymilvus's ``ConsistencyLevel`` values (``common_pb2.ConsistencyLevel``)."""

    Strong = 0
    Session = 1
    Bounded = 2
    Eventually = 3
    Customized = 4


_BY_NAME = {level.name.lower(): level for level in ConsistencyLevel}


def parse_level(value: object) -> ConsistencyLevel:
    """A level from what pymilvus accepts: a name (any case) or the enum's integer value."""
    if isinstance(value, ConsistencyLevel):
        return value
    if isinstance(value, str) and value.lower() in _BY_NAME:
        return _BY_NAME[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
        return ConsistencyLevel(value)
    raise InvalidArgument(
        f"invalid consistency level {value!r}: use one of Strong, Session, Bounded, Eventually "
        "(or their values 0-3)")


def guarantee_ts(level: ConsistencyLevel, now: int, session_ts: int) -> int:
    """The guarantee timestamp of a read at ``level``; ``now`` is a fresh TSO timestamp and
    ``session_ts`` the newest write acknowledged to this client (0 when none)."""
    if level is ConsistencyLevel.Strong:
        return now
    if level is ConsistencyLevel.Session:
        return session_ts
    if level is ConsistencyLevel.Bounded:
        return max(1, now - (GRACEFUL_TIME_MS << _LOGICAL_BITS))
    if level is ConsistencyLevel.Eventually:
        return 1
    raise InvalidArgument("consistency level Customized needs guarantee_timestamp, which is "
                          "deprecated in Milvus and not supported by vecstore: pick Strong, "
                          "Session, Bounded or Eventually")
