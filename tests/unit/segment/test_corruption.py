"""Damaged segments: every bit flip, truncation and inconsistent header is reported, never served.

"Reported" means CorruptionError naming the damaged file, raised by :meth:`Segment.open` or by the
first accessor that needs the file; accessors of undamaged files keep returning the right data.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from tests.unit.segment.segdata import make_columns, make_rng
from vecstore import _core
from vecstore.errors import CorruptionError
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import Segment, SegmentWriter, write_delete_log
from vecstore.storage.segment.manifest import decode_manifest, encode_manifest

PREFIX = "segments/c/p/s"
MODES = ("eager", "background", "lazy")


def _write_bundle(root) -> tuple[LocalObjectStore, list]:
    store = LocalObjectStore(root)
    columns = make_columns(40, dim=8, seed=31)
    SegmentWriter(store, PREFIX).write(**columns, schema_version=2)
    delta = write_delete_log(store, PREFIX, columns["pk"][:4], [1, 2, 3, 4])
    return store, [delta]


def _read_everything(seg: Segment, pks) -> dict:
    """File name -> what its accessor returned, or the CorruptionError it raised."""
    out: dict = {}
    accessors = {
        f.file: (lambda f=f: seg.vectors(f.name).copy()) for f in seg.manifest.vector_fields
    }
    accessors["scalars.arrow"] = seg.scalars
    accessors["stats/pk"] = lambda: seg.might_contain(pks)
    accessors["delta/0.arrow"] = seg.deletes
    for name, read in accessors.items():
        try:
            out[name] = read()
        except CorruptionError as e:
            out[name] = e
    return out


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, tuple):
        return a[0].equals(b[0]) and np.array_equal(a[1], b[1])
    return a.equals(b)


def _flip(path: str, offset: int, bit: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


def test_random_bit_flips_are_always_detected(tmp_path):
    store, deltas = _write_bundle(tmp_path / "orig")
    files = store.list(PREFIX)
    pks = Segment.open(store, PREFIX, verify="eager").pks()
    with Segment.open(store, PREFIX, deltas=deltas) as seg:
        expected = _read_everything(seg, pks)
    rng = make_rng(41)
    work = tmp_path / "work"
    shutil.copytree(tmp_path / "orig", work)
    caught_at_open = 0
    for i in range(200):
        # Each flip starts from the pristine bundle: the damaged file is restored afterwards.
        key = files[rng.integers(len(files))]
        name = key[len(PREFIX) + 1 :]
        path = os.path.join(work, *key.split("/"))
        size = os.path.getsize(path)
        offset, bit = int(rng.integers(size)), int(rng.integers(8))
        _flip(path, offset, bit)
        mode = MODES[i % 3]
        where = f"flip {i}: {name} byte {offset} bit {bit}, verify={mode}"
        try:
            seg = Segment.open(LocalObjectStore(work), PREFIX, verify=mode, deltas=deltas)
        except CorruptionError as e:
            assert name in str(e), (where, e)
            caught_at_open += 1
        else:
            assert mode != "eager" and name != "manifest", f"{where}: not caught by open"
            got = _read_everything(seg, pks)
            seg.close()
            for file, value in got.items():
                if file == name:
                    assert isinstance(value, CorruptionError), f"{where}: served damaged data"
                    assert name in str(value)
                else:
                    assert not isinstance(value, CorruptionError), (where, file, value)
                    assert _same(value, expected[file]), (where, file)
        _flip(path, offset, bit)
    assert caught_at_open >= 200 // 3  # at least every eager open


@pytest.mark.parametrize("mode", MODES)
def test_truncated_or_extended_files(tmp_path, mode):
    store, deltas = _write_bundle(tmp_path / "orig")
    work = tmp_path / "work"
    shutil.copytree(tmp_path / "orig", work)
    for key in store.list(PREFIX):
        size = store.size(key)
        path = os.path.join(work, *key.split("/"))
        for new_size in sorted({0, 1, 9, size // 2, size - 1, size + 1}):
            with open(path, "r+b") as f:
                f.truncate(new_size)
            with pytest.raises(CorruptionError) as info:
                Segment.open(LocalObjectStore(work), PREFIX, verify=mode, deltas=deltas)
            assert key.rsplit("/", 1)[-1] in str(info.value)
            shutil.copyfile(store.local_path(key), path)


# -- inconsistent content behind valid checksums ---------------------------------------------


def _replace_file(store: LocalObjectStore, name: str, data: bytes) -> None:
    """Replaces a bundle file and re-seals the manifest so that size and checksum match it."""
    key = f"{PREFIX}/manifest"
    manifest = decode_manifest(store.get(key), key)
    files = tuple(
        dataclasses.replace(e, size=len(data), crc32c=_core.crc32c(data)) if e.name == name else e
        for e in manifest.files
    )
    store.put(f"{PREFIX}/{name}", data)
    store.put(key, encode_manifest(dataclasses.replace(manifest, files=files)))


def _npy_bytes(array: np.ndarray, **np_save) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, **np_save)
    return buf.getvalue()


def _npy_cases():
    x = make_columns(40, dim=8, seed=31)["vectors"]["f32"]
    header = _npy_bytes(x)[:128]
    yield "shape", _npy_bytes(x.reshape(80, 4))
    yield "dtype", _npy_bytes(x.view(np.int32))
    yield "big-endian", _npy_bytes(x.astype(">f4"))
    yield "fortran", _npy_bytes(np.asfortranarray(x.T).T.copy(order="F"))
    yield "truncated header", header[:9]
    yield "magic only", header[:6]
    yield "not npy", b"\0" * len(_npy_bytes(x))
    yield "trailing bytes", _npy_bytes(x) + b"\0" * 4
    yield "missing rows", _npy_bytes(x)[:-32]
    evil = b"{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (40, 8)}"
    evil = evil.ljust(118, b" ")[:117] + b"\n"
    yield "code in header", header[:8] + len(evil).to_bytes(2, "little") + evil + x.tobytes()
    unaligned = b"{'descr': '<f4', 'fortran_order': False, 'shape': (40, 8), }".ljust(69) + b"\n"
    yield (
        "unaligned data",
        header[:8] + len(unaligned).to_bytes(2, "little") + unaligned + x.tobytes(),
    )
    yield "version 9", header[:6] + b"\x09\x00" + _npy_bytes(x)[8:]


@pytest.mark.parametrize("case,data", list(_npy_cases()), ids=[c for c, _ in _npy_cases()])
def test_npy_header_disagreeing_with_manifest(tmp_path, case, data):
    store, _ = _write_bundle(tmp_path)
    _replace_file(store, "vec.f32.npy", data)
    for mode in MODES:
        with pytest.raises(CorruptionError, match="vec.f32.npy"):
            Segment.open(store, PREFIX, verify=mode)


def test_npy_header_from_another_writer_is_accepted(tmp_path):
    store, _ = _write_bundle(tmp_path)
    x = make_columns(40, dim=8, seed=31)["vectors"]["f32"]
    text = b"{'shape':(40,8),'fortran_order':False,'descr':'<f4'}".ljust(117) + b"\n"
    _replace_file(
        store,
        "vec.f32.npy",
        b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + x.tobytes(),
    )
    with Segment.open(store, PREFIX, verify="eager") as seg:
        assert np.array_equal(seg.vectors("f32"), x)


def test_inconsistent_scalars_and_stats_behind_valid_checksums(tmp_path):
    store, _ = _write_bundle(tmp_path)
    other = make_columns(40, dim=8, seed=99)
    SegmentWriter(store, "x/other").write(**other, schema_version=2, pk_field="id")
    SegmentWriter(store, "x/short").write(**make_columns(7, dim=8), schema_version=2)
    _replace_file(store, "scalars.arrow", store.get("x/other/scalars.arrow"))
    _replace_file(store, "stats/pk", store.get("x/short/stats/pk"))
    with Segment.open(store, PREFIX) as seg:
        with pytest.raises(CorruptionError, match="scalars.arrow"):
            seg.scalars()
        with pytest.raises(CorruptionError, match="stats/pk"):
            seg.might_contain([1])
        seg.vectors("f32")


# -- the manifest -----------------------------------------------------------------------------


def _seal(head: str, body) -> bytes:
    text = (head + "\n").encode() + json.dumps(body).encode() + b"\n"
    return text + f"crc32c={_core.crc32c(text):08x}\n".encode()


def _body(store) -> dict:
    raw = store.get(f"{PREFIX}/manifest").decode()
    return json.loads(raw[raw.index("\n") + 1 : raw.rindex("crc32c=")])


def test_manifest_versions(tmp_path):
    store, _ = _write_bundle(tmp_path)
    body = _body(store)
    key = f"{PREFIX}/manifest"
    store.put(key, _seal("vecstore-segment-manifest 2.0", body))
    with pytest.raises(CorruptionError, match=r"2\.0.*upgrade"):
        Segment.open(store, PREFIX)
    store.put(key, _seal("vecstore-segment-manifest 0.3", body))
    with pytest.raises(CorruptionError, match="major version 1"):
        Segment.open(store, PREFIX)
    # A newer minor: unknown keys ignored, unknown files still verified.
    store.put(f"{PREFIX}/extra.bin", b"future data")
    newer = {**body, "future_key": {"x": 1}}
    newer["files"] = {
        **body["files"],
        "extra.bin": {"size": 11, "crc32c": _core.crc32c(b"future data")},
    }
    store.put(key, _seal("vecstore-segment-manifest 1.9", newer))
    with Segment.open(store, PREFIX, verify="eager") as seg:
        assert (seg.manifest.format_major, seg.manifest.format_minor) == (1, 9)
    newer["files"]["extra.bin"]["crc32c"] ^= 4
    store.put(key, _seal("vecstore-segment-manifest 1.9", newer))
    with pytest.raises(CorruptionError, match="extra.bin"):
        Segment.open(store, PREFIX, verify="eager")


def _bad_bodies(body):
    yield "rows 0", {**body, "rows": 0}
    yield "ts order", {**body, "ts_min": body["ts_max"] + 1}
    yield "ts over u64", {**body, "ts_max": 1 << 64}
    yield "rows bool", {**body, "rows": True}
    yield "unknown kind", {**body, "vectors": [{**body["vectors"][0], "kind": "float64"}]}
    yield (
        "file not listed",
        {**body, "files": {k: v for k, v in body["files"].items() if "f32" not in k}},
    )
    yield "path escape", {**body, "files": {**body["files"], "../x": {"size": 1, "crc32c": 0}}}
    yield "pk type", {**body, "pk": {"name": "pk", "type": "float"}}
    yield "no scalars", {k: v for k, v in body.items() if k != "scalars"}
    yield "not an object", [1, 2]


def test_malformed_manifests(tmp_path):
    store, _ = _write_bundle(tmp_path)
    body = _body(store)
    key = f"{PREFIX}/manifest"
    good = store.get(key)
    for _, bad in _bad_bodies(body):
        store.put(key, _seal("vecstore-segment-manifest 1.0", bad))
        with pytest.raises(CorruptionError, match="malformed"):
            Segment.open(store, PREFIX)
    raw = bytearray(good)
    raw[raw.index(b'"rows"') + 9] ^= 1  # change a digit; the checksum no longer matches
    for data, message in [
        (bytes(raw), "checksum"),
        (b"", "start"),
        (good[:40], "truncated"),
        (good[:-1], "truncated"),
        (b"PK\x03\x04" + good, "start"),
        (good.replace(b"manifest 1.0", b"manifest 1.0.1", 1), "checksum"),
    ]:
        store.put(key, data)
        with pytest.raises(CorruptionError, match=message):
            Segment.open(store, PREFIX)
