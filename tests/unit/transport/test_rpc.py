"""The role RPC's message format: headers and buffers round-trip, aligned for the kernels."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore.transport import rpc


def test_messages_round_trip():
    arrays = {"queries": np.arange(15, dtype=np.float32).reshape(3, 5),
              "packed": np.array([5, 255, 1], dtype=np.uint8),
              "rows": np.array([[1, -1]], dtype=np.int64)}
    header, got = rpc.decode(rpc.encode({"prefix": "1/2", "k": 3, "params": None}, arrays))
    assert header == {"prefix": "1/2", "k": 3, "params": None}
    assert set(got) == set(arrays)
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype and np.array_equal(got[name], a)
        assert got[name].ctypes.data % 8 == 0  # the kernels need aligned arrays
    assert rpc.decode(rpc.encode({}))[1] == {}
    with pytest.raises(TypeError):
        rpc.encode({}, {"pks": np.array(["a"], dtype=object)})


def test_byte_parts_travel_as_one_uint8_array():
    parts = [b"abc", memoryview(b"defgh"), np.arange(3, dtype=np.int16)]
    header, got = rpc.decode(rpc.encode({"n": 1}, {"first": np.ones(1, np.uint8),
                                                   "payload": parts, "single": b"xyz"}))
    assert header == {"n": 1}
    assert got["payload"].tobytes() == b"abcdefgh" + np.arange(3, dtype=np.int16).tobytes()
    assert got["payload"].ctypes.data % 8 == 0
    assert got["single"].tobytes() == b"xyz"
