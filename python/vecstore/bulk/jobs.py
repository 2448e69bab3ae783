"""The state of one bulk import job, shared between its worker thread and any reader.

States, as Milvus names them: ``Pending`` (files opened, rows being counted), ``Importing``
(rows being validated and written), ``Completed`` (committed: every imported row is visible),
``Failed`` (nothing was committed; ``reason`` says why). :meth:`ImportJob.state` returns the
shape of Milvus's "describe import job" answer, with vecstore's additions ``skippedRows`` and
``skipped`` (the first :data:`MAX_SKIPPED_SHOWN` skipped rows, ``"<file>, row <n>: <reason>"``).

Thread-safe: the worker updates counters under a lock, readers take consistent copies.
"""

from __future__ import annotations

import threading
import time
from typing import Any

PENDING, IMPORTING, COMPLETED, FAILED = "Pending", "Importing", "Completed", "Failed"
MAX_SKIPPED_SHOWN = 10


class ImportJob:
    def __init__(self, job_id: str, collection: str, partition: str | None,
                 files: list[str]) -> None:
        self.job_id = job_id
        self.collection = collection
        self.partition = partition
        self.files = files
        self._mu = threading.Lock()
        self._done = threading.Event()
        self.cancelled = threading.Event()  # set by close(): the worker stops at the next batch
        self._state = PENDING
        self._total = 0
        self._imported = 0
        self._skipped = 0
        self._skipped_shown: list[str] = []
        self._reason = ""
        self._created = time.time()
        self._started: float | None = None
        self._finished: float | None = None

    # ---- the worker's side ---------------------------------------------------------------

    def start(self, total_rows: int) -> None:
        with self._mu:
            self._state, self._total, self._started = IMPORTING, total_rows, time.time()

    def advance(self, imported: int, skipped: list[tuple[str, int, str]]) -> None:
        """Counts rows validated and buffered; ``skipped``: (file, row, reason) per bad row."""
        with self._mu:
            self._imported += imported
            self._skipped += len(skipped)
            for src, row, why in skipped[:MAX_SKIPPED_SHOWN - len(self._skipped_shown)]:
                self._skipped_shown.append(f"{src}, row {row}: {why}")

    def finish(self, error: str | None = None) -> None:
        with self._mu:
            self._state = FAILED if error is not None else COMPLETED
            self._reason = error or ""
            if error is not None:
                self._imported = 0  # nothing of a failed job is visible
            self._finished = time.time()
        self._done.set()

    # ---- readers ------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job has finished (Completed or Failed)."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def counts(self) -> tuple[int, int, int]:
        """(rows processed (imported + skipped), total rows, skipped rows)."""
        with self._mu:
            return self._imported + self._skipped, self._total, self._skipped

    def state(self) -> dict[str, Any]:
        with self._mu:
            done = self._imported + self._skipped
            if self._state == COMPLETED:
                progress = 100
            elif self._state == IMPORTING and self._total:
                # 99 at most until the commit: 100 means visible.
                progress = min(99, done * 100 // self._total)
            else:
                progress = 0
            end = self._finished if self._finished is not None else time.time()
            return {
                "jobId": self.job_id,
                "collectionName": self.collection,
                "partitionName": self.partition or "",
                "state": self._state,
                "progress": progress,
                "importedRows": self._imported,
                "totalRows": self._total,
                "skippedRows": self._skipped,
                "skipped": list(self._skipped_shown),
                "reason": self._reason,
                "files": list(self.files),
                "createTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self._created)),
                "completeTime": "" if self._finished is None else time.strftime(
                    "%Y-%m-%dT%H:%M:%S", time.localtime(self._finished)),
                "elapsedSeconds": round(end - (self._started or self._created), 3),
            }
