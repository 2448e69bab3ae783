"""Child process of the data-node crash test (test_data_node_crash.py).

Usage: python -m tests.crash.data_node_child DIR RUN_ID

Opens the database in DIR (the background thread seals by age every few milliseconds and merges
small segments, so flushes and compactions run all the time), then writes until killed and
prints one line per acknowledged write, flushed, *after* the call returned:

    ACK <run> <batch>      insert of batch_rows(run, batch)
    DEL <pk>               delete of one key
    UPS <run> <batch>      upsert of the batch's last UPSERTED keys with n = 1

Every few batches it also calls flush() and compact() itself, racing the background thread, and
the collection's HNSW index is built on every segment of 50+ rows by the index builder.
"""

from __future__ import annotations

import sys

import numpy as np

ROWS = 10
UPSERTED = 5
DIM = 8


def batch_rows(run: int, batch: int, n: int = 0) -> list[dict]:
    vecs = np.random.default_rng([run, batch]).standard_normal((ROWS, DIM)).astype(np.float32)
    return [{"id": run * 1_000_000 + batch * ROWS + i, "vector": vecs[i].tolist(), "n": n}
            for i in range(ROWS)]


def _hnsw(client: object) -> object:
    idx = client.prepare_index_params()  # type: ignore[attr-defined]
    idx.add_index("vector", index_type="HNSW", metric_type="L2",
                  params={"M": 8, "efConstruction": 32})
    return idx


def main() -> int:
    from vecstore import MilvusClient

    directory, run = sys.argv[1], int(sys.argv[2])
    client = MilvusClient(directory)
    if not client.has_collection("c"):
        # HNSW on every segment of >= VECSTORE_MIN_INDEX_ROWS rows: builds run all the time too.
        client.create_collection("c", dimension=DIM, consistency_level="Strong", metric_type="L2",
                                 index_params=_hnsw(client))
    print("OPEN", flush=True)
    batch = 0
    while True:
        client.insert("c", batch_rows(run, batch))
        print(f"ACK {run} {batch}", flush=True)
        if batch % 3 == 2:
            pk = run * 1_000_000 + (batch - 1) * ROWS  # the first key of the previous batch
            client.delete("c", ids=[pk])
            print(f"DEL {pk}", flush=True)
        if batch % 4 == 3:
            rows = batch_rows(run, batch - 2, n=1)[ROWS - UPSERTED:]
            client.upsert("c", rows)
            print(f"UPS {run} {batch - 2}", flush=True)
        if batch % 10 == 9:
            client.flush("c")
        if batch % 25 == 24:
            client.compact("c")
        batch += 1


if __name__ == "__main__":
    sys.exit(main())
