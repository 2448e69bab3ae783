"""The storage layer: what every role persists, seen through three protocols.

- :class:`~vecstore.storage.meta.MetaStore` — small keyed metadata with revisions, etcd-style
  transactions and watches; the commit point of every change (catalog, segment list, checkpoints).
  Embedded/standalone: :class:`~vecstore.storage.meta.SqliteMetaStore` (``<data dir>/meta.sqlite``);
  cluster: etcd.
- :class:`~vecstore.storage.object.ObjectStore` — immutable blobs under '/'-separated keys (segment
  files, indexes, delete logs), published atomically. Embedded/standalone:
  :class:`~vecstore.storage.object.LocalObjectStore` (the data directory); cluster: S3-compatible.
- ``Wal`` (in :mod:`vecstore.storage.wal`) — the per-channel write-ahead log.

:class:`~vecstore.storage.lock.DataDirLock` makes one process the owner of a data directory;
:class:`~vecstore.storage.datadir.DataDir` opens a whole data directory (LOCK, meta store, object
store, WAL channels) for the embedded and standalone modes.

Roles never import an implementation: they receive an object satisfying the protocol, so the same
role code runs embedded, as a standalone server, and in a cluster.
"""
