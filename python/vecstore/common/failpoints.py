"""Named failpoints for crash and fault-injection tests (the Python half; cpp/common/failpoint.h is
the native half and documents the shared syntax)::

    VECSTORE_FAILPOINT="wal.after_append=kill,wal.before_sync=error@3"

``kill`` sends SIGKILL to this process at the point; ``error`` makes :func:`hit` return True so the
caller raises the I/O error the point simulates; ``@N`` fires on the N-th hit only. The variable is
read at import; :func:`configure` replaces it (and the native configuration) within one process.
With the variable unset, :func:`hit` is one dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_lock = threading.Lock()
_points: dict[str, tuple[str, int]] = {}
_hits: dict[str, int] = {}


def _parse(spec: str) -> dict[str, tuple[str, int]]:
    points: dict[str, tuple[str, int]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, action = item.partition("=")
        action, _, nth = action.partition("@")
        if action in ("kill", "error"):
            points[name] = (action, int(nth) if nth else 0)
    return points


def configure(spec: str) -> None:
    """Replaces the configuration of both halves ("" disables every point)."""
    from vecstore import _core

    with _lock:
        _points.clear()
        _points.update(_parse(spec))
        _hits.clear()
    _core.failpoint_set(spec)


def hit(name: str) -> bool:
    """Counts a hit of ``name``; kills the process for ``kill``; True for ``error``."""
    if not _points:
        return False
    with _lock:
        point = _points.get(name)
        if point is None:
            return False
        _hits[name] = _hits.get(name, 0) + 1
        action, nth = point
        fire = nth == 0 or _hits[name] == nth
    if fire and action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return fire and action == "error"


_points.update(_parse(os.environ.get("VECSTORE_FAILPOINT", "")))
