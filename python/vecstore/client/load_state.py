"""pymilvus's LoadState enum (same names and values), returned by get_load_state."""

from __future__ import annotations

import enum


class LoadState(enum.IntEnum):
    NotExist = 0
    NotLoad = 1
    Loading = 2
    Loaded = 3

    def __str__(self) -> str:  # pymilvus prints "<LoadState: Loaded>"
        return f"<LoadState: {self.name}>"
