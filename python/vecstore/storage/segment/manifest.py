"""The segment manifest: what a segment holds and the size and CRC32C of each of its files.

Encoding (spec in ``docs/segment_format.md``): UTF-8 text in three parts,

    vecstore-segment-manifest <major>.<minor>\\n    the envelope line (ASCII)
    <JSON object>\\n                                the body
    crc32c=<8 lowercase hex digits>\\n             16 bytes: CRC32C of every byte before it

The envelope line and the trailer never change between versions, so any reader can check the
checksum and read the version. Compatibility rule: a reader refuses a major version it does not
know (CorruptionError saying which version and that a newer vecstore wrote it) and accepts any minor
version of a major it knows, ignoring JSON keys it does not know. A minor version only adds things
an older reader may ignore and still answer correctly (optional keys; extra files listed under
``files``, which are size- and checksum-verified like the others); anything else bumps the major.

Decoding trusts nothing: size bounded, checksum verified before the version is read, every key
type- and range-checked; any problem raises :class:`~vecstore.errors.CorruptionError` naming the
manifest. Timestamps are JSON integers up to 2**64-1 (readers must parse them as exact integers,
never through a double).

Everything here is immutable and thread-safe.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from vecstore import _core
from vecstore.errors import CorruptionError, InvalidArgument

FORMAT_NAME = "vecstore-segment-manifest"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
MANIFEST_NAME = "manifest"
SCALARS_NAME = "scalars.arrow"
PK_STATS_NAME = "stats/pk"
TS_COLUMN = "$ts"  # '$' cannot start a Milvus field name, so it never clashes with user columns
MAX_MANIFEST_BYTES = 16 << 20
U64_MAX = (1 << 64) - 1

# kind -> (NPY descr written, bytes per element, dim per stored column)
VECTOR_KINDS: dict[str, tuple[str, int, int]] = {
    "float32": ("<f4", 4, 1),
    "float16": ("<f2", 2, 1),
    "bfloat16": ("<u2", 2, 1),  # raw bfloat16 bits; numpy has no bfloat16 of its own
    "int8": ("|i1", 1, 1),
    "binary": ("|u1", 1, 8),  # 8 bits per byte; dim counts bits
}
PK_TYPES = ("int64", "string")

# Field names become file names (vec.<field>.npy): Milvus's rule, letters, digits and '_'.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.$-]{1,255}(/[A-Za-z0-9_.$-]{1,255}){0,7}")
_TRAILER = re.compile(rb"crc32c=([0-9a-f]{8})\n")
_TRAILER_BYTES = 16
_ENVELOPE = re.compile(rb"vecstore-segment-manifest (\d{1,4})\.(\d{1,4})\n")

_FROZEN: dict = {"frozen": True, **({"slots": True} if sys.version_info >= (3, 10) else {})}


def valid_field_name(name: object) -> bool:
    return isinstance(name, str) and _FIELD_NAME.fullmatch(name) is not None


def vector_file_name(field: str) -> str:
    return f"vec.{field}.npy"


@dataclass(**_FROZEN)
class FileEntry:
    """One file of the bundle: its name relative to the segment prefix, size and CRC32C."""

    name: str
    size: int
    crc32c: int


@dataclass(**_FROZEN)
class VectorField:
    """A vector field stored as ``file`` (NPY): ``dim`` in elements (bits for binary)."""

    name: str
    kind: str
    dim: int
    file: str

    @property
    def npy_descr(self) -> str:
        return VECTOR_KINDS[self.kind][0]

    @property
    def columns(self) -> int:
        """Columns of the stored 2-D array (dim / 8 for binary)."""
        return self.dim // VECTOR_KINDS[self.kind][2]


@dataclass(**_FROZEN)
class ScalarColumn:
    """A column of ``scalars.arrow`` and its Arrow type as text (informational)."""

    name: str
    arrow_type: str


@dataclass(**_FROZEN)
class Manifest:
    """The decoded manifest of one segment.

    ``ts_min``/``ts_max``: inclusive range of the rows' timestamps. ``scalar_columns`` lists the
    columns of ``scalars.arrow`` in order: the primary key first, then ``$ts``, then the rest.
    ``files``: every file of the bundle except the manifest and delete logs, sorted by name.
    """

    format_major: int
    format_minor: int
    rows: int
    ts_min: int
    ts_max: int
    schema_version: int
    pk_field: str
    pk_type: str
    vector_fields: tuple[VectorField, ...]
    scalar_columns: tuple[ScalarColumn, ...]
    files: tuple[FileEntry, ...]

    def file(self, name: str) -> FileEntry:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise InvalidArgument(
            f"segment has no file {name!r}; it has {[e.name for e in self.files]}"
        )

    def vector_field(self, name: str) -> VectorField:
        for f in self.vector_fields:
            if f.name == name:
                return f
        raise InvalidArgument(
            f"segment has no vector field {name!r}; it has {[f.name for f in self.vector_fields]}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ts_min": self.ts_min,
            "ts_max": self.ts_max,
            "schema_version": self.schema_version,
            "pk": {"name": self.pk_field, "type": self.pk_type},
            "vectors": [
                {"name": f.name, "kind": f.kind, "dim": f.dim, "file": f.file}
                for f in self.vector_fields
            ],
            "scalars": {
                "file": SCALARS_NAME,
                "ts_column": TS_COLUMN,
                "columns": [{"name": c.name, "type": c.arrow_type} for c in self.scalar_columns],
            },
            "stats": {"pk": PK_STATS_NAME},
            "files": {e.name: {"size": e.size, "crc32c": e.crc32c} for e in self.files},
        }


def encode_manifest(manifest: Manifest) -> bytes:
    head = f"{FORMAT_NAME} {manifest.format_major}.{manifest.format_minor}\n".encode("ascii")
    body = json.dumps(manifest.to_json(), indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
    crc = _core.crc32c(body, _core.crc32c(head))
    return head + body + f"crc32c={crc:08x}\n".encode("ascii")


# -- decoding ---------------------------------------------------------------------------------


class _Bad(Exception):
    """A malformed manifest body (turned into CorruptionError with the manifest's key)."""


def _get(obj: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _Bad(f"missing key {key!r}")
    value = obj[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise _Bad(f"key {key!r} has the wrong type ({type(value).__name__})")
    return value


def _int(obj: Any, key: str, lo: int, hi: int) -> int:
    value = _get(obj, key, int)
    if not lo <= value <= hi:
        raise _Bad(f"key {key!r} = {value} is outside [{lo}, {hi}]")
    return value


def _file_name(value: object) -> str:
    # Bundle file names: '/'-separated, each part plain ASCII and no '..' (keys for the store).
    if not isinstance(value, str) or not _FILE_NAME.fullmatch(value):
        raise _Bad(f"bad file name {value!r}")
    if any(part in (".", "..") or part.startswith(".tmp-") for part in value.split("/")):
        raise _Bad(f"bad file name {value!r}")
    return value


def decode_manifest(data: bytes, where: str) -> Manifest:
    """Checks and decodes a manifest; ``where`` names it in errors. CorruptionError on any fault."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise CorruptionError(f"manifest {where} is {len(data)} bytes, over the 16 MiB limit")
    if not data.startswith(FORMAT_NAME.encode("ascii") + b" "):
        raise CorruptionError(
            f"manifest {where} does not start with '{FORMAT_NAME} <version>': not a segment "
            "manifest, or damaged"
        )
    trailer = _TRAILER.fullmatch(data[-_TRAILER_BYTES:]) if len(data) >= _TRAILER_BYTES else None
    if trailer is None:
        raise CorruptionError(
            f"manifest {where} is damaged or truncated: it does not end with its "
            "'crc32c=<hex>' line"
        )
    expected = int(trailer.group(1), 16)
    actual = _core.crc32c(memoryview(data)[: len(data) - _TRAILER_BYTES])
    if actual != expected:
        raise CorruptionError(
            f"manifest {where} failed its checksum: stored crc32c {expected:08x}, "
            f"computed {actual:08x}"
        )
    newline = data.find(b"\n")
    envelope = _ENVELOPE.fullmatch(data[: newline + 1]) if newline >= 0 else None
    if envelope is None:
        raise CorruptionError(f"manifest {where} has a malformed first line (format and version)")
    major, minor = int(envelope.group(1)), int(envelope.group(2))
    if major != FORMAT_MAJOR:
        raise CorruptionError(
            f"manifest {where} has format version {major}.{minor}; this vecstore reads major "
            f"version {FORMAT_MAJOR} only" + ("; upgrade vecstore" if major > FORMAT_MAJOR else "")
        )
    try:
        body = json.loads(data[newline + 1 : len(data) - _TRAILER_BYTES].decode("utf-8"))
        return _decode_body(body, major, minor)
    except (_Bad, ValueError, RecursionError) as e:
        raise CorruptionError(f"manifest {where} is malformed: {e}") from None


def _decode_body(body: Any, major: int, minor: int) -> Manifest:
    if not isinstance(body, dict):
        raise _Bad("the body is not a JSON object")
    rows = _int(body, "rows", 1, (1 << 63) - 1)
    ts_min = _int(body, "ts_min", 0, U64_MAX)
    ts_max = _int(body, "ts_max", ts_min, U64_MAX)
    schema_version = _int(body, "schema_version", 0, (1 << 63) - 1)
    pk = _get(body, "pk", dict)
    pk_field = _get(pk, "name", str)
    pk_type = _get(pk, "type", str)
    if pk_type not in PK_TYPES:
        raise _Bad(f"unknown primary key type {pk_type!r}")

    files: dict[str, FileEntry] = {}
    for name, entry in _get(body, "files", dict).items():
        _file_name(name)
        size = _int(entry, "size", 0, 1 << 62)
        files[name] = FileEntry(name, size, _int(entry, "crc32c", 0, 0xFFFFFFFF))

    vectors = []
    for item in _get(body, "vectors", list):
        name = _get(item, "name", str)
        kind = _get(item, "kind", str)
        if not valid_field_name(name) or kind not in VECTOR_KINDS:
            raise _Bad(f"bad vector field {name!r} of kind {kind!r}")
        dim = _int(item, "dim", 1, 1 << 20)
        if dim % VECTOR_KINDS[kind][2]:
            raise _Bad(f"vector field {name!r}: binary dim {dim} is not a multiple of 8")
        file = _get(item, "file", str)
        if file != vector_file_name(name) or file not in files:
            raise _Bad(f"vector field {name!r} names file {file!r}, not in the bundle")
        vectors.append(VectorField(name, kind, dim, file))

    scalars = _get(body, "scalars", dict)
    if _get(scalars, "file", str) != SCALARS_NAME or SCALARS_NAME not in files:
        raise _Bad("scalars file missing")
    if _get(scalars, "ts_column", str) != TS_COLUMN:
        raise _Bad("unexpected timestamp column name")
    columns = tuple(
        ScalarColumn(_get(c, "name", str), _get(c, "type", str))
        for c in _get(scalars, "columns", list)
    )
    if len(columns) < 2 or columns[0].name != pk_field or columns[1].name != TS_COLUMN:
        raise _Bad("scalar columns must start with the primary key and $ts")
    if _get(_get(body, "stats", dict), "pk", str) != PK_STATS_NAME or PK_STATS_NAME not in files:
        raise _Bad("primary key statistics missing")
    names = [f.name for f in vectors] + [c.name for c in columns]
    if len(set(names)) != len(names):
        raise _Bad("duplicate field names")
    return Manifest(
        format_major=major,
        format_minor=minor,
        rows=rows,
        ts_min=ts_min,
        ts_max=ts_max,
        schema_version=schema_version,
        pk_field=pk_field,
        pk_type=pk_type,
        vector_fields=tuple(vectors),
        scalar_columns=columns,
        files=tuple(sorted(files.values(), key=lambda e: e.name)),
    )
