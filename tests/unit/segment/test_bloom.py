"""Primary-key statistics: the documented hash, no false negatives, false positives near target."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.unit.segment.segdata import make_rng
from vecstore.errors import CorruptionError
from vecstore.storage.segment.bloom import (
    bloom_size,
    build_pk_stats,
    hash_keys,
    parse_pk_stats,
)

M64 = (1 << 64) - 1


def fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    return x ^ (x >> 33)


def reference_hash(key) -> int:
    """Hash scheme 1 exactly as docs/segment_format.md states it, one key at a time."""
    if isinstance(key, int):
        return fmix64((key & M64) ^ 0x9E3779B97F4A7C15)
    data = key.encode("utf-8")
    h = fmix64(len(data) ^ 0xC2B2AE3D27D4EB4F)
    for i in range(0, len(data), 8):
        h = fmix64(h ^ int.from_bytes(data[i : i + 8].ljust(8, b"\0"), "little"))
    return h


def reference_bits(key, k: int, m: int) -> list[int]:
    h = reference_hash(key)
    h2 = fmix64(h ^ 0x165667B19E3779F9) | 1
    return [((h + j * h2) & M64) % m for j in range(k)]


def random_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """n distinct strings of 2..80 bytes (ASCII body, 'é' separator, row number), vectorised."""
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)
    lengths = rng.integers(0, 70, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    data = rng.choice(alphabet, int(offsets[-1]))
    body = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    number = pa.array(rng.permutation(n)).cast(pa.string())
    return pc.binary_join_element_wise(body, number, "é")


def test_hash_matches_the_documented_scheme():
    ints = [0, 1, -1, 2**63 - 1, -(2**63), 123456789]
    assert hash_keys(pa.array(ints, pa.int64())).tolist() == [reference_hash(v) for v in ints]
    strings = ["", "a", "abcdefg", "abcdefgh", "abcdefghi", "é" * 9, "😀 key", "x" * 100]
    assert hash_keys(pa.array(strings)).tolist() == [reference_hash(s) for s in strings]


def test_string_hash_is_independent_of_batch_layout():
    rng = make_rng(21)
    keys = random_strings(rng, 2000).to_pylist() + ["same-len"] * 5
    want = [reference_hash(s) for s in keys]
    arr = pa.array(keys)
    assert hash_keys(arr).tolist() == want
    assert hash_keys(arr.slice(17, 100)).tolist() == want[17:117]  # offset into buffers
    assert hash_keys(arr.cast(pa.large_string())).tolist() == want
    uniform = [f"{i:08d}" for i in range(300)]  # all one length: the unsorted path
    assert hash_keys(pa.array(uniform)).tolist() == [reference_hash(s) for s in uniform]


def test_stats_file_bits_match_the_reference():
    keys = [5, -3, 77, 2**40]
    data = build_pk_stats(pa.array(keys, pa.int64()), "int64", 0.01)
    stats = parse_pk_stats(memoryview(bytes(data)), "int64", "t")
    assert (stats.min, stats.max, stats.keys) == (-3, 2**40, 4)
    assert (stats.num_bits, stats.num_hashes) == bloom_size(4, 0.01) == (512, 7)
    bits = np.unpackbits(stats.bits, bitorder="little")
    want = sorted({b for key in keys for b in reference_bits(key, 7, 512)})
    assert np.flatnonzero(bits).tolist() == want


@pytest.mark.parametrize("key_type", ["int64", "string"])
def test_no_false_negatives_and_rate_near_target(key_type):
    rng = make_rng(22, 0 if key_type == "int64" else 1)
    n = 100_000
    if key_type == "int64":
        universe = rng.integers(-(2**63), 2**63 - 1, 2 * n, dtype=np.int64)
        universe = np.unique(universe)
        rng.shuffle(universe)
        present, absent = pa.array(universe[:n]), pa.array(universe[n : 2 * n])
    else:
        universe = random_strings(rng, 2 * n)
        present, absent = universe[:n], universe[n:]
    data = build_pk_stats(present, key_type, 0.01)
    stats = parse_pk_stats(memoryview(bytes(data)), key_type, "t")
    assert stats.might_contain(present).all()
    hits = stats.might_contain(absent)
    rate = hits.mean()
    assert 0.006 <= rate <= 0.015, rate
    # Keys outside [min, max] are answered by the range check alone.
    if key_type == "string":
        assert not stats.might_contain(pa.array(["\U0010ffff" * 3])).any()


def test_lower_target_gives_fewer_false_positives():
    rng = make_rng(23)
    keys = rng.integers(0, 2**62, 40_000, dtype=np.int64)
    probe = pa.array(rng.integers(0, 2**62, 40_000, dtype=np.int64))
    rates = []
    for fpr in (0.1, 0.01, 0.001):
        stats = parse_pk_stats(
            memoryview(bytes(build_pk_stats(pa.array(keys), "int64", fpr))), "int64", "t"
        )
        rates.append(stats.might_contain(probe).mean())
    assert rates[0] > rates[1] > rates[2]
    assert rates[0] < 0.15 and rates[2] < 0.003


def test_malformed_stats_are_corruption():
    data = bytes(build_pk_stats(pa.array([1, 2, 3], pa.int64()), "int64"))
    for bad in (data[:40], data[:-1], b"X" + data[1:], data + b"\0"):
        with pytest.raises(CorruptionError):
            parse_pk_stats(memoryview(bad), "int64", "t")
    with pytest.raises(CorruptionError, match="key type"):
        parse_pk_stats(memoryview(data), "string", "t")
