"""Deterministic batches for the crash harness: the parent regenerates what the child wrote and
compares bytes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

ROWS = 100
DIM = 128


def make_batch(run_id: int, batch: int) -> pa.RecordBatch:
    """ROWS rows: a unique int64 pk per row and a 128-d float32 vector (~52 KB: several blocks,
    so kills can tear a record across fragments)."""
    rng = np.random.default_rng([run_id, batch])
    pk = (np.int64(run_id) << 32) | (np.int64(batch) << 12) | np.arange(ROWS, dtype=np.int64)
    vec = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    return pa.record_batch({
        "pk": pa.array(pk),
        "vec": pa.FixedSizeListArray.from_arrays(pa.array(vec.reshape(-1)), DIM),
    })


def decode(payload: bytes) -> pa.RecordBatch:
    table = pa.ipc.open_stream(payload).read_all()
    assert table.num_rows == ROWS, f"a half batch of {table.num_rows} rows is visible"
    return table.combine_chunks().to_batches()[0]


def batch_id(batch: pa.RecordBatch) -> tuple[int, int]:
    pk0 = batch.column(0)[0].as_py()
    return pk0 >> 32, (pk0 >> 12) & 0xFFFFF
