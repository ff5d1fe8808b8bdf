"""Input too big to hold, scanned in windows: the driver's (`driver.Scanner`), for any
source's big file, stdin, blob or archive member.

- Windows of `size` bytes, each starting `overlap` or more before the last one ended
  (at a line start where there is one near). A window reports the findings, and counts
  the `keyscan:allow` suppressions, that start before where the next one starts: each
  is found and counted once, with its line and column in the whole input.
- UTF-16 input (by its byte-order mark, or guessed from its beginning as the engine
  guesses a fragment's: `encodings.utf16_codec`) is converted to UTF-8 as it comes, a
  piece at a time, and that text is windowed: every window is decoded from a character
  boundary, lines and columns are counted in characters as for a converted fragment.
  Without a byte-order mark the bytes as they are are windowed too, as the engine scans
  them too: a binary that begins like UTF-16 hides no key.
"""

from __future__ import annotations

from keyscan.model import Finding, Fragment

# Not `from typing import TYPE_CHECKING`: see model.py (the hook imports the driver).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from keyscan.engine import Engine
    from keyscan.model import Commit
    from keyscan.sources.driver import Tally

DECODE = 1 << 20  # UTF-16 bytes converted at a time: memory stays a few pieces' worth


class Sizes:
    __slots__ = ("line_search", "overlap", "size")

    def __init__(self, size: int, overlap: int, line_search: int) -> None:
        self.size = size  # bytes the engine sees at once
        self.overlap = overlap  # more than any match spans
        self.line_search = line_search  # how far back from its end a line start is looked for


def scan_windows(engine: Engine, tally: Tally, path: str, chunks: Iterator[bytes],
                 commit: Commit | None, sizes: Sizes) -> list[Finding]:
    """Findings in the input `chunks` (more than one window of it), counted in `tally`."""
    from keyscan.encodings import utf16_codec

    tally.files += 1
    first = next(chunks, b"")
    codec = utf16_codec(first)
    raw = None if codec == "utf-16" else _Lane(engine, path, commit, sizes, codec is not None)
    text = None if codec is None else _Lane(engine, path, commit, sizes, True)
    decoder = None
    if codec is not None:
        import codecs

        decoder = codecs.getincrementaldecoder(codec)("replace")
    piece: bytes | None = first
    while piece is not None:
        tally.bytes += len(piece)
        if raw is not None:
            raw.feed(piece)
        if text is not None and decoder is not None:
            for at in range(0, len(piece), DECODE):
                text.feed(decoder.decode(piece[at : at + DECODE]).encode("utf-8"))
        piece = next(chunks, None)
    found: list[Finding] = []
    allowed = 0
    if text is not None and decoder is not None:
        text.feed(decoder.decode(b"", final=True).encode("utf-8"))
        found, allowed = text.finish()
    if raw is not None:
        known = {(f.rule_id, f.secret) for f in found}  # as the engine keeps a fragment's
        more, more_allowed = raw.finish()
        found += [f for f in more if (f.rule_id, f.secret) not in known]
        allowed += more_allowed
    tally.allow(path, allowed)
    return found


class _Lane:
    """One text cut into windows as it comes: each window is scanned once the text has
    grown past it (or has ended), its findings and suppressions kept if they start
    before the next window does. `as_is`: the engine is not to convert a window from
    UTF-16 (this text is the conversion, or the bytes beside it)."""

    def __init__(self, engine: Engine, path: str, commit: Commit | None, sizes: Sizes,
                 as_is: bool) -> None:
        self.engine, self.path, self.commit = engine, path, commit
        self.sizes, self.as_is = sizes, as_is
        self.buffer = b""
        self.lines = 0  # lines before the buffer's start
        self.column = 0  # characters between the last line start and the buffer's start
        self.found: list[Finding] = []
        self.allowed = 0

    def feed(self, piece: bytes) -> None:
        self.buffer += piece
        while len(self.buffer) >= self.sizes.size + self.sizes.overlap:
            self._scan(last=False)

    def finish(self) -> tuple[list[Finding], int]:
        while len(self.buffer) > self.sizes.size:
            self._scan(last=False)
        self._scan(last=True)
        return self.found, self.allowed

    def _scan(self, last: bool) -> None:
        buffer, column = self.buffer, self.column
        window = buffer if last else buffer[: self.sizes.size]
        cut = len(window) if last else _cut(window, self.sizes)
        allowed_at: list[tuple[int, int]] = []
        findings, _ = self.engine.scan_counted(Fragment(window, self.path, self.commit),
                                               allowed_at=allowed_at, as_is=self.as_is)
        cut_line = window.count(b"\n", 0, cut)
        cut_start = window.rfind(b"\n", 0, cut) + 1
        cut_column = _chars(window[cut_start:cut]) + (column if cut_start == 0 else 0)
        for finding in findings:
            col = finding.column + (column if finding.line == 1 else 0)
            if last or (finding.line - 1, col) < (cut_line, cut_column + 1):
                self.found.append(finding.replace(line=finding.line + self.lines, column=col))
        for line, at in allowed_at:  # a suppression at windows' edges: counted once too
            col = at + (column if line == 1 else 0)
            if last or (line - 1, col) < (cut_line, cut_column + 1):
                self.allowed += 1
        self.lines += cut_line
        self.column = cut_column
        self.buffer = buffer[cut:]


def _cut(window: bytes, sizes: Sizes) -> int:
    """Where the next window starts: a line start at least `overlap` before the end,
    else (a very long line) that point, moved off a UTF-8 continuation byte."""
    limit = len(window) - sizes.overlap
    newline = window.rfind(b"\n", max(0, limit - sizes.line_search), limit)
    if newline != -1:
        return newline + 1
    cut = limit
    while cut > limit - 3 and 0x80 <= window[cut] < 0xC0:
        cut -= 1
    return cut


def _chars(text: bytes) -> int:
    return len(text.decode("utf-8", "replace"))
