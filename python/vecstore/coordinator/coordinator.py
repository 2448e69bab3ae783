"""Coordinator: the catalog, the timestamp oracle, and the registry of each collection's sealed
segments, delete logs and WAL checkpoint — the single commit point of a flush.

Meta-store keys beside the catalog's::

    segments/<collection id>/<segment id>   {"prefix", "rows", "bytes"}  a sealed segment
    deletes/<collection id>/<segment id>    {"prefix", "delta": {...}}   its delete log (DeltaInfo)
    checkpoint/<collection id>              {"seq", "offset"}            WAL position to replay from
    indexes/<collection id>/<segment id>/<field>  IndexFileRef            a built index file
    seq/segment                             last issued segment id
    seq/compaction                          last issued compaction job id
    seq/index_build                         last issued index build number
    seq/import                              last issued bulk import job id

Every change of a collection's stored data is one meta-store transaction, and object-store files
that no committed key names are garbage (removed when a deployment opens):

- ``commit_flush`` writes the new segment, its delete log and the moved checkpoint: after a crash
  either all of the flush is visible (and the WAL before the checkpoint may go) or none of it (and
  the WAL still holds every row).
- ``commit_compaction`` removes the input segments and their delete logs and adds the output and
  its delete log, guarded by the inputs still being registered.
- ``commit_index`` adds a segment's index file, guarded by the segment still being registered;
  compaction, truncate and drop remove the index files of the segments they remove.
- ``commit_import`` adds all of a bulk import's segments at once (no delete logs; the WAL
  checkpoint does not move: imported rows never went through the WAL).
- ``commit_truncate`` removes every segment and delete log and moves the checkpoint to the WAL's
  end, so nothing written before it is replayed.

Thread-safe as far as the meta store is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vecstore.coordinator.catalog import Catalog, next_counter
from vecstore.coordinator.tso import TimestampOracle
from vecstore.errors import InvalidArgument
from vecstore.storage.meta import Compare, Delete, DeletePrefix, MetaStore, Put
from vecstore.storage.segment import DeltaInfo
from vecstore.storage.segment.index_file import IndexFileRef
from vecstore.storage.wal import Position


@dataclass(frozen=True)
class SegmentRef:
    id: int
    prefix: str
    rows: int
    nbytes: int = 0  # stored bytes (0 for segments committed before sizes were recorded)

    def encode(self) -> bytes:
        return json.dumps({"prefix": self.prefix, "rows": self.rows,
                           "bytes": self.nbytes}).encode()


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
            out.append(SegmentRef(int(key[len(prefix):]), info["prefix"], info["rows"],
                                  int(info.get("bytes", 0))))
        return sorted(out, key=lambda s: s.id)

    def segment(self, collection_id: int, segment_id: int) -> SegmentRef | None:
        raw = self.meta.get(f"segments/{collection_id}/{segment_id}")
        if raw is None:
            return None
        info = json.loads(raw)
        return SegmentRef(segment_id, info["prefix"], info["rows"], int(info.get("bytes", 0)))

    def next_compaction_id(self) -> int:
        return next_counter(self.meta, "seq/compaction")

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
            Put(f"segments/{collection_id}/{segment.id}", segment.encode()),
            Put(f"checkpoint/{collection_id}",
                json.dumps({"seq": checkpoint.seq, "offset": checkpoint.offset}).encode()),
        ]
        if delete_log is not None:
            ops.append(Put(f"deletes/{collection_id}/{segment.id}",
                           json.dumps({"prefix": delete_log.prefix,
                                       "delta": delete_log.delta.to_dict()}).encode()))
        self.meta.txn([], ops)

    def next_import_id(self) -> int:
        return next_counter(self.meta, "seq/import")

    def commit_import(self, collection_id: int, segments: list[SegmentRef]) -> None:
        """Registers every segment of a bulk import in one transaction (all or none visible)."""
        self.meta.txn([], [Put(f"segments/{collection_id}/{s.id}", s.encode())
                           for s in segments])

    def commit_compaction(self, collection_id: int, inputs: list[int], output: SegmentRef,
                          delete_log: DeleteLogRef | None) -> None:
        """Replaces the segments ``inputs`` (and their delete logs) by ``output`` (and its
        delete log) in one transaction. Raises InvalidArgument, changing nothing, if an input is
        no longer registered (dropped or truncated meanwhile)."""
        keys = [f"segments/{collection_id}/{i}" for i in inputs]
        ops: list = [Delete(k) for k in keys]
        ops += [Delete(f"deletes/{collection_id}/{i}") for i in inputs]
        ops += [DeletePrefix(f"indexes/{collection_id}/{i}/") for i in inputs]
        ops.append(Put(f"segments/{collection_id}/{output.id}", output.encode()))
        if delete_log is not None:
            ops.append(Put(f"deletes/{collection_id}/{output.id}",
                           json.dumps({"prefix": delete_log.prefix,
                                       "delta": delete_log.delta.to_dict()}).encode()))
        if not self.meta.txn([Compare.exists(k) for k in keys], ops).succeeded:
            raise InvalidArgument(
                f"compaction of segments {inputs} of collection {collection_id} lost a race: an "
                "input is gone; its output is discarded, plan again")

    def commit_truncate(self, collection_id: int, checkpoint: Position) -> None:
        """Forgets every segment and delete log of the collection and replays its WAL only from
        ``checkpoint`` on, in one transaction."""
        self.meta.txn([], [DeletePrefix(f"segments/{collection_id}/"),
                           DeletePrefix(f"deletes/{collection_id}/"),
                           DeletePrefix(f"indexes/{collection_id}/"),
                           Put(f"checkpoint/{collection_id}",
                               json.dumps({"seq": checkpoint.seq,
                                           "offset": checkpoint.offset}).encode())])

    def forget_collection(self, collection_id: int) -> None:
        """Drops the registry of a dropped collection (its files are removed by the caller)."""
        self.meta.txn([], [DeletePrefix(f"segments/{collection_id}/"),
                           DeletePrefix(f"deletes/{collection_id}/"),
                           DeletePrefix(f"indexes/{collection_id}/"),
                           DeletePrefix(f"checkpoint/{collection_id}")])

    # ---- index files ----------------------------------------------------------------------

    def index_files(self, collection_id: int) -> list[IndexFileRef]:
        """Every committed index file of the collection's segments."""
        return [IndexFileRef.from_dict(json.loads(v))
                for _, v in self.meta.scan(f"indexes/{collection_id}/")]

    def next_index_build(self) -> int:
        """A build number never issued before (index files are never replaced)."""
        return next_counter(self.meta, "seq/index_build")

    def commit_index(self, collection_id: int, ref: IndexFileRef) -> bool:
        """Registers a built index file; False (nothing changed) if its segment is no longer
        registered (compacted, truncated or dropped while the index was built)."""
        seg = f"segments/{collection_id}/{ref.segment_id}"
        return self.meta.txn([Compare.exists(seg)], [
            Put(f"indexes/{collection_id}/{ref.segment_id}/{ref.field}",
                json.dumps(ref.to_dict()).encode())]).succeeded

    def forget_index(self, collection_id: int, ref: IndexFileRef) -> None:
        """Unregisters one index file (found damaged; the builder makes a new one)."""
        self.meta.txn([], [Delete(f"indexes/{collection_id}/{ref.segment_id}/{ref.field}")])

    def forget_indexes(self, collection_id: int, field: str,
                       keep: str | None = None) -> list[IndexFileRef]:
        """Unregisters the field's index files (drop_index), all of them or those not built for
        the fingerprint ``keep``; returns the refs removed (their files are the caller's to
        delete)."""
        gone = [r for r in self.index_files(collection_id)
                if r.field == field and r.fingerprint != keep]
        if gone:
            self.meta.txn([], [Delete(f"indexes/{collection_id}/{r.segment_id}/{r.field}")
                               for r in gone])
        return gone
