"""NPY headers of the vector files: written so numpy can read them, parsed without trusting them.

A vector file ``vec.<field>.npy`` is a standard NPY file (numpy's ``format.rst``): the magic
``\\x93NUMPY``, a version byte pair, the header length (u16 little-endian for version 1.0, u32 for
2.0), then the header text, a Python dict literal padded with spaces and ending in ``\\n``::

    {'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 128), }

The writer pads the header so that the data starts at a multiple of 64 bytes (as numpy's own
writer does), and uses version 1.0 unless the header would not fit in 65,535 bytes. The data that
follows is the C-order row-major array, ``rows * columns * itemsize`` bytes, and nothing after it.

:func:`parse_header` checks a header against what the manifest promises (descr, shape, total
size) and returns the data offset; it reads at most ``MAX_HEADER_BYTES`` and evaluates the dict
with :func:`ast.literal_eval` only (no code runs). Every fault is a CorruptionError.
"""

from __future__ import annotations

import ast
import re
import struct

from vecstore.errors import CorruptionError

MAGIC = b"\x93NUMPY"
ALIGN = 64
MAX_HEADER_BYTES = 1 << 16


# numpy's and vecstore's own spelling of a 2-D C-order header; a regex is ~50x faster than
# ast.literal_eval, which would otherwise dominate the time to open a segment.
_HEADER_2D = re.compile(
    r"\{'descr': '([<>|=][a-z][0-9]{1,2})', 'fortran_order': (False|True), "
    r"'shape': \(([0-9]{1,19}), ([0-9]{1,19})\), \} *\n"
)


def _fast_header(text: str) -> dict | None:
    m = _HEADER_2D.fullmatch(text)
    if m is None:
        return None
    return {
        "descr": m.group(1),
        "fortran_order": m.group(2) == "True",
        "shape": (int(m.group(3)), int(m.group(4))),
    }


def build_header(descr: str, shape: tuple[int, int]) -> bytes:
    """The NPY header (magic to padding) for a C-order array; its length is a multiple of 64."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    for major, prefix_len, fmt in ((1, 10, "<H"), (2, 12, "<I")):
        total = -(-(prefix_len + len(text) + 1) // ALIGN) * ALIGN
        header_len = total - prefix_len
        if header_len < (1 << (8 * struct.calcsize(fmt))):
            padded = text + " " * (header_len - len(text) - 1) + "\n"
            return (
                MAGIC + bytes([major, 0]) + struct.pack(fmt, header_len) + padded.encode("latin1")
            )
    raise ValueError("NPY header too long")  # unreachable: a 2-D shape fits in version 2.0


def parse_header(
    buf: memoryview, descr: str, shape: tuple[int, int], itemsize: int, where: str
) -> int:
    """Checks the NPY header at the start of ``buf`` (the whole file); returns the data offset.

    CorruptionError if the header is truncated or malformed, or its dtype, order or shape differ
    from ``descr``/``shape``, or the file is not exactly header + data long.
    """
    size = len(buf)

    def bad(problem: str) -> CorruptionError:
        return CorruptionError(f"vector file {where}: {problem}")

    if size < 10 or bytes(buf[:6]) != MAGIC:
        raise bad("not an NPY file (bad magic or truncated header)")
    major = buf[6]
    if major == 1:
        prefix_len = 10
        header_len = struct.unpack("<H", bytes(buf[8:10]))[0]
    elif major in (2, 3):
        if size < 12:
            raise bad("truncated NPY header")
        prefix_len = 12
        header_len = struct.unpack("<I", bytes(buf[8:12]))[0]
    else:
        raise bad(f"unsupported NPY version {major}.{buf[7]}")
    offset = prefix_len + header_len
    if header_len > MAX_HEADER_BYTES or offset > size:
        raise bad(f"truncated or oversized NPY header ({header_len} bytes, file {size} bytes)")
    if offset % ALIGN:
        raise bad(f"data offset {offset} is not a multiple of {ALIGN}")
    try:
        text = bytes(buf[prefix_len:offset]).decode("utf-8" if major == 3 else "latin1")
        header = _fast_header(text)
        if header is None:  # written by another NPY writer: the general (slower) parser
            header = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise bad("unreadable NPY header") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise bad(f"NPY header has unexpected keys: {text.strip()[:200]!r}")
    if header["descr"] != descr and not (
        descr[0] == "|" and header["descr"] in ("<" + descr[1:], "=" + descr[1:])
    ):
        raise bad(f"NPY dtype {header['descr']!r} differs from the manifest's {descr!r}")
    if header["fortran_order"] is not False:
        raise bad("NPY array is in Fortran order; segments store C order")
    if header["shape"] != shape:
        raise bad(f"NPY shape {header['shape']!r} differs from the manifest's {shape!r}")
    expected = offset + shape[0] * shape[1] * itemsize
    if size != expected:
        raise bad(f"file is {size} bytes; header and shape {shape} make {expected}")
    return offset
