"""Primary-key statistics (``stats/pk``): min/max key and a bloom filter, used to route deletes.

File layout (little-endian; the whole file is covered by the manifest's CRC32C):

    offset  size  field
    0       8     magic "VSPKSTAT"
    8       2     major version (1)        readers refuse other majors
    10      2     minor version (0)        readers accept any minor
    12      1     key type: 1 = int64, 2 = UTF-8 string
    13      1     hash scheme: 1 (below)
    14      2     k: bits set per key, 1..30
    16      8     keys inserted (u64, duplicates counted)
    24      8     m: filter bits (u64), a multiple of 512, at least 512
    32      8     false-positive target the filter was sized for (f64; informational)
    40      4     length in bytes of the min key (8 for int64)
    44      4     length in bytes of the max key
    48      16    zero
    64      ...   min key, then max key (int64: 8 bytes two's complement; string: UTF-8),
                  then zero padding to a multiple of 64
    B       m/8   filter: bit i is bit (i & 7) of byte B + (i >> 3)

and the file ends there (size == B + m/8).

Sizing: for a target false-positive rate p (default 1%), m = ceil(n * -ln p / ln(2)^2 / 512) * 512
bits and k = round(-ln p / ln 2), 1..30 (9.6 bits per key and k = 7 for 1%).

Hash scheme 1, all arithmetic modulo 2**64, fmix64 = MurmurHash3's 64-bit finaliser
(x ^= x >> 33; x *= 0xff51afd7ed558ccd; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53; x ^= x >> 33):

- int64 key v: h = fmix64(uint64(v) ^ 0x9e3779b97f4a7c15);
- string key of L UTF-8 bytes: h = fmix64(L ^ 0xc2b2ae3d27d4eb4f), then for each 8-byte word w of
  the bytes read little-endian (the last one zero-padded): h = fmix64(h ^ w);
- h2 = fmix64(h ^ 0x165667b19e3779f9) | 1; bit j (j = 0..k-1) is (h + j * h2) mod m.

Hashing is vectorised numpy over whole arrays: strings are hashed word column by word column over
the Arrow data buffer (rows sorted by length so the rows still active are a prefix), never row by
row in Python. Lookups (:meth:`PkStats.might_contain`) never give a false negative.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.errors import CorruptionError

MAGIC = b"VSPKSTAT"
MAJOR = 1
MINOR = 0
HASH_SCHEME = 1
DEFAULT_FPR = 0.01
_KEY_TYPES = {1: "int64", 2: "string"}
_HEADER = struct.Struct("<8sHHBBHQQdII16x")
_MAX_KEY_BYTES = 1 << 16
_MAX_BITS = 1 << 40

_U64 = np.uint64
_C1, _C2 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)
_SEED_INT, _SEED_STR, _SEED_H2 = (
    _U64(0x9E3779B97F4A7C15),
    _U64(0xC2B2AE3D27D4EB4F),
    _U64(0x165667B19E3779F9),
)
_S33 = _U64(33)
# _LOW_BYTES[r] keeps the r low bytes of a little-endian word (the bytes of a string's last word).
_LOW_BYTES = np.array([(1 << (8 * r)) - 1 for r in range(9)], dtype=np.uint64)

Key = Union[int, str]


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser, in place on a uint64 array (wrapping multiplication)."""
    h ^= h >> _S33
    h *= _C1
    h ^= h >> _S33
    h *= _C2
    h ^= h >> _S33
    return h


def _string_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start offsets into ``data``, lengths, data padded with 8 zero bytes) of a string array."""
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.string())
    n = len(arr)
    width = "<i8" if pa.types.is_large_string(arr.type) else "<i4"
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + n + 1]
    offsets = offsets.astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    padded = np.zeros(hi - lo + 8, dtype=np.uint8)
    if hi > lo:
        padded[: hi - lo] = np.frombuffer(data_buf, dtype=np.uint8)[lo:hi]
    return offsets[:-1] - lo, np.diff(offsets), padded


def hash_keys(keys: pa.Array) -> np.ndarray:
    """Scheme-1 hash (uint64) of every key of an int64 or string Arrow array without nulls."""
    if pa.types.is_int64(keys.type):
        h = keys.to_numpy(zero_copy_only=False).astype(np.int64, copy=True).view(np.uint64)
        h ^= _SEED_INT
        return _fmix64(h)
    starts, lengths, padded = _string_parts(keys)
    h = lengths.astype(np.uint64)
    h ^= _SEED_STR
    _fmix64(h)
    if len(h) == 0 or lengths.max() == 0:
        return h
    # Every 8-byte window of the data as a little-endian u64 (unaligned, strided by one byte).
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    uniform = lengths.min() == lengths.max()
    order = None if uniform else np.argsort(-lengths, kind="stable")
    s_len = lengths if uniform else lengths[order]
    s_start = starts if uniform else starts[order]
    s_h = h if uniform else h[order]
    n_words = (s_len + 7) // 8
    neg_words = -n_words  # ascending, so searchsorted counts the rows with more than j words
    for j in range(int(n_words[0])):
        active = len(s_h) if uniform else int(np.searchsorted(neg_words, -j, side="left"))
        w = words[s_start[:active] + 8 * j].astype(np.uint64)
        rem = s_len[:active] - 8 * j
        tail = rem < 8
        if tail.any():
            w[tail] &= _LOW_BYTES[rem[tail]]
        view = s_h[:active]
        view ^= w
        _fmix64(view)
    if not uniform:
        h[order] = s_h
    return h


def _bit_positions(h: np.ndarray, k: int, m: int):
    """Yields the k bit positions (uint64 arrays) of each hash (double hashing)."""
    h2 = _fmix64(h ^ _SEED_H2)
    h2 |= _U64(1)
    acc = h.copy()
    mod = _U64(m)
    for j in range(k):
        yield acc % mod
        if j + 1 < k:
            acc += h2


def bloom_size(n: int, fpr: float) -> tuple[int, int]:
    """(m bits, k) for n keys at false-positive target fpr."""
    bits_per_key = -math.log(fpr) / (math.log(2) ** 2)
    m = max(512, math.ceil(n * bits_per_key / 512) * 512)
    k = min(30, max(1, round(-math.log(fpr) / math.log(2))))
    return m, k


@dataclass(frozen=True)
class PkStats:
    """Decoded ``stats/pk``: key range and bloom filter (its bits may be a view of a mapping)."""

    key_type: str
    keys: int
    num_hashes: int
    num_bits: int
    fpr_target: float
    min: Key
    max: Key
    bits: np.ndarray  # uint8, num_bits / 8 bytes, read-only

    def might_contain(self, keys: pa.Array) -> np.ndarray:
        """Bool per key: False means certainly absent (out of range, or bloom says no)."""
        if len(keys) == 0:
            return np.zeros(0, dtype=bool)
        in_range = pc.and_(
            pc.greater_equal(keys, pa.scalar(self.min, keys.type)),
            pc.less_equal(keys, pa.scalar(self.max, keys.type)),
        )
        result = in_range.to_numpy(zero_copy_only=False).astype(bool, copy=False)
        h = hash_keys(keys)
        for pos in _bit_positions(h, self.num_hashes, self.num_bits):
            byte = self.bits[(pos >> _U64(3)).astype(np.intp)]
            result &= ((byte >> (pos & _U64(7)).astype(np.uint8)) & 1).astype(bool)
        return result


def _encode_key(value: Key, key_type: str) -> bytes:
    return struct.pack("<q", value) if key_type == "int64" else value.encode("utf-8")


def build_pk_stats(keys: pa.Array, key_type: str, fpr: float = DEFAULT_FPR) -> bytearray:
    """The ``stats/pk`` file for ``keys`` (int64 or string Arrow array, no nulls, non-empty)."""
    m, k = bloom_size(len(keys), fpr)
    bits = np.zeros(m, dtype=bool)
    for pos in _bit_positions(hash_keys(keys), k, m):
        bits[pos.astype(np.intp)] = True
    packed = np.packbits(bits, bitorder="little")
    bounds = pc.min_max(keys)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    lo_b, hi_b = _encode_key(lo, key_type), _encode_key(hi, key_type)
    type_code = 1 if key_type == "int64" else 2
    head = _HEADER.pack(
        MAGIC, MAJOR, MINOR, type_code, HASH_SCHEME, k, len(keys), m, fpr, len(lo_b), len(hi_b)
    )
    keys_part = lo_b + hi_b
    keys_part += b"\0" * (-len(keys_part) % 64)
    out = bytearray(head + keys_part)
    out += packed.tobytes()
    return out


def parse_pk_stats(buf: memoryview, key_type: str, where: str) -> PkStats:
    """Decodes a ``stats/pk`` file (bounds-checked; the filter stays a view of ``buf``)."""

    def bad(problem: str) -> CorruptionError:
        return CorruptionError(f"primary-key statistics {where}: {problem}")

    if len(buf) < _HEADER.size:
        raise bad(f"truncated ({len(buf)} bytes)")
    magic, major, minor, code, scheme, k, n, m, fpr, lo_len, hi_len = _HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise bad("bad magic")
    if major != MAJOR:
        raise bad(f"format version {major}.{minor}; this vecstore reads major {MAJOR} only")
    if _KEY_TYPES.get(code) != key_type:
        raise bad(f"key type code {code}, but the manifest says {key_type}")
    if scheme != HASH_SCHEME or not 1 <= k <= 30:
        raise bad(f"unknown hash scheme {scheme} or bad hash count {k}")
    if m < 512 or m % 512 or m > _MAX_BITS:
        raise bad(f"bad filter size {m} bits")
    width = 8 if key_type == "int64" else _MAX_KEY_BYTES
    if not (lo_len <= width and hi_len <= width) or (key_type == "int64" and lo_len != hi_len):
        raise bad(f"bad key lengths {lo_len}, {hi_len}")
    keys_end = _HEADER.size + lo_len + hi_len
    bits_at = keys_end + (-keys_end % 64)
    if len(buf) != bits_at + m // 8:
        raise bad(f"file is {len(buf)} bytes, its header makes {bits_at + m // 8}")
    raw_lo = bytes(buf[_HEADER.size : _HEADER.size + lo_len])
    raw_hi = bytes(buf[_HEADER.size + lo_len : keys_end])
    try:
        if key_type == "int64":
            lo, hi = struct.unpack("<q", raw_lo)[0], struct.unpack("<q", raw_hi)[0]
        else:
            lo, hi = raw_lo.decode("utf-8"), raw_hi.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("min/max keys are not UTF-8") from None
    if lo > hi or not math.isfinite(fpr):
        raise bad("min key above max key, or bad false-positive target")
    bits = np.frombuffer(buf, dtype=np.uint8, count=m // 8, offset=bits_at)
    if bits.flags.writeable:
        bits = bits.view()
        bits.flags.writeable = False
    return PkStats(key_type, n, k, m, fpr, lo, hi, bits)
