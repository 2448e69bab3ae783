"""Vector files without an assembled copy: put_parts in SegmentWriter, VectorFileBuilder, CRC
combination; every byte as format 1.0 wrote it (the golden bundles)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.unit.segment.segdata import make_columns, make_rng
from tests.unit.segment.test_golden import GOLDEN, golden_columns
from vecstore import _core
from vecstore.errors import InvalidArgument
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import Segment, SegmentWriter, npy
from vecstore.storage.segment.manifest import VECTOR_KINDS
from vecstore.storage.segment.vector_file import (
    VectorFileBuilder,
    WrittenVectorFile,
    crc32c_combine,
)


def _files(store: LocalObjectStore, prefix: str) -> dict[str, bytes]:
    return {k[len(prefix) + 1 :]: store.get(k) for k in store.list(prefix + "/")}


def _one_buffer(arr: np.ndarray) -> bytes:
    """A vector file as the writer used to assemble it: header and rows in one buffer."""
    header = npy.build_header(arr.dtype.str, arr.shape)
    buf = np.empty(len(header) + arr.nbytes, dtype=np.uint8)
    buf[: len(header)] = np.frombuffer(header, dtype=np.uint8)
    buf[len(header) :] = arr.reshape(-1).view(np.uint8)
    return buf.tobytes()


@pytest.mark.parametrize("name", ["int_pk", "string_pk"])
def test_writer_output_is_byte_identical_to_the_golden_bundles(store, name):
    SegmentWriter(store, name).write(**golden_columns(name == "string_pk"), schema_version=4)
    golden = os.path.join(GOLDEN, name)
    for key, data in _files(store, name).items():
        with open(os.path.join(golden, *key.split("/")), "rb") as f:
            assert f.read() == data, key


def test_vector_files_equal_the_one_buffer_form(bundle):
    store, prefix, columns, manifest = bundle
    entries = {e.name: e for e in manifest.files}
    for field in manifest.vector_fields:
        value = columns["vectors"][field.name]
        arr = value[0] if isinstance(value, tuple) else value
        if arr.dtype.name == "bfloat16":
            arr = arr.view(np.uint16)
        arr = np.ascontiguousarray(arr.astype(VECTOR_KINDS[field.kind][0]))
        want = _one_buffer(arr)
        assert store.get(f"{prefix}/{field.file}") == want
        assert entries[field.file].crc32c == _core.crc32c(want)
        assert entries[field.file].size == len(want)


def test_crc32c_combine_matches_the_crc_of_the_concatenation():
    rng = make_rng(11)
    for la, lb in [(0, 0), (0, 5), (5, 0), (1, 1), (128, 4096), (77, 100_003), (3, 1 << 20)]:
        a = rng.integers(0, 256, la, dtype=np.uint8).tobytes()
        b = rng.integers(0, 256, lb, dtype=np.uint8).tobytes()
        assert crc32c_combine(_core.crc32c(a), _core.crc32c(b), lb) == _core.crc32c(a + b)


def _build(store, prefix, columns, splits):
    """The segment of ``columns`` with every vector file built by appending ``splits``."""
    written = {}
    for field, value in columns["vectors"].items():
        arr, kind = value if isinstance(value, tuple) else (value, None)
        kind = kind or {"float32": "float32", "bfloat16": "bfloat16"}[arr.dtype.name]
        b = VectorFileBuilder(store, prefix, field, kind, arr.shape[1])
        for lo, hi in zip(splits, splits[1:]):
            b.append(arr[lo:hi])
        written[field] = b.finish()
        assert isinstance(written[field], WrittenVectorFile) and written[field].rows == len(arr)
    return SegmentWriter(store, prefix).write(**{**columns, "vectors": written},
                                              schema_version=3)


@pytest.mark.parametrize("splits", [[0, 300], [0, 1, 2, 150, 150, 299, 300], [0, 7, 64, 300]])
def test_builder_writes_the_same_bytes_as_the_writer(store, splits):
    columns = make_columns(300)
    want = SegmentWriter(store, "a").write(**columns, schema_version=3)
    got = _build(store, "b", columns, splits)
    assert got == want
    assert _files(store, "a") == _files(store, "b")
    with Segment.open(store, "b", verify="eager") as seg:
        assert np.array_equal(seg.vectors("f32"), columns["vectors"]["f32"])


def test_builder_abort_and_bad_input_leave_nothing(store):
    b = VectorFileBuilder(store, "s", "v", "float32", 4)
    b.append(np.ones((3, 4), np.float32))
    with pytest.raises(InvalidArgument, match="4 columns"):
        b.append(np.ones((3, 5), np.float32))
    with pytest.raises(InvalidArgument, match="dtype"):
        b.append(np.ones((3, 4), np.float64))
    b.abort()
    assert store.list() == []
    with pytest.raises(InvalidArgument, match="no rows"):
        VectorFileBuilder(store, "s", "v", "float32", 4).finish()
    assert store.list() == []


def test_written_file_is_removed_when_the_segment_write_fails(store):
    b = VectorFileBuilder(store, "s", "v", "float32", 4)
    b.append(np.ones((3, 4), np.float32))
    w = b.finish()
    assert store.list() == ["s/vec.v.npy"]  # published, but no manifest: no segment yet
    with pytest.raises(InvalidArgument, match="3 rows but pk has 2"):
        SegmentWriter(store, "s").write(np.arange(2), np.arange(2), {"v": w}, schema_version=1)
    assert store.list() == []
    with pytest.raises(InvalidArgument, match="under"):
        SegmentWriter(store, "t").write(np.arange(3), np.arange(3), {"v": w}, schema_version=1)


def test_builder_refuses_an_existing_segment(bundle):
    store, prefix, _, _ = bundle
    with pytest.raises(InvalidArgument, match="already exists"):
        VectorFileBuilder(store, prefix, "f32", "float32", 16)
