"""A one-line progress display on stderr, only for a person watching a slow scan.

Nothing is written when stderr is not a terminal (CI logs, pipes, tests), nor
during the first half second: a quick scan stays silent.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

DELAY = 0.5  # seconds before the first line: quick scans print nothing
INTERVAL = 0.1  # seconds between redraws


class Progress:
    """`advance()` as work completes, `close()` (or `with`) to clear the line."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "files") -> None:
        self._label = label
        self._unit = unit
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty()
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._shown = False
        self.files = 0
        self.bytes = 0

    def advance(self, files: int = 0, bytes: int = 0) -> None:
        self.update(self.files + files, self.bytes + bytes)

    def update(self, files: int, bytes: int) -> None:
        """Totals so far (for sources that count for themselves)."""
        self.files = files
        self.bytes = bytes
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._started >= DELAY and now - self._drawn_at >= INTERVAL:
            self._drawn_at = now
            self._shown = True
            megabytes = self.bytes / 1e6
            line = f"{self._label}: {self.files} {self._unit}, {megabytes:.1f} MB"
            self._stream.write(f"\r{line}\x1b[K")
            self._stream.flush()

    def show(self, line: str) -> None:
        """Draw `line` as it is (for commands whose progress is not files and bytes)."""
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._started >= DELAY and now - self._drawn_at >= INTERVAL:
            self._drawn_at = now
            self._shown = True
            self._stream.write(f"\r{line[:200]}\x1b[K")
            self._stream.flush()

    def close(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")  # leave the terminal as it was
            self._stream.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
