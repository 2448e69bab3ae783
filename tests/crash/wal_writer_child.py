"""Child process of the WAL crash harness (test_wal_crash.py).

Usage: python wal_writer_child.py DIR RUN_ID [BATCHES]

Opens the WAL in DIR (sync="always"; recovery runs here, so a kill can land inside it), then
appends BATCHES (default: until killed) deterministic batches and prints one line per
acknowledged append to stdout, flushed, *after* append returned:

    ACK <run_id> <batch> <seq> <offset>

The parent kills this process with SIGKILL at random moments or sets VECSTORE_FAILPOINT so it
dies at a named point; every line it read names a batch that must survive.
"""

from __future__ import annotations

import sys

from tests.crash.batches import make_batch
from vecstore.storage.wal import FileWal


def main() -> int:
    directory, run_id = sys.argv[1], int(sys.argv[2])
    batches = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
    wal = FileWal(directory, sync="always", file_size_limit=1 << 20)
    # Build one batch before reporting OPEN: its first call imports (pyarrow.ipc, and pandas
    # through pa.array), which on a loaded machine can outlast the parent's kill window.
    make_batch(run_id, 0)
    print(f"OPEN {wal.recovery.torn_bytes_dropped}", flush=True)
    for i in range(batches):
        pos = wal.append(make_batch(run_id, i), ts_begin=run_id, ts_end=run_id)
        sys.stdout.write(f"ACK {run_id} {i} {pos.seq} {pos.offset}\n")
        sys.stdout.flush()
    wal.close()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
