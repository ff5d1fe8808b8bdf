"""A file's contents -> findings, with archives opened (`archive.py`) and members
scanned in bounded windows.

What `scan` (and, through it, other sources) calls for one file: a plain file is
scanned as it is, in one engine call; an archive is expanded and each member that
is not an archive is scanned at `outer!inner!member`, line and column counted in
that member. A member is read WINDOW bytes at a time, each window starting on a
line that the previous one ended in (so a key across the edge is whole in one of
them), and a finding in the overlap is reported once: memory does not grow with a
member's size. Skipped members come back as `problems`, one warning each.
"""

from __future__ import annotations

from keyscan.model import Finding, Fragment

# Not `from typing import TYPE_CHECKING`: see model.py (the hook imports this module).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from keyscan.engine import Engine
    from keyscan.sources.archive import Leaf, Limits, Reader

WINDOW = 16 << 20
OVERLAP = 8 << 10  # longer than any match (a key and its setting's name: < 1 KiB)


class Scanned:
    """What scanning one input gave: findings and the counts a source adds to Stats."""

    __slots__ = ("allowed", "bytes", "files", "findings", "problems")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.allowed = 0  # matches dropped by keyscan:allow
        self.files = 0  # plain files and archive members scanned
        self.bytes = 0
        self.problems: list[str] = []  # one warning each, counted as skipped

    def add(self, other: Scanned) -> None:
        self.findings.extend(other.findings)
        self.allowed += other.allowed
        self.files += other.files
        self.bytes += other.bytes
        self.problems.extend(other.problems)


def is_archive(data: bytes, limits: Limits) -> bool:
    from keyscan.sources.archive import HEAD, kind_of

    return limits.max_depth > 0 and kind_of(data[:HEAD]) is not None


def scan_data(engine: Engine, data: bytes, path: str, limits: Limits, into: Scanned) -> None:
    """Findings in `data` (a whole file), opening it if it is an archive."""
    if is_archive(data, limits):
        import io

        scan_stream(engine, io.BytesIO(data), path, limits, into)
        return
    findings, allowed = engine.scan_counted(Fragment(data, path))
    into.findings.extend(findings)
    into.allowed += allowed
    into.files += 1
    into.bytes += len(data)


def scan_stream(engine: Engine, stream: Reader, path: str, limits: Limits, into: Scanned) -> None:
    """Findings in a stream of any size, archive or not; reads it once, to its end."""
    from keyscan.sources.archive import Problem, expand

    for item in expand(stream, path, limits):
        if isinstance(item, Problem):
            into.problems.append(item.message)
        else:
            scan_leaf(engine, item, into)


def scan_leaf(engine: Engine, leaf: Leaf | Reader, into: Scanned, path: str | None = None) -> None:
    """One member, WINDOW bytes at a time; findings carry the member's own lines."""
    name = path if path is not None else leaf.path  # type: ignore[union-attr]
    data = _fill(leaf, WINDOW)
    into.files += 1
    lines_before = 0  # lines of the member before the current window
    seen: set[tuple[str, str, int, int]] = set()
    while True:
        more = _fill(leaf, WINDOW) if len(data) >= WINDOW else b""
        if more:  # what starts after `cut` is scanned again, whole, in the next window
            cut = data.rfind(b"\n", len(data) - OVERLAP) + 1 or len(data) - OVERLAP
            last_line = data.count(b"\n", 0, cut) + (0 if data[cut - 1 : cut] == b"\n" else 1)
        else:
            cut, last_line = len(data), -1
        findings, allowed = engine.scan_counted(Fragment(data, name))
        into.allowed += allowed
        for finding in findings:
            if finding.line > last_line >= 0:
                continue
            line = finding.line + lines_before
            mark = (finding.rule_id, finding.secret, line, finding.column)
            if mark not in seen:
                seen.add(mark)
                into.findings.append(finding.replace(line=line) if lines_before else finding)
        into.bytes += cut
        if not more:
            return
        lines_before += data.count(b"\n", 0, cut)
        data = data[cut:] + more


def _fill(reader: Leaf | Reader, size: int) -> bytes:
    parts = []
    left = size
    while left > 0:
        data = reader.read(min(left, 1 << 20))
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)
