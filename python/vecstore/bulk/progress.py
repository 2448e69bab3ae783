"""A one-line progress bar for long imports: rows done, rows/s, ETA, on a terminal only.

``ProgressBar(total, stream)`` draws on ``stream`` (stderr by default) only when it is a TTY, so
logs and pipes get no control characters; :meth:`update` redraws at most every ``interval``
seconds, :meth:`close` draws the last state and ends the line. Rates are averaged over the whole
run (steady imports; no smoothing needed).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    def __init__(self, total: int, stream: TextIO | None = None, label: str = "import",
                 interval: float = 0.2, width: int = 24) -> None:
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.total, self.label, self.interval, self.width = total, label, interval, width
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._done = 0

    def line(self, done: int, now: float | None = None) -> str:
        """The text of the bar for ``done`` rows (also used by tests)."""
        elapsed = max(1e-9, (time.monotonic() if now is None else now) - self._start)
        rate = done / elapsed
        text = f"{self.label} {done:,}"
        if self.total:
            frac = min(1.0, done / self.total)
            filled = int(frac * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            eta = _duration((self.total - done) / rate) if rate > 0 else "?"
            text += f"/{self.total:,} rows [{bar}] {frac:4.0%}  {rate:,.0f} rows/s  ETA {eta}"
        else:
            text += f" rows  {rate:,.0f} rows/s"
        return text

    def update(self, done: int, total: int | None = None) -> None:
        self._done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= self.interval:
            self._last_draw = now
            self.stream.write("\r" + self.line(done, now) + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line(self._done) + "\x1b[K\n")
            self.stream.flush()
