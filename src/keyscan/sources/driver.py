"""The one driver every source runs through: fragments in, findings and counts out.

A source does not call the engine. It emits what it read, with where it came from
(gitleaks' `Fragments(ctx, yield)`), to a `Scanner` that it is handed:

    def fragments(self, scanner: Scanner) -> None:      # the whole interface
        for path, data in ...:
            scanner.emit(Fragment(data, path))            # -> Scanned(findings, quiet)
        scanner.emit_stream(path, chunks)                 # input too big to hold: windows
        scanner.tally.skip("x: cannot read; skipped")     # a warning, counted
        scanner.tally.unreadable(oid, "corrupt")          # a git object (exit is never 0)

The scanner does everything else, the same way for every source:

- **expand**: each fragment (and stream) is first offered to the expansion step
  (`Expand`, `Setup.expand`): an archive is a fragment that expands into streams (its
  members, paths `outer!inner`, nesting and limits the step's own), each scanned in
  place of it; what does not expand is scanned as it is. `sources/contents.py`
  plugs archives in here, for every source alike.
- **engine**: in bounded windows (`WINDOW` bytes, overlapping by `OVERLAP`, cut at
  line starts where it can) for input past `WINDOW`: memory does not grow with the
  size of one input, and a key (or a `keyscan:allow` suppression) across a window's
  edge is found (counted) once, with its line and column in the whole input; UTF-16
  is windowed as the text it is (`sources/windows.py`).
- **counts**: files, bytes, `keyscan:allow` suppressions (every mode), skipped inputs
  and unreadable objects, in a `Tally` that worker processes send back whole.
- **the shortcut**: `emit(fragment, check=spans)` asks first whether those spans are
  quiet (`Engine.quiet`: no sign of a key) and skips the scan if so. Only the blob
  source uses it (a delta of a quiet blob changed only those spans); `--exhaustive`
  never passes `check`.
- **parallelism**: `run_parts` runs a source's parts in worker processes; a worker
  that dies costs a retry of its part in this process, never a traceback.

Filters, verification and reports follow in `pipeline.build_report`, also one place.
"""

from __future__ import annotations

import io  # loaded at every interpreter's start-up: free here

from keyscan.encodings import utf16_codec
from keyscan.model import Finding, Fragment

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import IO, Protocol, TypeVar

    from keyscan.engine import Engine
    from keyscan.model import Commit, Stats

    _R = TypeVar("_R")
    Spans = Sequence[tuple[int, int]]
    Warn = Callable[[str], None]
    class Reader(Protocol):
        def read(self, size: int = ..., /) -> bytes: ...

    # The expansion step: (path, the first HEAD bytes or more, a function that opens the
    # whole input from its start, tally) -> the members, or None when the head says it
    # is no container (then it has read nothing). Members are not offered again; what
    # it cannot open it counts with `tally.skip(message)`.
    Expand = Callable[[str, bytes, Callable[[], Reader], "Tally"], "Iterable[Stream] | None"]

HEAD = 1024  # bytes the expansion step decides from (at least)
WINDOW = 16 << 20  # bytes the engine sees at once: bounds memory for any input size
OVERLAP = 64 << 10  # more than any match spans, encoded ones included
# Past this many bytes searched, a scanner checks each text for a sign of a key before
# it searches it (see `Scanner._scan`). Below it (a hook's staged change), building
# the check (RE2 patterns: ~5 ms) would cost more than it saves.
QUIET_AFTER = 1 << 20
LINE_SEARCH = 1 << 20  # how far back from a window's end a line start is looked for
MANY = 5  # unreadable objects named one warning each; past this, one line for all


class Stream:
    """Input read in pieces (a big file, stdin, a big blob): scanned in windows."""

    __slots__ = ("chunks", "commit", "path")

    def __init__(self, path: str, chunks: Iterable[bytes], commit: Commit | None = None) -> None:
        self.path = path
        self.chunks = chunks
        self.commit = commit


class Scanned:
    __slots__ = ("findings", "quiet")

    def __init__(self, findings: list[Finding], quiet: bool = False) -> None:
        self.findings = findings
        self.quiet = quiet  # the `check` spans showed no sign of a key: not scanned


class Tally:
    """What a scan read, skipped and could not read; picklable, so workers send it back."""

    __slots__ = ("allowed", "bytes", "files", "missing", "problems", "skipped")

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0
        self.allowed: dict[str, int] = {}  # path -> matches `keyscan:allow` on their line dropped
        self.skipped = 0
        self.problems: list[str] = []  # one warning per skipped input
        self.missing: dict[str, str] = {}  # unreadable object id -> why

    def skip(self, message: str) -> None:
        self.skipped += 1
        self.problems.append(message)

    def unreadable(self, oid: str, reason: str) -> None:
        self.missing.setdefault(oid, reason)

    def add(self, other: Tally) -> None:
        self.files += other.files
        self.bytes += other.bytes
        for path, count in other.allowed.items():
            self.allowed[path] = self.allowed.get(path, 0) + count
        self.skipped += other.skipped
        self.problems += other.problems
        for oid, reason in other.missing.items():
            self.missing.setdefault(oid, reason)

    def settle(self, stats: Stats, warn: Warn, allowed: bool = True) -> None:
        """Move the counts into `stats` and say what was skipped (unreadable objects are
        said by `report_unreadable`, once their paths are known). `allowed=False` keeps
        the `keyscan:allow` counts for the source to settle later (history: see there)."""
        stats.files += self.files
        stats.scanned_bytes += self.bytes
        stats.skipped += self.skipped
        if allowed and self.allowed:
            before = stats.suppressed.get("keyscan:allow", 0)
            stats.suppressed["keyscan:allow"] = before + sum(self.allowed.values())
        for problem in self.problems:
            warn(problem)
        self.files = self.bytes = self.skipped = 0
        self.problems = []
        if allowed:
            self.allowed = {}

    def allow(self, path: str, count: int) -> None:
        if count:
            self.allowed[path] = self.allowed.get(path, 0) + count


def report_unreadable(missing: dict[str, str], paths: dict[str, str], stats: Stats,
                      warn: Warn) -> None:
    """One warning per unreadable object (id, a path holding it, why), or one line for
    many (a partial clone whose remote is gone); all counted in `stats.unreadable`."""
    if not missing:
        return
    stats.unreadable += len(missing)
    if len(missing) > MANY:
        first = ", ".join(sorted(missing)[:3])
        reasons = sorted(set(missing.values()))
        why = reasons[0] if len(reasons) == 1 else f"{reasons[0]} and other reasons"
        warn(f"{len(missing)} git objects could not be read ({why}), e.g. {first}; "
             "they were skipped: 'git fsck' says more")
        return
    for oid in sorted(missing):
        where = f" ({paths[oid]})" if oid in paths else ""
        warn(f"git object {oid}{where} could not be read: {missing[oid]}; skipped")


class Scanner:
    """The engine, the expansion step and the windows, counting into `tally`."""

    def __init__(self, engine: Engine, expand: Expand | None = None,
                 tally: Tally | None = None) -> None:
        self.engine = engine
        self.expand = expand  # None: nothing is a container
        self.tally = tally or Tally()
        self._searched = 0  # bytes of whole texts searched without the check first

    def quiet_copy(self) -> Scanner:
        """A scanner like this one whose counts are thrown away: for reading again what
        was counted already (old versions, a finding's line and column)."""
        return Scanner(self.engine, self.expand, Tally())

    def emit(self, fragment: Fragment, check: Spans | None = None) -> Scanned:
        """Findings in `fragment` (or in what it expands into). With `check`, the spans
        are tested for a sign of a key first, and nothing more is done if none has one
        (the caller knows the rest is quiet); with an empty `check`, nothing is tested:
        the text is searched whole (the caller expects findings)."""
        tally = self.tally
        data = fragment.data
        if self.expand is not None:
            inner = self.expand(fragment.path, data[:HEAD], lambda: io.BytesIO(data), tally)
            if inner is not None:
                return Scanned(self._members(inner, fragment.commit))
        if len(data) > WINDOW:
            return Scanned(self._windows(fragment.path, iter((data,)), fragment.commit))
        tally.files += 1
        tally.bytes += len(data)
        if check and self._quiet(data, check):
            return Scanned([], quiet=True)
        return Scanned(self._scan(fragment, whole=check is None))

    def emit_stream(self, path: str, chunks: Iterable[bytes],
                    commit: Commit | None = None, expand: bool = True) -> list[Finding]:
        """Findings in input that comes in pieces (or in what it expands into): one
        fragment if it is small, else windows."""
        pieces = iter(chunks)
        head = b""
        for piece in pieces:
            head += piece
            if len(head) > WINDOW:
                break
        else:
            if expand:
                return self.emit(Fragment(head, path, commit)).findings
            return self._plain(Fragment(head, path, commit))
        if expand and self.expand is not None:
            inner = self.expand(path, head[:HEAD], lambda: _Joined(head, pieces), self.tally)
            if inner is not None:
                return self._members(inner, commit)
        return self._windows(path, _chain(head, pieces), commit)

    def _members(self, members: Iterable[Stream], commit: Commit | None) -> list[Finding]:
        found: list[Finding] = []
        for member in members:  # each read to its end before the next (tar streams)
            found += self.emit_stream(member.path, member.chunks, member.commit or commit,
                                      expand=False)
        return found

    def _plain(self, fragment: Fragment) -> list[Finding]:
        self.tally.files += 1
        self.tally.bytes += len(fragment.data)
        return self._scan(fragment)

    def _scan(self, fragment: Fragment, whole: bool = True) -> list[Finding]:
        """The engine's findings in `fragment`, its `keyscan:allow` suppressions counted.
        Once this scanner has searched `QUIET_AFTER` bytes, a text is first checked for a
        sign of a key (`Engine.quiet`: mostly one RE2 pass, several times faster than the
        search) and searched no further without one. (`whole`: not known quiet already.)"""
        data = fragment.data
        if whole:
            if self._searched < QUIET_AFTER:
                self._searched += len(data)
            elif self._quiet(data, ((0, len(data)),)):
                return []
        findings, allowed = self.engine.scan_counted(fragment)
        self.tally.allow(fragment.path, allowed)
        return findings

    def _quiet(self, data: bytes, spans: Spans) -> bool:
        if utf16_codec(data) is not None:
            return False  # UTF-16 (with a BOM or without) is scanned converted, never by parts
        quiet = self.engine.quiet
        return all(quiet(data, low, high) for low, high in spans)

    def _windows(self, path: str, chunks: Iterator[bytes],
                 commit: Commit | None) -> list[Finding]:
        """Scan in windows of `WINDOW` bytes overlapping by `OVERLAP` (`windows.py`)."""
        from keyscan.sources.windows import Sizes, scan_windows

        return scan_windows(self.engine, self.tally, path, chunks, commit,
                            Sizes(WINDOW, OVERLAP, LINE_SEARCH))


class _Joined:
    """A reader over `head` and then the pieces after it (the expansion step's input)."""

    def __init__(self, head: bytes, rest: Iterator[bytes]) -> None:
        self._buffer = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._rest, None)
            if piece is None:
                break
            self._buffer += piece
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


def file_chunks(file: IO[bytes], size: int = WINDOW) -> Iterator[bytes]:
    """An open binary file (or pipe) read `size` bytes at a time."""
    while piece := file.read(size):
        yield piece


# --- worker processes -------------------------------------------------------------

def preload_workers() -> None:
    """Import ahead what starting worker processes imports: e.g. while git lists."""
    from keyscan.sources import forked  # noqa: F401


def run_parts(parts: Iterable[Callable[[Scanner], _R]], scanner: Scanner, workers: int,
              warn: Warn, again: Callable[[Callable[[Scanner], _R]], Callable[[Scanner], _R]]
              | None = None) -> Iterator[_R]:
    """Each part's result, run by `workers` forked processes (`forked.py`; each with a
    scanner like `scanner`, whose tally comes back with the result); parts are handed out
    as workers are free for them (a folder walk goes on while workers scan). A part whose
    worker died (killed, out of memory, a pack cut short under it) is run again here,
    once, as `again(part)` makes it (e.g. reading through git what the worker read from a
    pack)."""
    from keyscan.sources import forked

    engine, expand = scanner.engine, scanner.expand
    held: list[Scanner] = []  # a worker's scanner, made by its first part (fork: its own)

    def work(part: Callable[[Scanner], _R]) -> tuple[_R, Tally]:
        if not held:
            held.append(Scanner(engine, expand))
        held[0].tally = Tally()
        return part(held[0]), held[0].tally

    lost: list[Callable[[Scanner], _R]] = []
    for item in forked.run(parts, workers, work):
        if isinstance(item, forked.Lost):
            lost.append(item.part)
            continue
        result, tally = item
        scanner.tally.add(tally)
        yield result
    if lost:
        warn(f"a worker process died: {len(lost)} parts of the scan are done again "
             "in this process")
        for part in lost:
            yield (again(part) if again else part)(scanner)
