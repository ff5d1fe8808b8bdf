"""The expansion step for archives: how `archive.py` plugs into the driver.

`expander(limits)` is the `driver.Expand` that `pipeline.prepare` puts in
`Setup.expand`, so every source's fragments (files, stdin, the index, every blob
of a history) are offered to it. It decides from the first bytes alone whether the
input is an archive (`archive.kind_of`: by content, never by name); only then does
it read the input, and it returns each member that is not an archive itself as a
`driver.Stream` at `outer!inner!member` — which the driver scans in its bounded
windows, lines counted in the member — and each skipped member as a warning
counted in `skipped_files`. Nesting, depth and the decompressed-bytes budget are
`archive.py`'s: members are not offered to the step again.
"""

from __future__ import annotations

from keyscan.model import Finding
from keyscan.sources.driver import Stream

# Not `from typing import TYPE_CHECKING`: see model.py (the hook imports this module).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from keyscan.engine import Engine
    from keyscan.sources.archive import Leaf, Limits, Reader
    from keyscan.sources.driver import Expand, Tally

HEAD = 264  # archive.HEAD: enough bytes to recognise every kind (not imported: the hook)
CHUNK = 1 << 20


def expander(limits: Limits) -> Expand | None:
    """The expansion step for `limits` (None when archives are never opened: depth 0)."""
    if limits.max_depth <= 0:
        return None

    def expand(path: str, head: bytes, open_input: Callable[[], Reader],
               tally: Tally) -> Iterator[Stream] | None:
        if not _looks_like_archive(head):
            return None
        return _members(open_input(), path, limits, tally)

    return expand


def _looks_like_archive(head: bytes) -> bool:
    first = head[:4]
    if not (first[:2] in (b"PK", b"\x1f\x8b", b"BZ") or first == b"\xfd7zX"
            or head[257:262] == b"ustar"):
        return False  # most input: decided without an import (a history asks per blob)
    from keyscan.sources.archive import kind_of  # only for input that starts like one

    return kind_of(head[:HEAD]) is not None


def _members(stream: Reader, path: str, limits: Limits, tally: Tally) -> Iterator[Stream]:
    from keyscan.sources.archive import Problem, expand

    for item in expand(stream, path, limits):
        if isinstance(item, Problem):
            tally.skip(item.message)
        else:
            yield Stream(item.path, _chunks(item))


def _chunks(leaf: Leaf) -> Iterator[bytes]:
    while piece := leaf.read(CHUNK):
        yield piece


# --- for sources that keep their own bookkeeping (image.py): one stream, counted ----


class Scanned:
    """What scanning one input gave: findings and the counts a source adds to Stats."""

    __slots__ = ("allowed", "bytes", "files", "findings", "problems")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.allowed = 0  # matches dropped by keyscan:allow
        self.files = 0  # plain files and archive members scanned
        self.bytes = 0
        self.problems: list[str] = []  # one warning each, counted as skipped


def scan_stream(engine: Engine, stream: Reader, path: str, limits: Limits, into: Scanned) -> None:
    """Findings in a stream of any size, archive or not, through the driver (windows,
    the expansion step); reads it once, to its end."""
    from keyscan.sources.driver import Scanner

    scanner = Scanner(engine, expander(limits))
    into.findings.extend(scanner.emit_stream(path, _read(stream)))
    tally = scanner.tally
    into.files += tally.files
    into.bytes += tally.bytes
    into.allowed += sum(tally.allowed.values())
    into.problems.extend(tally.problems)


def _read(stream: Reader) -> Iterator[bytes]:
    while piece := stream.read(CHUNK):
        yield piece
