"""The RPC between roles on one machine: gRPC over Unix-domain sockets, with vecstore's own
messages (no protobuf schema to keep in step).

A message is one bytes payload: a 4-byte little-endian header length, a JSON header, then the raw
buffers it carries, as the header's ``arrays`` list describes them (name, dtype, shape, byte
offset into the tail), each at a multiple of 8 bytes. A buffer is a plain numeric numpy array
(query vectors, bitmaps, row numbers, distances) or a list of byte buffers sent as one uint8
array (a WAL record's parts). Bulk data stays out of it: roles map the same files.

A role's service is a name and a tuple of method names; :func:`method_handlers` serves one
callable per name (request bytes, grpc context) -> reply bytes, and :class:`Stub` calls them with
(header, arrays) -> (header, arrays).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

_LEN = struct.Struct("<I")
_ALIGN = 8
# Every role's channel and server: messages up to 1 GiB each way (a WAL record is at most 64 MiB).
CHANNEL_OPTIONS = [("grpc.max_send_message_length", 1 << 30),
                   ("grpc.max_receive_message_length", 1 << 30)]


def encode(header: dict[str, Any], arrays: dict[str, Any] | None = None) -> bytes:
    """One message: ``header`` (JSON-able) and ``arrays`` (numeric numpy arrays, or sequences of
    byte buffers that travel as one uint8 array)."""
    descr, chunks, offset = [], [], 0
    for name, a in (arrays or {}).items():
        pad = -offset % _ALIGN
        if pad:
            chunks.append(bytes(pad))
            offset += pad
        if isinstance(a, np.ndarray):
            a = np.ascontiguousarray(a)
            if a.dtype.kind not in "biufUS":
                raise TypeError(f"array {name} of dtype {a.dtype} cannot travel")
            descr.append([name, a.dtype.str, list(a.shape), offset])
            chunks.append(memoryview(a).cast("B"))
            offset += a.nbytes
        else:
            parts = [memoryview(p).cast("B") for p in _buffers(a)]
            size = sum(p.nbytes for p in parts)
            descr.append([name, "|u1", [size], offset])
            chunks.extend(parts)
            offset += size
    head = json.dumps({**header, "arrays": descr}, separators=(",", ":")).encode()
    head += b" " * (-(4 + len(head)) % _ALIGN)  # the arrays start aligned within the message
    return b"".join([_LEN.pack(len(head)), head, *chunks])


def _buffers(a: Any) -> Sequence[Any]:
    return [a] if isinstance(a, (bytes, bytearray, memoryview)) else a


def decode(message: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of a message made by :func:`encode`. The arrays are read-only views of
    ``message``."""
    (n,) = _LEN.unpack_from(message, 0)
    header = json.loads(message[4:4 + n])
    base = 4 + n
    arrays = {}
    for name, dtype, shape, offset in header.pop("arrays", []):
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        a = np.frombuffer(message, dt, count, base + offset).reshape(shape)
        if a.ctypes.data % _ALIGN:
            a = a.copy()  # the kernels need aligned arrays; a bytes object's own buffer may not be
        arrays[name] = a
    return header, arrays


def _identity(b: bytes) -> bytes:
    return b


def method_handlers(service: str, methods: dict[str, Any]) -> Any:
    """The generic handler serving ``methods`` (name -> callable taking (request bytes, grpc
    context) and returning reply bytes)."""
    import grpc

    handlers = {name: grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=_identity, response_serializer=_identity)
        for name, fn in methods.items()}
    return grpc.method_handlers_generic_handler(service, handlers)


class Stub:
    """The client side of one role's channel: ``call(method, header, arrays, timeout)``, and
    ``future(...)`` for a call whose reply is waited for later (``decode(f.result())``)."""

    def __init__(self, channel: Any, service: str, methods: Sequence[str]) -> None:
        self._calls = {name: channel.unary_unary(f"/{service}/{name}",
                                                 request_serializer=_identity,
                                                 response_deserializer=_identity)
                       for name in methods}

    def call(self, method: str, header: dict[str, Any],
             arrays: dict[str, Any] | None = None, timeout: float | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return decode(self._calls[method](encode(header, arrays), timeout=timeout))

    def future(self, method: str, header: dict[str, Any],
               arrays: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        return self._calls[method].future(encode(header, arrays), timeout=timeout)
