"""`keyscan scan`: files and folders (recursively) and stdin ('-').

- Report paths are the path as given joined with the path below it, normalised and
  '/'-separated: `keyscan scan .` reports `config/settings.py`.
- `.git/` folders are not scanned (`keyscan git` reads history properly).
- Symlinks met while walking are never followed: a link out of the tree leaks
  nothing into the scan, a loop cannot hang it, and a link's target inside the
  tree is scanned at its own path. A path given on the command line is followed.
- Only regular files are read while walking: FIFOs, sockets and devices are passed
  over, so nothing blocks. Files that cannot be read get one warning each and
  count in `stats.skipped`.
- Many files are read and scanned by a pool of worker processes; small scans stay
  in this process, where starting workers would cost more than it saves.
- Files (and stdin) are handed to the driver (`sources/driver.py`), which counts
  them and scans big ones in bounded windows: a 40 GB file costs no more memory
  than a 16 MB one.
"""

from __future__ import annotations

import functools
import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from keyscan.errors import KeyscanError
from keyscan.model import Finding, Fragment, Stats
from keyscan.progress import Progress
from keyscan.sources.driver import WINDOW, Scanner, file_chunks, run_parts

Warn = Callable[[str], None]
STDIN = "-"
POOL_MIN_FILES = 64  # below this, or below POOL_MIN_BYTES, workers cost more than they save
POOL_MIN_BYTES = 4 << 20
POOL_BIG_BYTES = 16 << 20  # a few big files (archives): workers pay for themselves too
BATCH_BYTES = 2 << 20  # a worker's unit of work: few round trips, yet balanced load
BATCH_FILES = 256
ALONE_BYTES = 1 << 20  # a file this big is a unit of work by itself (see `_batches`)
# Work per byte on disk of what the first bytes show, relative to other files: bzip2
# decompresses ~5x slower per compressed byte than gzip or zip (which cost about as
# much as plain text), xz ~2.5x (measured on bench/archive_bench.py's archives). Big
# files are handed out costliest first, so that no worker is left with a .tar.bz2 to
# itself at the end.
COST_BY_MAGIC = ((b"BZh", 5.0), (b"\xfd7zXZ\x00", 2.5))


@dataclass(frozen=True, slots=True)
class _Target:
    path: str  # to open
    report: str  # as reported
    size: int
    follow: bool  # given on the command line: a symlink is followed


def check_paths(paths: Sequence[str]) -> None:
    """Fail early (exit 2) on a path that does not exist."""
    for path in paths:
        if path != STDIN and not os.path.lexists(path):
            raise KeyscanError(f"path not found: {path}: check the path (or give - for stdin)")


def scan_paths(paths: Sequence[str], scanner: Scanner, stats: Stats,
               warn: Warn) -> Iterator[Finding]:
    """Findings in every file below `paths`; `stats` is updated as files are read."""
    pipes: list[str] = []
    with Progress("keyscan: scanning") as progress:
        for findings in _run(_targets(paths, scanner, pipes), scanner, warn):
            yield from _settle(findings, scanner, stats, warn, progress)
        for report in pipes:
            yield from _settle(_scan_pipe(report, scanner), scanner, stats, warn, progress)
        scanner.tally.settle(stats, warn)  # what the walk skipped after the last file


def _settle(findings: list[Finding], scanner: Scanner, stats: Stats, warn: Warn,
            progress: Progress) -> list[Finding]:
    files, size = scanner.tally.files, scanner.tally.bytes
    if scanner.tally.problems:
        progress.close()  # a warning gets a line of its own; the next advance redraws
    scanner.tally.settle(stats, warn)
    progress.advance(files=files, bytes=size)
    return findings


def _targets(paths: Sequence[str], scanner: Scanner, pipes: list[str]) -> Iterator[_Target]:
    """Regular files to scan, as the walk finds them; pipes given by name (stdin,
    `<(cmd)`) are added to `pipes`, to be read in this process."""
    seen: set[str] = set()
    tally = scanner.tally
    for path in dict.fromkeys(paths):  # a path given twice is scanned once
        if path == STDIN:
            pipes.append(STDIN)
            continue
        report = _report(path)
        try:
            info = os.stat(path)
        except OSError as error:
            tally.skip(f"cannot read {report}: {error.strerror or error}; skipped")
            continue
        if stat.S_ISDIR(info.st_mode):
            found: Iterator[_Target] = _walk(path, scanner)
        elif stat.S_ISREG(info.st_mode):
            found = iter([_Target(path, report, info.st_size, follow=True)])
        elif stat.S_ISFIFO(info.st_mode):
            pipes.append(path)  # named on purpose, e.g. `keyscan scan <(cmd)`: read it
            continue
        else:
            tally.skip(f"{report} is not a regular file (a device or socket); skipped")
            continue
        for target in found:
            if target.report not in seen:
                seen.add(target.report)
                yield target


def _walk(top: str, scanner: Scanner) -> Iterator[_Target]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as error:
            reason = error.strerror or error
            scanner.tally.skip(f"cannot read folder {_report(folder)}: {reason}; skipped")
            continue
        for entry in sorted(listed, key=lambda e: e.name, reverse=True):
            if entry.is_dir(follow_symlinks=False):
                if entry.name != ".git":
                    stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                size = _size(entry)
                yield _Target(entry.path, _report(entry.path), size, follow=False)


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_size
    except OSError:
        return 0  # it vanished: reading it will say so


def _report(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def _scan_pipe(report: str, scanner: Scanner) -> list[Finding]:
    """stdin or a named pipe, read in pieces: the driver scans it in windows."""
    try:
        if report == STDIN:
            return scanner.emit_stream(report, file_chunks(sys.stdin.buffer))
        with open(report, "rb") as pipe:
            return scanner.emit_stream(report, file_chunks(pipe))
    except OSError as error:
        scanner.tally.skip(f"cannot read {report}: {error.strerror or error}; skipped")
        return []


def _open(target: _Target) -> int:
    """A descriptor of the file; never blocks, never follows a link swapped in after the walk."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not target.follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target.path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(0, "no longer a regular file")
    return fd


def _scan_batch(batch: Sequence[_Target], scanner: Scanner) -> list[Finding]:
    found: list[Finding] = []
    for target in batch:
        try:
            with open(_open(target), "rb") as file:
                if target.size <= WINDOW:
                    data = file.read(WINDOW + 1)
                    if len(data) <= WINDOW:  # else it grew: read the rest in windows
                        found += scanner.emit(Fragment(data, target.report)).findings
                        continue
                    chunks: Iterator[bytes] = itertools.chain((data,), file_chunks(file))
                else:
                    chunks = file_chunks(file)
                found += scanner.emit_stream(target.report, chunks)
        except OSError as error:
            reason = error.strerror or str(error)
            scanner.tally.skip(f"cannot read {target.report}: {reason}; skipped")
    return found


def _run(targets: Iterator[_Target], scanner: Scanner, warn: Warn) -> Iterator[list[Finding]]:
    """Scan in this process, unless the walk shows enough work to pay for workers."""
    workers = min(os.cpu_count() or 1, 8)
    first: list[_Target] = []
    size = 0
    for target in targets:
        first.append(target)
        size += target.size
        many = len(first) >= POOL_MIN_FILES and size >= POOL_MIN_BYTES
        if workers > 1 and (many or (len(first) >= 2 and size >= POOL_BIG_BYTES)):
            # The rest of the walk overlaps with the workers' scanning. Costliest first: a
            # big archive begun last would keep one worker busy while the others wait.
            first.sort(key=lambda target: -_cost(target))
            yield from _run_pool(itertools.chain(first, targets), scanner, workers, warn)
            return
    for target in first:
        yield _scan_batch([target], scanner)


def _cost(target: _Target) -> float:
    """How much work `target` is likely to be, in bytes of plain text (`COST_BY_MAGIC`)."""
    if target.size < ALONE_BYTES:
        return target.size  # not worth a read: small files share a unit of work anyway
    try:
        fd = _open(target)
    except OSError:
        return target.size  # its scan says why
    try:
        head = os.pread(fd, 8, 0)
    except OSError:
        head = b""
    finally:
        os.close(fd)
    weight = next((cost for magic, cost in COST_BY_MAGIC if head.startswith(magic)), 1.0)
    return target.size * weight


def _run_pool(targets: Iterator[_Target], scanner: Scanner, workers: int,
              warn: Warn) -> Iterator[list[Finding]]:
    parts = (functools.partial(_scan_batch, batch) for batch in _batches(targets))
    return run_parts(parts, scanner, workers, warn)


def _batches(targets: Iterator[_Target]) -> Iterator[list[_Target]]:
    """Files grouped into units of work: few round trips, small enough to balance. A file
    of `ALONE_BYTES` or more is a unit of its own: two such files in one unit (archives,
    whose compressed size says little of their work) keep one worker busy with both
    while the other waits at the end."""
    batch: list[_Target] = []
    size = 0
    for target in targets:
        if target.size >= ALONE_BYTES:
            yield [target]
            continue
        batch.append(target)
        size += target.size
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
