"""The access layer as a network service: pymilvus's ``MilvusService`` over gRPC.

``vecstore serve --data DIR`` (:mod:`.serve`) runs :class:`~.server.VecstoreServer`, which serves
one data directory through the embedded deployment (every role in the server process) with the
servicer of :mod:`.servicer`; pymilvus's ``MilvusClient("http://127.0.0.1:19530")`` connects to it
unchanged. Wire encodings are in :mod:`.encode`, error codes in :mod:`.errors`.

Needs the ``server`` extra (grpcio and pymilvus, whose generated protobuf modules define the
messages); importing this package itself does not.
"""
