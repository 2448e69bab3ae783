"""StreamingNode: the shards (one per collection in the embedded wiring) and their WALs.

Opening a collection's shard recovers its WAL (truncating a torn tail) and replays it from the
collection's checkpoint; everything before the checkpoint is in sealed segments.
"""

from __future__ import annotations

import shutil
import threading
from typing import Any

from vecstore.errors import InvalidArgument
from vecstore.storage.wal import Position
from vecstore.streaming_node.growing import VectorSpec
from vecstore.streaming_node.shard import Shard


class StreamingNode:
    def __init__(self, datadir: Any, tso: Any) -> None:
        self._dir = datadir
        self._tso = tso
        self._mu = threading.Lock()
        self._shards: dict[int, Shard] = {}

    @staticmethod
    def channel(collection_id: int) -> str:
        return f"c{collection_id}"

    def open(self, collection_id: int, specs: dict[str, VectorSpec], pk_kind: str,
             segment_id: int, checkpoint: Position | None) -> Shard:
        with self._mu:
            shard = self._shards.get(collection_id)
            if shard is None:
                wal = self._dir.wal(self.channel(collection_id))
                shard = Shard(wal, self._tso, specs, pk_kind=pk_kind, segment_id=segment_id,
                              checkpoint=checkpoint)
                self._shards[collection_id] = shard
            return shard

    @staticmethod
    def collection_of(channel: str) -> int | None:
        """The collection whose channel is ``channel`` (None for another name)."""
        if channel.startswith("c") and channel[1:].isdigit():
            return int(channel[1:])
        return None

    def reopen(self, collection_id: int, segment_id: int, checkpoint: Position | None) -> Shard:
        """Replaces the collection's shard with one rebuilt from its log: the channel's WAL is
        closed and opened again (on a streaming node: wherever it is assigned now) and replayed
        from ``checkpoint`` into a new growing segment ``segment_id``. Writes still in flight
        on the old shard fail; what they made durable is replayed."""
        old = self.shard(collection_id)
        channel = self.channel(collection_id)
        self._dir.close_wal(channel)
        shard = Shard(self._dir.wal(channel), self._tso, old.specs, pk_kind=old.pk_kind,
                      segment_id=segment_id, checkpoint=checkpoint)
        shard.on_insert = old.on_insert
        with self._mu:
            self._shards[collection_id] = shard
        return shard

    def shard(self, collection_id: int) -> Shard:
        with self._mu:
            shard = self._shards.get(collection_id)
        if shard is None:
            raise InvalidArgument(f"collection {collection_id} has no open shard")
        return shard

    def drop(self, collection_id: int) -> None:
        with self._mu:
            self._shards.pop(collection_id, None)
        wal_dir = self._dir.path / "wal" / self.channel(collection_id)
        self._dir.close_wal(self.channel(collection_id))
        shutil.rmtree(wal_dir, ignore_errors=True)
