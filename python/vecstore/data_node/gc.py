"""Garbage collection of segment files: what a crash or a finished task leaves behind.

A flush or compaction writes its files first and commits them in the meta store after; a
compaction, truncate or drop commits first and removes files after. A crash between the two
leaves files that no committed key names: a whole segment prefix (``<collection>/<segment>/``)
whose segment is not registered, or a delete log (``<prefix>/delta/<n>.arrow``) or index file
(``<prefix>/index/<field>/<build>/image.bin``) of a registered segment that was never committed
(or was unregistered: a dropped index, one built for an older declaration).
:func:`collect_garbage` removes exactly those, and runs when a deployment opens, before anything
could be writing. Keys outside the ``<int>/<int>/...`` layout are left alone.
"""

from __future__ import annotations

import logging

from vecstore.storage.object import ObjectStore

log = logging.getLogger(__name__)


def collect_garbage(store: ObjectStore, live: dict[str, set[str]]) -> int:
    """Removes segment files not referenced by ``live`` (segment prefix -> names of its
    committed delete logs and index files, e.g. ``delta/0.arrow``); returns how many files were
    removed."""
    removed = 0
    for key in store.list(""):
        parts = key.split("/")
        if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        prefix = f"{parts[0]}/{parts[1]}"
        deltas = live.get(prefix)
        rest = "/".join(parts[2:])
        if deltas is None or (parts[2] in ("delta", "index") and rest not in deltas):
            store.delete(key)
            removed += 1
    if removed:
        log.info("removed %d unreferenced segment files", removed)
    return removed


def remove_prefix(store: ObjectStore, prefix: str) -> None:
    """Removes every file under the segment prefix ``prefix`` (no error if there is none)."""
    for key in store.list(prefix.rstrip("/") + "/"):
        store.delete(key)
