"""Coordinator: the catalog, the timestamp oracle, and the registry of each collection's sealed
segments, delete logs and WAL checkpoint — the single commit point of a flush.

Meta-store keys beside the catalog's::

    segments/<collection id>/<segment id>   {"prefix", "rows"}           a sealed segment
    deletes/<collection id>/<n>             {"prefix", "delta": {...}}   a delete log (DeltaInfo)
    checkpoint/<collection id>              {"seq", "offset"}            WAL position to replay from
    seq/segment                             last issued segment id

``commit_flush`` writes the new segment, its delete log and the moved checkpoint in one
transaction: after a crash either all of the flush is visible (and the WAL before the checkpoint
may go) or none of it (and the WAL still holds every row). Thread-safe as far as the meta store is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vecstore.coordinator.catalog import Catalog, next_counter
from vecstore.coordinator.tso import TimestampOracle
from vecstore.storage.meta import DeletePrefix, MetaStore, Put
from vecstore.storage.segment import DeltaInfo
from vecstore.storage.wal import Position


@dataclass(frozen=True)
class SegmentRef:
    id: int
    prefix: str
    rows: int


@dataclass(frozen=True)
class DeleteLogRef:
    prefix: str
    delta: DeltaInfo


class Coordinator:
    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta
        self.catalog = Catalog(meta)
        self.tso = TimestampOracle(meta)

    def next_segment_id(self) -> int:
        return next_counter(self.meta, "seq/segment")

    def segments(self, collection_id: int) -> list[SegmentRef]:
        prefix = f"segments/{collection_id}/"
        out = []
        for key, raw in self.meta.scan(prefix):
            info = json.loads(raw)
            out.append(SegmentRef(int(key[len(prefix):]), info["prefix"], info["rows"]))
        return sorted(out, key=lambda s: s.id)

    def delete_logs(self, collection_id: int) -> list[DeleteLogRef]:
        out = []
        for _, raw in self.meta.scan(f"deletes/{collection_id}/"):
            info = json.loads(raw)
            out.append(DeleteLogRef(info["prefix"], DeltaInfo.from_dict(info["delta"])))
        return out

    def checkpoint(self, collection_id: int) -> Position | None:
        raw = self.meta.get(f"checkpoint/{collection_id}")
        if raw is None:
            return None
        info = json.loads(raw)
        return Position(info["seq"], info["offset"])

    def commit_flush(self, collection_id: int, segment: SegmentRef,
                     delete_log: DeleteLogRef | None, checkpoint: Position) -> None:
        ops = [
            Put(f"segments/{collection_id}/{segment.id}",
                json.dumps({"prefix": segment.prefix, "rows": segment.rows}).encode()),
            Put(f"checkpoint/{collection_id}",
                json.dumps({"seq": checkpoint.seq, "offset": checkpoint.offset}).encode()),
        ]
        if delete_log is not None:
            ops.append(Put(f"deletes/{collection_id}/{segment.id}",
                           json.dumps({"prefix": delete_log.prefix,
                                       "delta": delete_log.delta.to_dict()}).encode()))
        self.meta.txn([], ops)

    def forget_collection(self, collection_id: int) -> None:
        """Drops the registry of a dropped collection (its files are removed by the caller)."""
        self.meta.txn([], [DeletePrefix(f"segments/{collection_id}/"),
                           DeletePrefix(f"deletes/{collection_id}/"),
                           DeletePrefix(f"checkpoint/{collection_id}")])
