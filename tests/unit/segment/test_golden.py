"""Golden segments: bundles written by format 1.0 that every later reader must keep opening.

The bundles under ``tests/data/segment/v1.0/`` were written once by
``python -m tests.unit.segment.test_golden`` (from the repository root, with
``PYTHONPATH=python``) and are never regenerated for a released version: a new format version
adds a new folder beside them.
"""

from __future__ import annotations

import os
import shutil
import sys

import ml_dtypes
import numpy as np
import pyarrow as pa

from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import DeltaInfo, Segment, SegmentWriter, write_delete_log

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "segment",
                      "v1.0")
# The DeltaInfo the writer returned, as the meta store would have recorded it.
DELTA = {"seq": 0, "rows": 2, "size": 650, "crc32c": 4060051926, "ts_min": 900, "ts_max": 901}


def golden_columns(string_pk: bool) -> dict:
    x = (np.arange(6 * 8, dtype=np.float32).reshape(6, 8) - 20) / 8
    pk = (
        pa.array(["k0", "ké1", "k2", "", "k4😀", "k5"])
        if string_pk
        else np.array([10, -3, 7, 2**62, 0, 5], dtype=np.int64)
    )
    return {
        "pk": pk,
        "timestamps": np.array([1, 2, 3, 2**63 + 5, 5, 6], dtype=np.uint64) << np.uint64(0),
        "vectors": {
            "f32": x,
            "f16": x.astype(np.float16),
            "bf16": x.astype(ml_dtypes.bfloat16),
            "i8": (x * 10).astype(np.int8),
            "bits": (np.arange(6 * 4, dtype=np.uint8).reshape(6, 4) * 37, "binary"),
        },
        "scalars": {
            "n": pa.array([1, None, 3, 4, 5, 6], pa.int32()),
            "s": pa.array(["a", "b", None, "d", "é", ""]),
            "j": pa.array(['{"a": 1}', "{}", "[]", "null", '"x"', "1"]),
            "l": pa.array([[1.5], [], None, [2.0, 3.0], [4.0], [5.0]]),
            "b": pa.array([True, False, None, True, True, False]),
        },
    }


def write_golden(root: str) -> DeltaInfo:
    store = LocalObjectStore(root)
    for name, string_pk in (("int_pk", False), ("string_pk", True)):
        SegmentWriter(store, name).write(**golden_columns(string_pk), schema_version=4)
    return write_delete_log(store, "int_pk", [7, 99], [900, 901])


def _check(seg: Segment, string_pk: bool) -> None:
    want = golden_columns(string_pk)
    assert seg.rows == 6 and seg.manifest.schema_version == 4
    assert seg.ts_range == (1, 2**63 + 5)
    assert seg.pks().to_pylist() == pa.array(want["pk"]).to_pylist()
    assert np.array_equal(seg.timestamps(), want["timestamps"])
    for field, value in want["vectors"].items():
        arr = value[0] if isinstance(value, tuple) else value
        assert np.array_equal(
            seg.vectors(field, raw=True), arr.view(seg.vectors(field, raw=True).dtype)
        )
    table = seg.scalars()
    for name, value in want["scalars"].items():
        assert table.column(name).combine_chunks().equals(value)
    assert seg.might_contain(want["pk"]).all()


def test_golden_v1_0_bundles_still_open(tmp_path):
    root = tmp_path / "golden"
    shutil.copytree(GOLDEN, root)  # readers never write, but keep the checked-in files pristine
    store = LocalObjectStore(root, create=False)
    with Segment.open(store, "int_pk", verify="eager", deltas=[DELTA]) as seg:
        _check(seg, False)
        pk, ts = seg.deletes()
        assert pk.to_pylist() == [7, 99] and ts.tolist() == [900, 901]
    with Segment.open(store, "string_pk", verify="lazy") as seg:
        _check(seg, True)


if __name__ == "__main__":
    if os.path.exists(GOLDEN):
        sys.exit(f"{GOLDEN} exists; golden files of a released version are never rewritten")
    print(write_golden(GOLDEN).to_dict())
