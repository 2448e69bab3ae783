"""The query-node worker's RPC methods, over :mod:`vecstore.transport.rpc` (gRPC on a Unix-domain
socket, vecstore's own messages). Only plain numeric arrays travel (query vectors, packed
allow-bitmaps, row numbers, distances); segment data never does: both sides map the same files
from the data directory's object store.

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

from typing import Any

from vecstore.transport import rpc

SERVICE = "vecstore.QueryNodeWorker"
METHODS = ("Heartbeat", "Load", "Release", "Attach", "Search")


def Stub(channel: Any) -> rpc.Stub:  # noqa: N802 - named as the class it returns
    return rpc.Stub(channel, SERVICE, METHODS)
