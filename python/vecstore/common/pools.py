"""Process-wide background thread pools that survive a fork: a pool is made on first use and
again in a child process (a forked child inherits the pool object but not its threads)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_mu = threading.Lock()


def pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The pool called ``name`` (threads named ``vecstore-<name>``) of this process."""
    with _mu:
        got = _pools.get(name)
        if got is None or got[0] != os.getpid():
            got = _pools[name] = (os.getpid(), ThreadPoolExecutor(
                workers, thread_name_prefix=f"vecstore-{name}"))
        return got[1]
