"""Deterministic inputs for the segment tests (seeded by VECSTORE_SEED)."""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pyarrow as pa

SEED = int(os.environ.get("VECSTORE_SEED", "20261126"))


def make_rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *key])


def make_columns(rows: int, dim: int = 16, seed: int = 0, string_pk: bool = False) -> dict:
    """Deterministic inputs covering every vector kind and the common scalar types."""
    rng = make_rng(seed)
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    ids = rng.permutation(rows * 3)[:rows].astype(np.int64)
    pk = pa.array([f"key-{i:06d}-{'x' * (i % 23)}" for i in ids]) if string_pk else ids
    ts = (rng.integers(1, 1 << 40, rows, dtype=np.uint64) << np.uint64(18)) | np.uint64(7)
    vectors = {
        "f32": x,
        "f16": (x.astype(np.float16), "float16"),
        "bf16": x.astype(ml_dtypes.bfloat16),
        "i8": (np.clip(np.rint(x * 32), -127, 127).astype(np.int8), "int8"),
        "bits": (rng.integers(0, 256, (rows, dim // 8 * 8), dtype=np.uint8), "binary"),
    }
    nullable = pa.array([None if i % 5 == 0 else float(i) / 3 for i in range(rows)])
    scalars = {
        "i32": rng.integers(-(2**31), 2**31, rows, dtype=np.int32),
        "u64": rng.integers(0, 2**63, rows, dtype=np.uint64),
        "f64": rng.standard_normal(rows),
        "flag": rng.random(rows) < 0.5,
        "name": pa.array([f"név {i} ✓" for i in range(rows)]),
        "meta": pa.array([f'{{"a": {i}, "tags": ["x", "y"]}}' for i in range(rows)]),
        "tags": pa.array([[int(v) for v in range(i % 4)] for i in range(rows)]),
        "maybe": nullable,
        "maybe_s": pa.array([None if i % 3 == 0 else str(i) for i in range(rows)]),
    }
    return {"pk": pk, "timestamps": ts, "vectors": vectors, "scalars": scalars}
