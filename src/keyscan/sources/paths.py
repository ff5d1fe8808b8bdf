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
- Archives (zip family, tar, gzip, bzip2, xz; by content) are opened and their
  members scanned at `archive!member` (`contents.py`, `archive.py`), within `limits`.
- Many files are read and scanned by a pool of worker processes; small scans stay
  in this process, where starting workers would cost more than it saves.
"""

from __future__ import annotations

import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from keyscan.engine import Engine
from keyscan.errors import KeyscanError
from keyscan.model import Finding, Fragment, Stats
from keyscan.progress import Progress
from keyscan.sources.archive import Limits
from keyscan.sources.contents import Scanned, is_archive, scan_data

Warn = Callable[[str], None]
STDIN = "-"
POOL_MIN_FILES = 64  # below this, or below POOL_MIN_BYTES, workers cost more than they save
POOL_MIN_BYTES = 4 << 20
BATCH_BYTES = 2 << 20  # a worker's unit of work: few round trips, yet balanced load
BATCH_FILES = 256


@dataclass(frozen=True, slots=True)
class _Target:
    path: str  # to open
    report: str  # as reported
    size: int
    follow: bool  # given on the command line: a symlink is followed


@dataclass(slots=True)
class _Result:
    findings: list[Finding] = field(default_factory=list)
    allowed: int = 0
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)  # one warning per unreadable file


def check_paths(paths: Sequence[str]) -> None:
    """Fail early (exit 2) on a path that does not exist."""
    for path in paths:
        if path != STDIN and not os.path.lexists(path):
            raise KeyscanError(f"path not found: {path}: check the path (or give - for stdin)")


def scan_paths(
    paths: Sequence[str], engine: Engine, stats: Stats, warn: Warn, limits: Limits | None = None
) -> Iterator[Finding]:
    """Findings in every file below `paths`; `stats` is updated as files are read."""
    limits = limits or Limits()
    pipes: list[str] = []
    with Progress("keyscan: scanning") as progress:
        for result in _run(_targets(paths, stats, warn, pipes), engine, limits):
            yield from _merge(result, stats, warn, progress)
        for report in pipes:
            yield from _merge(_scan_pipe(report, engine, limits), stats, warn, progress)


def _merge(result: _Result, stats: Stats, warn: Warn, progress: Progress) -> list[Finding]:
    stats.files += result.files
    stats.scanned_bytes += result.bytes
    stats.skipped += len(result.problems)
    if result.allowed:
        before = stats.suppressed.get("keyscan:allow", 0)
        stats.suppressed["keyscan:allow"] = before + result.allowed
    if result.problems:
        progress.close()  # a warning gets a line of its own; the next advance redraws
    for problem in result.problems:
        warn(problem)
    progress.advance(files=result.files, bytes=result.bytes)
    return result.findings


def _targets(paths: Sequence[str], stats: Stats, warn: Warn, pipes: list[str]) -> Iterator[_Target]:
    """Regular files to scan, as the walk finds them; pipes given by name (stdin,
    `<(cmd)`) are added to `pipes`, to be read in this process."""
    seen: set[str] = set()
    for path in dict.fromkeys(paths):  # a path given twice is scanned once
        if path == STDIN:
            pipes.append(STDIN)
            continue
        report = _report(path)
        try:
            info = os.stat(path)
        except OSError as error:
            stats.skipped += 1
            warn(f"cannot read {report}: {error.strerror or error}; skipped")
            continue
        if stat.S_ISDIR(info.st_mode):
            found: Iterator[_Target] = _walk(path, stats, warn)
        elif stat.S_ISREG(info.st_mode):
            found = iter([_Target(path, report, info.st_size, follow=True)])
        elif stat.S_ISFIFO(info.st_mode):
            pipes.append(path)  # named on purpose, e.g. `keyscan scan <(cmd)`: read it
            continue
        else:
            stats.skipped += 1
            warn(f"{report} is not a regular file (a device or socket); skipped")
            continue
        for target in found:
            if target.report not in seen:
                seen.add(target.report)
                yield target


def _walk(top: str, stats: Stats, warn: Warn) -> Iterator[_Target]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as error:
            stats.skipped += 1
            warn(f"cannot read folder {_report(folder)}: {error.strerror or error}; skipped")
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


def _scan_pipe(report: str, engine: Engine, limits: Limits) -> _Result:
    result = _Result()
    try:
        if report == STDIN:
            data = sys.stdin.buffer.read()
        else:
            with open(report, "rb") as pipe:
                data = pipe.read()
    except OSError as error:
        result.problems.append(f"cannot read {report}: {error.strerror or error}; skipped")
        return result
    _scan_into(result, engine, data, report, limits)
    return result


def _scan_into(result: _Result, engine: Engine, data: bytes, report: str, limits: Limits) -> None:
    if is_archive(data, limits):
        found = Scanned()
        scan_data(engine, data, report, limits, found)
        result.findings.extend(found.findings)
        result.allowed += found.allowed
        result.files += found.files
        result.bytes += found.bytes
        result.problems.extend(found.problems)
        return
    findings, allowed = engine.scan_counted(Fragment(data, report))
    result.findings.extend(findings)
    result.allowed += allowed
    result.files += 1
    result.bytes += len(data)


def _read(target: _Target) -> bytes:
    """The file's bytes; never blocks, never follows a link swapped in after the walk."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not target.follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target.path, flags)
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "no longer a regular file")
        return file.read()


def _scan_batch(engine: Engine, batch: Sequence[_Target], limits: Limits) -> _Result:
    result = _Result()
    for target in batch:
        try:
            data = _read(target)
        except OSError as error:
            reason = error.strerror or str(error)
            result.problems.append(f"cannot read {target.report}: {reason}; skipped")
            continue
        _scan_into(result, engine, data, target.report, limits)
    return result


def _run(targets: Iterator[_Target], engine: Engine, limits: Limits) -> Iterator[_Result]:
    """Scan in this process, unless the walk shows enough work to pay for workers."""
    workers = min(os.cpu_count() or 1, 8)
    first: list[_Target] = []
    size = 0
    for target in targets:
        first.append(target)
        size += target.size
        if workers > 1 and len(first) >= POOL_MIN_FILES and size >= POOL_MIN_BYTES:
            # the rest of the walk overlaps with the workers' scanning
            yield from _run_pool(itertools.chain(first, targets), engine, workers, limits)
            return
    for target in first:
        yield _scan_batch(engine, [target], limits)


def _run_pool(
    targets: Iterator[_Target], engine: Engine, workers: int, limits: Limits
) -> Iterator[_Result]:
    from concurrent.futures import ProcessPoolExecutor, as_completed  # 15 ms: only when used

    init = (engine, limits)
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=init) as pool:
        futures = [pool.submit(_scan_in_worker, batch) for batch in _batches(targets)]
        for future in as_completed(futures):
            yield future.result()


def _batches(targets: Iterator[_Target]) -> Iterator[list[_Target]]:
    """Files grouped into units of work: few round trips, small enough to balance."""
    batch: list[_Target] = []
    size = 0
    for target in targets:
        batch.append(target)
        size += target.size
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# Each worker process builds its engine once, in the initializer, not once per batch.
_worker_engine: Engine | None = None
_worker_limits = Limits()


def _start_worker(engine: Engine, limits: Limits) -> None:
    global _worker_engine, _worker_limits
    _worker_engine = engine
    _worker_limits = limits


def _scan_in_worker(batch: list[_Target]) -> _Result:
    assert _worker_engine is not None, "the pool's initializer sets the engine"
    return _scan_batch(_worker_engine, batch, _worker_limits)
