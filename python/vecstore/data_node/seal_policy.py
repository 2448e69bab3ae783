"""When a growing segment is sealed, and which sealed segments count as small.

Milvus seals a growing segment when it nears ``dataCoord.segment.maxSize`` (times
``sealProportion``) or when it has lived ``maxLife`` / idled ``maxIdleTime``. vecstore keeps the
same two triggers with embedded-sized defaults: 64 MiB of row data or 256 Ki rows, or 10 minutes
since the segment's first row. A sealed segment under half of both size limits is *small*: the
compaction planner merges small segments (see :mod:`vecstore.data_node.compaction`).

Every value can be set by an environment variable (read when a deployment opens) or passed to
the deployment as a :class:`DataNodeConfig`:

    VECSTORE_SEGMENT_MAX_ROWS           seal at this many rows                     (262144)
    VECSTORE_SEGMENT_MAX_BYTES          seal at this much row data, in bytes       (67108864)
    VECSTORE_SEGMENT_MAX_AGE_S          seal this long after the first row         (600)
    VECSTORE_DATA_NODE_POLL_S           how often the worker checks ages           (1.0)
    VECSTORE_COMPACTION_MIN_SEGMENTS    small segments that start a compaction     (4)
    VECSTORE_COMPACTION_DELETE_RATIO    deleted fraction that compacts a segment   (0.2)
    VECSTORE_AUTO_COMPACTION            1: compact in the background, 0: only on compact()  (1)
    VECSTORE_BACKGROUND                 1: run the background thread, 0: none (tests)       (1)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from vecstore.errors import InvalidArgument

_ENV = {
    "seal_rows": "VECSTORE_SEGMENT_MAX_ROWS",
    "seal_bytes": "VECSTORE_SEGMENT_MAX_BYTES",
    "seal_age_s": "VECSTORE_SEGMENT_MAX_AGE_S",
    "poll_s": "VECSTORE_DATA_NODE_POLL_S",
    "compact_min_segments": "VECSTORE_COMPACTION_MIN_SEGMENTS",
    "compact_delete_ratio": "VECSTORE_COMPACTION_DELETE_RATIO",
    "auto_compact": "VECSTORE_AUTO_COMPACTION",
    "background": "VECSTORE_BACKGROUND",
    "min_index_rows": "VECSTORE_MIN_INDEX_ROWS",
}


@dataclass(frozen=True)
class DataNodeConfig:
    seal_rows: int = 256 * 1024
    seal_bytes: int = 64 << 20
    seal_age_s: float = 600.0
    poll_s: float = 1.0
    compact_min_segments: int = 4
    compact_delete_ratio: float = 0.2
    auto_compact: bool = True
    background: bool = True
    # Sealed segments with fewer rows are searched exactly and count as indexed (Milvus's
    # minSegmentNumRowsToEnableIndex): an index would not pay for itself.
    min_index_rows: int = 1024

    def __post_init__(self) -> None:
        for name in ("seal_rows", "seal_bytes", "compact_min_segments", "min_index_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidArgument(f"DataNodeConfig.{name} must be an int >= 1, got {v!r}")
        if self.compact_min_segments < 2:
            raise InvalidArgument("DataNodeConfig.compact_min_segments must be >= 2: merging "
                                  "one segment into itself gains nothing")
        for name in ("seal_age_s", "poll_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise InvalidArgument(f"DataNodeConfig.{name} must be a number > 0, got {v!r}")
        r = self.compact_delete_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
            raise InvalidArgument(
                f"DataNodeConfig.compact_delete_ratio must be in (0, 1], got {r!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object
                 ) -> DataNodeConfig:
        """Defaults, then the environment variables above, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in _ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                if types[name] == "bool":
                    if raw not in ("0", "1"):
                        raise ValueError(raw)
                    values[name] = raw == "1"
                elif types[name] == "int":
                    values[name] = int(raw)
                else:
                    values[name] = float(raw)
            except ValueError:
                raise InvalidArgument(
                    f"environment variable {var}={raw!r} is not a valid {types[name]}: set it "
                    f"to a number{' (0 or 1)' if types[name] == 'bool' else ''} or unset it"
                ) from None
        return replace(cls(), **values, **overrides)  # type: ignore[arg-type]

    def seal_reason(self, rows: int, nbytes: int, first_row_at: float | None, now: float
                    ) -> str | None:
        """Why a growing segment with these statistics must be sealed now, or None."""
        if rows == 0:
            return None
        if rows >= self.seal_rows:
            return "rows"
        if nbytes >= self.seal_bytes:
            return "size"
        if first_row_at is not None and now - first_row_at >= self.seal_age_s:
            return "age"
        return None

    def small(self, rows: int, nbytes: int) -> bool:
        """A sealed segment worth merging with others: under half of both seal limits."""
        return rows < self.seal_rows // 2 and nbytes < self.seal_bytes // 2
