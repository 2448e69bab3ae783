"""The query-node worker's RPC: gRPC over a Unix-domain socket, with vecstore's own messages.

A message is one bytes payload: a 4-byte little-endian header length, a JSON header, then the raw
buffers of the numpy arrays it carries (C order), as the header's ``arrays`` list describes them
(name, dtype, shape, byte offset into the tail), each at a multiple of 8 bytes. Only plain numeric
arrays travel (query vectors, packed allow-bitmaps, row numbers, distances); segment data never
does: both sides map the same files from the data directory's object store.

Methods of ``vecstore.QueryNodeWorker`` (every request and reply such a message):

``Heartbeat``  {} -> {"pid", "segments"}
``Load``       {"prefix"} -> {"rows"}: opens (maps, checks) the committed segment at ``prefix``
``Release``    {"prefixes": [...]} -> {}
``Attach``     {"prefix", "field", "ref", "fingerprint"} -> {}: opens a committed index file;
               ``ref`` None detaches the field's index
``Search``     {"prefix", "field", "k", "metric", "params", "rows"} + arrays ``queries`` and
               optionally ``packed`` (the allow mask, np.packbits little order) -> arrays
               ``rows`` (int64) and ``dist`` (float32), each (queries, w)

A segment the worker does not hold answers NOT_FOUND; a bad request INVALID_ARGUMENT; anything else
INTERNAL, with the error text as details.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

SERVICE = "vecstore.QueryNodeWorker"
METHODS = ("Heartbeat", "Load", "Release", "Attach", "Search")

_LEN = struct.Struct("<I")
_ALIGN = 8


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """One message: ``header`` (JSON-able) and ``arrays`` (numeric numpy arrays)."""
    descr, chunks, offset = [], [], 0
    for name, a in (arrays or {}).items():
        a = np.ascontiguousarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"array {name} of dtype {a.dtype} cannot travel")
        pad = -offset % _ALIGN
        if pad:
            chunks.append(bytes(pad))
            offset += pad
        descr.append([name, a.dtype.str, list(a.shape), offset])
        chunks.append(a.tobytes())
        offset += a.nbytes
    head = json.dumps({**header, "arrays": descr}, separators=(",", ":")).encode()
    head += b" " * (-(4 + len(head)) % _ALIGN)  # the arrays start aligned within the message
    return b"".join([_LEN.pack(len(head)), head, *chunks])


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


def method_handlers(impl: Any) -> Any:
    """The generic handler serving ``impl``'s methods (one per name in METHODS, each taking
    (request bytes, grpc context) and returning reply bytes)."""
    import grpc

    handlers = {name: grpc.unary_unary_rpc_method_handler(
        getattr(impl, name), request_deserializer=_identity, response_serializer=_identity)
        for name in METHODS}
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


class Stub:
    """The client side of one worker's channel: ``call(method, header, arrays, timeout)``."""

    def __init__(self, channel: Any) -> None:
        self._calls = {name: channel.unary_unary(f"/{SERVICE}/{name}",
                                                 request_serializer=_identity,
                                                 response_deserializer=_identity)
                       for name in METHODS}

    def call(self, method: str, header: dict[str, Any],
             arrays: dict[str, np.ndarray] | None = None, timeout: float | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return decode(self._calls[method](encode(header, arrays), timeout=timeout))
