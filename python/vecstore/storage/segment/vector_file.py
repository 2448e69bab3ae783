"""A segment's vector file built batch by batch, for writers that never hold a segment's rows.

:class:`VectorFileBuilder` writes ``vec.<field>.npy`` under a segment prefix through the store's
:meth:`~vecstore.storage.object.ObjectStore.open_writer`: it reserves the NPY header, appends
each batch of rows as it comes (written from the caller's array, no copy kept), and on
:meth:`~VectorFileBuilder.finish` patches the header for the final row count in place and
commits the file. The bytes are exactly those :class:`~.writer.SegmentWriter` writes for the same
rows: the header of a 2-D array is 128 bytes whatever the row count (its text is padded to a
multiple of 64, and the digits of any row count fit), which the builder checks up front.

The file's CRC32C (the manifest's) is computed without reading the file back: the rows' CRC runs
over each batch as it is written, and :func:`crc32c_combine` joins it to the header's, which is
known only at the end.

:meth:`~VectorFileBuilder.finish` returns a :class:`WrittenVectorFile`, which
:meth:`SegmentWriter.write <.writer.SegmentWriter.write>` accepts in place of an array: the
segment is then published (scalars, stats, manifest last) as usual, and a failed write removes
the vector file too. Until the manifest is published the file belongs to no segment: an aborted
import removes it, and a crash leaves a file under an uncommitted prefix that garbage collection
removes.

Memory: one batch of rows (the caller's), nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vecstore import _core
from vecstore.errors import InvalidArgument
from vecstore.storage.object.protocol import ObjectStore
from vecstore.storage.segment import npy
from vecstore.storage.segment.manifest import (
    MANIFEST_NAME,
    VECTOR_KINDS,
    FileEntry,
    valid_field_name,
    vector_file_name,
)

_POLY = 0x82F63B78  # CRC32C (Castagnoli), bit-reflected
_ONE = 1 << 31  # the polynomial 1 in the reflected representation (bit 31 holds x^0)
_MAX_ROWS = (1 << 63) - 1


def _mul_mod(a: int, b: int) -> int:
    """a * b modulo the CRC polynomial, both in the reflected representation."""
    product = 0
    for bit in range(31, -1, -1):  # bit 31 is the coefficient of x^0, bit 0 that of x^31
        if a >> bit & 1:
            product ^= b
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1  # b *= x
    return product


def _x_pow_8n(n: int) -> int:
    """x^(8n) modulo the polynomial, by repeated squaring."""
    result, base = _ONE, _ONE >> 8  # base = x^8
    while n:
        if n & 1:
            result = _mul_mod(result, base)
        base = _mul_mod(base, base)
        n >>= 1
    return result


def crc32c_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """CRC32C of ``a + b`` from ``crc32c(a)``, ``crc32c(b)`` and ``len(b)``.

    Appending ``len(b)`` bytes multiplies a's remainder by x^(8 len(b)); the initial and final
    inversions of the two CRCs cancel out, so no other term remains."""
    if length_b < 0:
        raise InvalidArgument(f"length_b must be >= 0, got {length_b}")
    return _mul_mod(crc_a, _x_pow_8n(length_b)) ^ crc_b


@dataclass(frozen=True)
class WrittenVectorFile:
    """A vector file already published under ``prefix`` by :class:`VectorFileBuilder`."""

    prefix: str
    field: str
    kind: str
    dim: int
    rows: int
    entry: FileEntry


class VectorFileBuilder:
    """Builds ``<prefix>/vec.<field>.npy`` from rows appended in batches (see module docstring).

    ``columns`` is the stored width (dim, or dim / 8 bytes for binary). InvalidArgument if a
    segment already exists at ``prefix``. One thread uses a builder; :meth:`abort` (or a failed
    write) discards the file.
    """

    def __init__(self, store: ObjectStore, prefix: str, field: str, kind: str,
                 columns: int) -> None:
        if not valid_field_name(field):
            raise InvalidArgument(f"vector field name {field!r} is not valid")
        if kind not in VECTOR_KINDS:
            raise InvalidArgument(f"unknown vector kind {kind!r}; use one of "
                                  f"{sorted(VECTOR_KINDS)}")
        if isinstance(columns, bool) or not isinstance(columns, int) or columns <= 0:
            raise InvalidArgument(f"columns must be an int > 0, got {columns!r}")
        prefix = prefix[:-1] if prefix.endswith("/") else prefix
        if store.exists(f"{prefix}/{MANIFEST_NAME}"):
            raise InvalidArgument(f"a segment already exists at {prefix!r}; segments are "
                                  "immutable: write to a new prefix")
        descr, _, bits = VECTOR_KINDS[kind]
        self._descr, self._dtype = descr, np.dtype(descr)
        self.prefix, self.field, self.kind, self.columns = prefix, field, kind, columns
        self.dim = columns * bits
        self.name = vector_file_name(field)
        self._header_bytes = len(npy.build_header(descr, (0, columns)))
        if len(npy.build_header(descr, (_MAX_ROWS, columns))) != self._header_bytes:
            raise InvalidArgument(f"vectors of {columns} columns are too wide to build in "
                                  "batches (the NPY header length would depend on the rows)")
        self.rows = 0
        self._rows_crc = 0
        self._writer = store.open_writer(f"{prefix}/{self.name}")
        try:
            self._writer.write(bytes(self._header_bytes))  # patched by finish()
        except BaseException:
            self._writer.abort()
            raise

    def append(self, rows: np.ndarray) -> None:
        """Append ``rows`` (2-D, ``columns`` wide, the kind's dtype; bfloat16 as ml_dtypes or its
        uint16 bits). Written straight from the array (a copy only if it is not C-contiguous)."""
        if not isinstance(rows, np.ndarray) or rows.ndim != 2 or rows.shape[1] != self.columns:
            shape = getattr(rows, "shape", type(rows).__name__)
            raise InvalidArgument(f"vectors[{self.field!r}]: rows must be a 2-D array of "
                                  f"{self.columns} columns, got {shape}")
        if rows.dtype.name == "bfloat16":
            rows = rows.view(np.uint16)
        if rows.dtype.kind != self._dtype.kind or rows.dtype.itemsize != self._dtype.itemsize:
            raise InvalidArgument(f"vectors[{self.field!r}]: dtype {rows.dtype} does not hold "
                                  f"{self.kind}")
        if len(rows) == 0:
            return
        rows = np.ascontiguousarray(rows.astype(self._dtype, copy=False))
        self._writer.write(rows)
        self._rows_crc = _core.crc32c(rows, self._rows_crc)
        self.rows += len(rows)

    def finish(self) -> WrittenVectorFile:
        """Patch the header, publish the file (atomic, durable) and describe it."""
        if self.rows == 0:
            self.abort()
            raise InvalidArgument(f"vector file of {self.field!r} has no rows; a segment needs "
                                  "at least one")
        header = npy.build_header(self._descr, (self.rows, self.columns))
        assert len(header) == self._header_bytes  # checked for any row count in __init__
        self._writer.write_at(0, header)
        self._writer.commit()
        size = self._header_bytes + self.rows * self.columns * self._dtype.itemsize
        crc = crc32c_combine(_core.crc32c(header), self._rows_crc, size - len(header))
        return WrittenVectorFile(self.prefix, self.field, self.kind, self.dim, self.rows,
                                 FileEntry(self.name, size, crc))

    def abort(self) -> None:
        """Discard the file (idempotent)."""
        self._writer.abort()
