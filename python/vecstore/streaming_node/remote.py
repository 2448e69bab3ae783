"""StreamingNodes: the WAL writers of ``vecstore serve --streaming-nodes N``, N processes
(:mod:`vecstore.streaming_node.process`) that each write the log of the channels assigned to
them, and :class:`RemoteWal`, the ``Wal`` a shard in the server process writes through.

What stays in the server. The shard (its growing segment, deletes, timestamps, log order) lives
in the server process, as in embedded mode: a record is applied to it once its streaming node
acknowledged it durable, so a read never sees a row the log does not hold. Replay reads the
channel's files directly (read-only, the same files; see :func:`~vecstore.storage.wal.read_log`).

Growing data on the node. With each insert the shard names the growing segment and first row of
the record's rows; the node keeps a copy of their vectors and serves the vector searches of that
segment (:meth:`RemoteWal.search_growing`, :mod:`vecstore.streaming_node.mirror`), with the
server's allow mask (filter, visibility, deletes), as the query nodes do for sealed segments.
Filters, queries and output fields read the server's copy. A segment the node cannot serve
exactly (its earlier rows were replayed after a recovery, or an append failed) is searched by the
server, so the answer is the same either way.

Faults. A heartbeat thread watches every node. One that exited, or missed heartbeats in a row,
is killed (so it can write nothing more: one writer per channel), its channels are reassigned to
the live node holding the fewest (or to its own replacement when it was the only one), and for
each channel ``on_channel_lost(channel)`` runs: the deployment rebuilds that shard from the
collection's checkpoint by replaying the log (:meth:`EmbeddedDeployment.recover_channel`). Then
the node is restarted. A write whose record was in flight fails with StorageError, not
acknowledged (it may or may not have reached the log, as with any write that fails); every
acknowledged record is durable in the log and comes back with the replay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vecstore.errors import InvalidArgument, StorageError
from vecstore.storage.wal import Position, RecordType, WalEntry, read_log
from vecstore.storage.wal.log import payload_parts
from vecstore.streaming_node.process import METHODS, SERVICE
from vecstore.transport import rpc
from vecstore.transport.role_process import RolePool, RoleProcess, gone_codes

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 60.0
SEARCH_TIMEOUT_S = 10.0  # a growing search the node does not answer by then runs in the server
# Vector dtypes a growing search can send to a node (the RPC's arrays are plain numpy types).
_REMOTE_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float16, np.int8, np.uint8))
RECOVER_TRIES = 20
RECOVER_PAUSE_S = 0.5
STATUS_FILE = "streaming_nodes.json"  # in the data directory: pids, and channel assignment


def _position(p: list[int]) -> Position:
    return Position(int(p[0]), int(p[1]))


class _Pending:
    """An append in flight: ``wait()`` returns its position once the node made it durable."""

    def __init__(self, wal: RemoteWal, future: Any) -> None:
        self._wal, self._future = wal, future

    def wait(self) -> Position:
        import grpc

        try:
            header, _ = rpc.decode(self._future.result())
        except grpc.RpcError as e:
            raise self._wal._failed(e) from None
        self._wal._advance(_position(header["end"]))
        return _position(header["position"])


class RemoteWal:
    """One channel's log, written by a streaming-node process (implements ``Wal``). Appends are
    sent without waiting (each carries a sequence number: the node writes them in the order they
    were made here); ``wait()`` on the returned record waits for its durability. The first failed
    call fails every later one, as a FileWal's does, until the channel is recovered."""

    serves_growing = True  # a Shard passes ``growing=`` to its inserts' appends (module docstring)

    def __init__(self, nodes: StreamingNodes, channel: str, node: RoleProcess) -> None:
        self.channel = channel
        self._nodes, self._node = nodes, node
        self._generation = node.generation
        self._stub = node.stub
        if self._stub is None:
            raise StorageError(f"streaming node {node.index} is not running")
        self._dir = Path(nodes.data_dir) / "wal" / channel
        try:
            header, _ = self._stub.call("Open", {"channel": channel}, timeout=CALL_TIMEOUT_S)
        except Exception as e:  # grpc.RpcError, or ValueError from a channel closed meanwhile
            raise StorageError(f"streaming node {node.index} could not open WAL channel "
                               f"{channel}: {e}") from e
        self._session = int(header["session"])
        self._end = _position(header["end"])
        self._mu = threading.Lock()
        self._seq = 0
        self._error: StorageError | None = None
        self._closed = False

    @property
    def node(self) -> int:
        """The index of the streaming node writing this channel."""
        return self._node.index

    def _header(self, **more: Any) -> dict[str, Any]:
        return {"channel": self.channel, "session": self._session, **more}

    def _failed(self, e: Exception) -> StorageError:
        """Records the first failure (every later call raises it) and has the pool recover."""
        import grpc

        with self._mu:
            first = self._error is None
            if first:
                what = f"{e.code().name} {e.details()}" if isinstance(e, grpc.RpcError) else e
                self._error = StorageError(
                    f"WAL channel {self.channel} on streaming node {self._node.index} failed "
                    f"({what}); the channel is recovered from its log: retry the write")
            error = self._error
        if first:
            gone = isinstance(e, ValueError) or (isinstance(e, grpc.RpcError)
                                                 and e.code() in gone_codes())
            self._nodes.suspect(self._node, self._generation, self.channel, gone)
        return error

    def _advance(self, end: Position) -> None:
        with self._mu:
            if (end.seq, end.offset) > (self._end.seq, self._end.offset):
                self._end = end

    def append_pending(self, payload: object, *, type: RecordType | int = RecordType.INSERT,  # noqa: A002
                       ts_begin: int = 0, ts_end: int | None = None,
                       growing: list | None = None) -> _Pending:
        """Sends the record; ``growing`` = [segment id, first row, {field: [kind, dim]}] for an
        insert whose vectors the node should keep for growing searches."""
        try:
            rtype = RecordType(type)
        except ValueError:
            raise InvalidArgument(f"unknown WAL record type {type!r}") from None
        ts_end = ts_begin if ts_end is None else ts_end
        parts = payload_parts(payload)
        with self._mu:
            if self._closed:
                raise InvalidArgument(f"WAL channel {self.channel} is closed")
            if self._error is not None:
                raise self._error
            seq = self._seq
            self._seq += 1
            try:
                # Sent in sequence order from under the lock, though the node would reorder.
                future = self._stub.future(
                    "Append", self._header(seq=seq, type=int(rtype), ts_begin=int(ts_begin),
                                           ts_end=int(ts_end), growing=growing),
                    {"payload": parts}, timeout=CALL_TIMEOUT_S)
            except ValueError as e:  # the channel to the node was closed: it is being replaced
                closed: ValueError | None = e
            else:
                closed = None
        if closed is not None:
            raise self._failed(closed)
        return _Pending(self, future)

    def append(self, payload: object, *, type: RecordType | int = RecordType.INSERT,  # noqa: A002
               ts_begin: int = 0, ts_end: int | None = None) -> Position:
        return self.append_pending(payload, type=type, ts_begin=ts_begin, ts_end=ts_end).wait()

    def search_growing(self, segment: int, rows: int, field: str, queries: np.ndarray, k: int,
                       metric: str, allow: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray] | None:
        """``GrowingView.search_rows`` of the segment's first ``rows`` rows, run by the node from
        its copy; None when the node cannot serve it (not mirrored, failed, or a dtype the RPC
        does not carry): the caller then searches its own rows."""
        import grpc

        with self._mu:
            if self._error is not None or self._closed:
                return None
        q = np.asarray(queries)
        if q.dtype not in _REMOTE_DTYPES:
            return None
        arrays: dict[str, Any] = {"queries": np.ascontiguousarray(q)}
        if allow is not None:
            arrays["packed"] = np.packbits(allow, bitorder="little")
        try:
            header, out = self._stub.call(
                "SearchGrowing", self._header(segment=int(segment), rows=int(rows), field=field,
                                              k=int(k), metric=metric),
                arrays, timeout=SEARCH_TIMEOUT_S)
        except (grpc.RpcError, ValueError) as e:
            # Not a write: the heartbeats decide about the node; this search runs here.
            log.debug("growing search on streaming node %d: %s", self._node.index, e)
            return None
        if not header.get("served"):
            return None
        return out["rows"], out["dist"]

    def release_growing(self, segments: list[int]) -> None:
        """The node may forget these segments' copies (sealed, or dropped by a truncation)."""
        with self._mu:
            if self._error is not None or self._closed or not segments:
                return
        try:
            self._stub.call("ReleaseGrowing", self._header(segments=[int(s) for s in segments]),
                            timeout=CALL_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - a node that died took its copies with it
            log.debug("releasing growing segments on streaming node %d: %s", self._node.index, e)

    def read(self, from_position: Position | None = None) -> Iterator[WalEntry]:
        """The channel's records from ``from_position``, read from its files in this process."""
        return read_log(self._dir, from_position)

    @property
    def end_position(self) -> Position:
        with self._mu:
            return self._end

    def _call(self, method: str, **more: Any) -> dict[str, Any]:
        import grpc

        with self._mu:
            if self._error is not None:
                raise self._error
        try:
            return self._stub.call(method, self._header(**more), timeout=CALL_TIMEOUT_S)[0]
        except (grpc.RpcError, ValueError) as e:
            raise self._failed(e) from None

    def truncate_before(self, position: Position) -> int:
        if not isinstance(position, Position):
            raise InvalidArgument(f"position must be a Position, got {type(position).__name__}")
        return int(self._call("Truncate", position=[position.seq, position.offset])["files"])

    def sync(self) -> None:
        self._call("Sync")

    def close(self) -> None:
        """Syncs and closes the channel on its node; a failed node has nothing left to close."""
        with self._mu:
            if self._closed:
                return
            self._closed = True
            failed = self._error is not None
        if not failed:
            try:
                self._stub.call("Close", self._header(), timeout=CALL_TIMEOUT_S)
            except Exception as e:  # the node died meanwhile: its channels are recovered
                log.warning("closing WAL channel %s on streaming node %d: %s", self.channel,
                            self._node.index, e)
        self._nodes.forget(self.channel, self._node.index)


class StreamingNodes(RolePool):
    """N streaming-node processes and the channels each writes (module docstring).
    ``on_channel_lost(channel)``: set by the deployment, rebuilds the channel's shard."""

    def __init__(self, data_dir: str, count: int) -> None:
        super().__init__("streaming-node", "vecstore.streaming_node.process", SERVICE, METHODS,
                         data_dir, count, STATUS_FILE)
        self._mu = threading.Lock()  # guards the assignment and the down set
        self._assigned: dict[str, int] = {}  # channel -> node index
        self._down: set[int] = set()
        self.on_channel_lost: Callable[[str], None] | None = None
        self.reassigned = 0  # channels moved off a failed node
        self.start()

    def status(self) -> dict[str, Any]:
        return {"channels": self.assignment(), "reassigned": self.reassigned}

    def assignment(self) -> dict[str, int]:
        """channel -> index of the node writing it."""
        with self._mu:
            return dict(self._assigned)

    def open(self, channel: str) -> RemoteWal:
        """The channel's log, opened (recovered) on its node; a channel not assigned yet goes to
        the live node writing the fewest."""
        with self._mu:
            index = self._assigned.get(channel)
            if index is None or index in self._down:
                live = [n.index for n in self.processes if n.index not in self._down] or \
                    [n.index for n in self.processes]
                load = {i: 0 for i in live}
                for i in self._assigned.values():
                    if i in load:
                        load[i] += 1
                index = min(live, key=lambda i: (load[i], i))
                self._assigned[channel] = index
        node = self.processes[index]
        with node.lock:  # waits for a restart in progress
            wal = RemoteWal(self, channel, node)
        self.write_status()
        return wal

    def forget(self, channel: str, index: int) -> None:
        """The channel was closed on node ``index`` (dropped, or about to be reopened)."""
        with self._mu:
            if self._assigned.get(channel) == index:
                del self._assigned[channel]
        self.write_status()

    def suspect(self, node: RoleProcess, generation: int, channel: str, gone: bool) -> None:
        """A call to ``node`` failed: if it looked dead (``gone``), the node is checked and
        replaced; otherwise (it answered with an error) just ``channel`` is recovered."""
        if self._stop.is_set():
            return
        def recover() -> None:
            try:
                if gone:
                    self.on_failed(node, generation)
                else:
                    self._lost([channel])
            except Exception:
                if not self._stop.is_set():
                    log.exception("could not recover after a failed call to streaming node %d",
                                  node.index)

        threading.Thread(target=recover, name="vecstore-sn-recover", daemon=True).start()

    def on_failed(self, node: RoleProcess, generation: int) -> None:
        """Fences the node, moves its channels (their shards rebuilt), then replaces it."""
        with node.lock:
            if node.generation != generation or self._stop.is_set() or node.index in self._down:
                return
            log.warning("streaming node %d (pid %s) failed: killing it, reassigning its "
                        "channels", node.index, node.pid)
            node.stop(kill=True)  # fenced: a dead process writes no more
            with self._mu:
                self._down.add(node.index)
                lost = sorted(c for c, i in self._assigned.items() if i == node.index)
                for c in lost:
                    del self._assigned[c]
                alone = len(self._down) == len(self.processes)
        if alone:  # nowhere to move them: the replacement takes them
            self._restart(node)
        self._lost(lost)
        self.reassigned += len(lost)
        if node.index in self._down:
            self._restart(node)

    def _restart(self, node: RoleProcess) -> None:
        def up(n: RoleProcess) -> None:
            with self._mu:
                self._down.discard(n.index)

        self.replace(node, then=up)

    def _lost(self, channels: list[str]) -> None:
        callback = self.on_channel_lost
        for c in channels:
            # Tried again while it fails (the node it moved to may die too): a channel left
            # unrecovered would refuse every write until the server restarts.
            for attempt in range(RECOVER_TRIES):
                if callback is None or self._stop.is_set():
                    return
                try:
                    callback(c)
                    break
                except Exception:
                    log.exception("could not recover WAL channel %s (try %d of %d)", c,
                                  attempt + 1, RECOVER_TRIES)
                    self._stop.wait(RECOVER_PAUSE_S)


def factory(count: int) -> Callable[[Any], StreamingNodes]:
    """An EmbeddedDeployment streaming-node factory: ``count`` processes over its directory."""
    def build(dep: Any) -> StreamingNodes:
        return StreamingNodes(str(dep.datadir.path), count)

    return build
