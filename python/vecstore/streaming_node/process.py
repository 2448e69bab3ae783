"""A streaming-node process: ``python -m vecstore.streaming_node.process --data DIR --socket
PATH``, the writer of the WAL channels the server assigns it (``vecstore serve
--streaming-nodes N``; :mod:`vecstore.streaming_node.remote` is the server's side).

A channel's log files are written by exactly one process at a time: the server opens a channel on
one node, and before it opens it on another it kills the first (a dead node writes nothing). An
``Open`` recovers the log (truncates a torn tail: bytes no caller was told were durable) and
starts a session; appends carry the session and a sequence number, and are written in sequence
order whatever order they arrive in (gRPC calls overtake each other), so the log order is the
order the server's shard logged them in. A record is acknowledged once it is durable (fsync,
shared by concurrent appends: group commit).

Methods of ``vecstore.StreamingNode`` (messages: :mod:`vecstore.transport.rpc`; a position is
``[seq, offset]``):

``Heartbeat``  {} -> {"pid", "channels"}
``Open``       {"channel"} -> {"session", "end"}: (re)opens the channel's log, recovered
``Append``     {"channel", "session", "seq", "type", "ts_begin", "ts_end"} + array ``payload``
               -> {"position", "end"} once the record is durable
``Truncate``   {"channel", "session", "position"} -> {"files"}: drops files before position
``Sync``       {"channel", "session"} -> {}
``Close``      {"channel", "session"} -> {}: syncs and closes the channel's log
``SearchGrowing`` {"channel", "session", "segment", "rows", "field", "k", "metric"} + arrays
               ``queries`` (and ``packed``, the allow bits) -> {"served"} + arrays ``rows``,
               ``dist``: a vector search of a growing segment's first ``rows`` rows
``ReleaseGrowing`` {"channel", "session", "segments"} -> {}: forgets those segments' mirrors

An insert's ``Append`` may carry ``growing`` = [segment, first row, {field: [kind, dim]}]: the
node then keeps a copy of the record's vectors, and serves the segment's vector searches from it
(:mod:`vecstore.streaming_node.mirror` says when a mirror is exact and when it is not used).

A call naming a session that is not the channel's current one answers NOT_FOUND (the channel was
reopened, here or elsewhere): its caller must not write.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np

from vecstore.errors import NotFoundError, StorageError
from vecstore.storage.datadir import check_channel
from vecstore.storage.wal import FileWal, Position, RecordType
from vecstore.streaming_node.mirror import GrowingMirrors
from vecstore.transport.role_main import serve_role

SERVICE = "vecstore.StreamingNode"
METHODS = ("Heartbeat", "Open", "Append", "Truncate", "Sync", "Close", "SearchGrowing",
           "ReleaseGrowing")
TURN_TIMEOUT_S = 60.0  # an append waits this long at most for the ones before it to arrive

log = logging.getLogger("vecstore.streaming_node.process")


class _Channel:
    def __init__(self, wal: FileWal, session: int) -> None:
        self.wal, self.session = wal, session
        self.turn = threading.Condition()
        self.next_seq = 0
        self.mirrors = GrowingMirrors()  # this session's copies of growing vectors


def _pos(p: Position) -> list[int]:
    return [p.seq, p.offset]


class WalNode:
    """The channels this process writes, and the RPC methods over them."""

    def __init__(self, data_dir: str) -> None:
        self._root = Path(data_dir) / "wal"
        self._mu = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self._sessions = itertools.count(int.from_bytes(os.urandom(4), "little") << 16)
        self._growing_searches = 0  # served from a mirror (the tests read it by Heartbeat)

    def _channel(self, header: dict) -> _Channel:
        name = str(header["channel"])
        with self._mu:
            ch = self._channels.get(name)
        if ch is None or ch.session != int(header["session"]):
            raise NotFoundError(f"channel {name} session {header['session']} is not open on "
                                f"streaming node {os.getpid()}")
        return ch

    # ---- methods ----------------------------------------------------------------------------

    def Heartbeat(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        with self._mu:
            return {"pid": os.getpid(), "channels": sorted(self._channels),
                    "growing_searches": self._growing_searches,
                    "mirrored_segments": sum(c.mirrors.count()
                                             for c in self._channels.values())}

    def Open(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        name = check_channel(header["channel"])
        with self._mu:
            old = self._channels.pop(name, None)
            if old is not None:
                old.wal.close()
            wal = FileWal(self._root / name)  # recovers: truncates a torn tail
            ch = _Channel(wal, next(self._sessions))
            self._channels[name] = ch
        log.info("opened channel %s (session %d) at %s", name, ch.session, wal.end_position)
        return {"session": ch.session, "end": _pos(wal.end_position)}

    def Append(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        ch = self._channel(header)
        seq = int(header["seq"])
        with ch.turn:
            if not ch.turn.wait_for(lambda: ch.next_seq >= seq, TURN_TIMEOUT_S):
                raise StorageError(f"append {seq} to {header['channel']} waited "
                                   f"{TURN_TIMEOUT_S:.0f} s for append {ch.next_seq}")
            if ch.next_seq != seq:
                raise ValueError(f"append {seq} to {header['channel']} arrived twice")
            try:
                pending = ch.wal.append_pending(arrays["payload"], type=RecordType(header["type"]),
                                                ts_begin=int(header["ts_begin"]),
                                                ts_end=int(header["ts_end"]))
                end = ch.wal.end_position
                if header.get("growing"):
                    self._mirror(ch, header, arrays["payload"])
            finally:  # a failed append poisons the log: later ones fail too, in their turn
                ch.next_seq += 1
                ch.turn.notify_all()
        position = pending.wait()
        return {"position": _pos(position), "end": _pos(end)}

    @staticmethod
    def _mirror(ch: _Channel, header: dict, payload: object) -> None:
        # A copy that fails leaves the segment unmirrored (searched by the server): the write
        # itself stands.
        try:
            ch.mirrors.apply(header["growing"], payload)
        except Exception:  # noqa: BLE001
            log.exception("mirroring an append to %s failed; its segment is not mirrored",
                          header["channel"])

    def SearchGrowing(self, header: dict, arrays: dict) -> tuple[dict, dict]:  # noqa: N802
        got = self._channel(header).mirrors.search(
            int(header["segment"]), int(header["rows"]), str(header["field"]), arrays["queries"],
            int(header["k"]), str(header["metric"]), arrays.get("packed"))
        if got is None:
            return {"served": False}, {}
        with self._mu:
            self._growing_searches += 1
        return {"served": True}, {"rows": np.asarray(got[0], dtype=np.int64),
                                  "dist": np.asarray(got[1], dtype=np.float32)}

    def ReleaseGrowing(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        self._channel(header).mirrors.release([int(s) for s in header["segments"]])
        return {}

    def Truncate(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        ch = self._channel(header)
        seq, offset = header["position"]
        return {"files": ch.wal.truncate_before(Position(int(seq), int(offset)))}

    def Sync(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        self._channel(header).wal.sync()
        return {}

    def Close(self, header: dict, arrays: dict) -> dict:  # noqa: N802
        ch = self._channel(header)
        with self._mu:
            if self._channels.get(str(header["channel"])) is ch:
                del self._channels[str(header["channel"])]
        ch.wal.close()
        log.info("closed channel %s", header["channel"])
        return {}

    def close(self) -> None:
        with self._mu:
            channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            ch.wal.close()


def main(argv: list[str] | None = None) -> int:
    return serve_role("streaming-node", SERVICE, METHODS, WalNode, argv,
                      on_stop=lambda node: node.close())


if __name__ == "__main__":
    sys.exit(main())
