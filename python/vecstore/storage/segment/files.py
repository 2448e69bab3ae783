"""Access to the files of a segment: mapping with size checks, and reading verified Arrow files.

:func:`map_file` returns a file's bytes without copying them where the store is local (a
``pyarrow.memory_map`` buffer: a read-only mapping of the file, sharing the page cache with every
other process mapping it; its descriptor is closed at once) and fetches them with ``get()``
otherwise. A file that is missing or whose size differs from the one recorded raises
:class:`~vecstore.errors.CorruptionError` naming it (the bundle promised it); other OS errors
raise :class:`~vecstore.errors.StorageError`. Mappings are read-only and never unmapped explicitly:
views handed out keep them alive, and they are unmapped when the last view is gone.

:func:`read_ipc` is only ever called on a file whose checksum has passed; a file Arrow still
rejects is reported as CorruptionError too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from vecstore.errors import CorruptionError, NotFoundError, StorageError
from vecstore.storage.object.protocol import ObjectStore
from vecstore.storage.segment.verify import FileCheck


@dataclass
class SegmentFile:
    key: str
    buffer: Any  # pyarrow.Buffer over a read-only mapping, or bytes: the whole file, not copied
    check: FileCheck
    data_offset: int = 0  # NPY files: where the rows start


def map_file(store: ObjectStore, key: str, size: int, local: bool) -> Any:
    """The file's bytes (a mapping when the store is ``local``); CorruptionError if missing or the
    wrong size."""
    try:
        if local:
            mapped = pa.memory_map(store.local_path(key), "r")
            try:
                actual = mapped.size()
                buffer = mapped.read_buffer(actual) if actual == size else None
            finally:
                # Closing releases the file descriptor; the mapping stays until the last buffer
                # (and every view of it) is gone, so open segments hold no descriptors.
                mapped.close()
        else:
            buffer = store.get(key)
            actual = len(buffer)
    except NotFoundError:
        raise CorruptionError(
            f"segment file {key} is missing: the manifest lists it but the store has no such "
            "object; the segment is incomplete"
        ) from None
    except FileNotFoundError:
        raise CorruptionError(f"segment file {key} disappeared while it was opened") from None
    except OSError as e:
        if isinstance(e, StorageError):
            raise
        err = StorageError(f"cannot open segment file {key}: {e.strerror or e}")
        err.errno = e.errno
        raise err from e
    if actual != size:
        raise CorruptionError(
            f"segment file {key} is {actual} bytes but the manifest recorded {size}; the file "
            "is truncated or was replaced"
        )
    return buffer


def read_ipc(file: SegmentFile) -> pa.Table:
    """Reads a verified Arrow IPC file; CorruptionError if Arrow still rejects it."""
    try:
        return pa.ipc.open_file(file.buffer).read_all()
    except (pa.ArrowException, ValueError, OSError) as e:
        raise CorruptionError(
            f"segment file {file.key} is not a readable Arrow IPC file: {e}"
        ) from None


def check_key_column(column: pa.ChunkedArray, pk_type: str, key: str) -> None:
    t = column.type
    ok = (
        pa.types.is_int64(t)
        if pk_type == "int64"
        else (pa.types.is_string(t) or pa.types.is_large_string(t))
    )
    if not ok or column.null_count:
        raise CorruptionError(f"segment file {key}: primary keys have type {t} or nulls")
