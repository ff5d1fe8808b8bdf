"""Scan many blobs once each, on every core: secrets per blob, nothing else kept.

Blobs in pack files are read by `packfile` (no git process, no pipe); loose
objects, and anything `packfile` cannot read with certainty, through
`git cat-file --batch`. For big inputs the blobs, in the order git lists them
(pack order), are cut into runs, one worker process per core, and each worker
finds its runs' blobs in the packs itself; small inputs stay in this process,
where starting workers would cost more than it saves.

Most blobs of a history are a small edit of another, which git stores as a
delta of it, the base earlier in the pack. A blob whose base was quiet (no
keyword, no encoded prefix: see `Engine.quiet`) is checked only around the spans
the edit changed (`packfile.Edit`), plus a margin; pack order puts the base first,
most often right before its delta, so a run keeps nearly every delta with its base. Python rebuilds a delta at a cost
per instruction, git at C speed: so a big delta (many instructions) is rebuilt
by a `git cat-file` streaming beside the worker, and compared with its base by a
memcmp (`edits.changed_span`) instead.

This module is the blob source: it emits every blob to the driver's scanner
(`sources/driver.py`), and the delta shortcut above is decided here and nowhere
else (the scanner only answers "are these spans quiet?"). `exhaustive` turns it
off: every blob scanned whole, which the tests compare with the fast mode.
Blobs past `git.BIG_BLOB` are read by git in pieces and scanned in windows; a
delta claiming more than `MAX_DELTA_BLOB` is unreadable, never rebuilt.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from keyscan.edits import changed_span
from keyscan.model import Fragment, Stats
from keyscan.sources import git
from keyscan.sources.attribution import Secrets
from keyscan.sources.driver import Scanner, Workers
from keyscan.sources.packfile import (
    HASH_SIZES,
    Location,
    Pack,
    PackError,
    PackReader,
    keep_names,
    locate,
    pack_files,
)

if TYPE_CHECKING:
    from pathlib import Path

    from keyscan.model import Finding

PARALLEL_BYTES = 32 << 20  # below this, one process is faster than starting workers
# Each worker's runs, as shares of its bytes, handed out largest first: the last few
# are small, so no worker is left scanning a big one alone at the end (a run's cost
# varies with how much of it the delta shortcut skips). Their count: progress to show.
SHARD_SHARES = (4.0, 3.0, 2.0, 1.0)
BIG_DELTA = 2048  # bytes of delta above which git rebuilds a blob faster than Python
KEEP_BYTES = 32 << 20  # rebuilt delta bases a worker keeps until their deltas are read
# A blob stored as a delta is rebuilt in memory (by git too): past this, it is skipped
# as unreadable, never allocated. git stores files past core.bigFileThreshold (512 MiB)
# whole, which are read in pieces whatever their size.
MAX_DELTA_BLOB = 256 << 20
TICK = 256  # blobs between progress updates in this process
# Packs this big hold enough blobs for workers, usually (blobs compress 10-20x in packs):
# a whole-history scan starts them while git lists (`early_workers`)
WARM_PACK_BYTES = PARALLEL_BYTES // 16
Progress = Callable[[Stats], None]
Sites = dict[str, "list[Finding]"]  # blob id -> its findings (path: the id; line, column)
Blob = tuple[str, int, str]  # id, size, delta base id ("" when none): see git.list_blobs
Packed = tuple[str, int, Location, "Location | None"]  # id, size, where, where its base is


class _Job:
    """What one worker scans: a run of listed blobs, which it finds in the packs itself
    (in the worker, not before it starts: see `scan_listed`) and reads in pack order, then
    the rest through git. Called with the scanner to scan with; returns blob id -> secrets
    for blobs with any."""

    def __init__(self, repo: git.GitRepo, blobs: list[Blob], exhaustive: bool,
                 via_git: bool = False) -> None:
        self.repo, self.blobs = repo, blobs
        self.exhaustive = exhaustive
        self.via_git = via_git  # every blob read by git, none from a pack
        self.tick: Callable[[], None] | None = None  # progress, in this process only

    def __call__(self, scanner: Scanner) -> Found:
        found = Found()
        if self.via_git:
            unread = [oid for oid, _, _ in self.blobs]
        else:
            packs, packed, rest = _placed(self.repo, self.blobs)
            unread = _scan_packed(self, packs, packed, scanner, found)
            unread += [oid for oid, _, _ in rest]
        contents = git.iter_contents(self.repo, unread, unreadable=scanner.tally.unreadable)
        for n, (oid, data) in enumerate(contents):
            _scan(scanner, oid, data, None, found)
            if self.tick and n % TICK == 0:
                self.tick()
        return found

    def through_git(self) -> _Job:
        """The same blobs, all read by git (a worker died reading a pack: cut short?)."""
        return _Job(self.repo, self.blobs, self.exhaustive, via_git=True)


class Found:
    """What a blob scan found, for the blobs with any: their secrets (see `secrets_in`), and
    their findings as the scan made them (path: the blob's id, or `id!member`), so that
    a history reports a finding's line and column without reading its blob again."""

    __slots__ = ("secrets", "sites")

    def __init__(self) -> None:
        self.secrets: dict[str, Secrets] = {}
        self.sites: Sites = {}

    def add(self, oid: str, findings: list[Finding]) -> None:
        if findings:
            self.secrets[oid] = _secrets(findings)
            self.sites[oid] = findings

    def update(self, other: Found) -> None:
        self.secrets.update(other.secrets)
        self.sites.update(other.sites)


def secrets_in(scanner: Scanner, data: bytes | git.BigBlob, oid: str = "") -> Secrets:
    """What the engine finds in `data`, as (rule id, the secret's sha256) pairs: the hash,
    not the secret, so that what an inventory remembers of a blob compares alike."""
    return _secrets(_findings_in(scanner, data, oid))


def _findings_in(scanner: Scanner, data: bytes | git.BigBlob, oid: str) -> list[Finding]:
    if isinstance(data, git.BigBlob):  # git may fail in it: what came is still scanned
        return scanner.emit_stream(oid, data.chunks(unreadable=scanner.tally.unreadable))
    return scanner.emit(Fragment(data=data, path=oid)).findings


def _secrets(findings: list[Finding]) -> Secrets:
    return frozenset((f.rule_id, f.secret_sha256) for f in findings)


def scan_listed(repo: git.GitRepo, scanner: Scanner, blobs: list[Blob], stats: Stats,
                warn: Callable[[str], None], progress: Progress | None = None,
                exhaustive: bool = False, workers: int | None = None,
                sites: Sites | None = None, pool: Workers | None = None
                ) -> dict[str, Secrets]:
    """Blob id -> secrets for the blobs of `blobs` (see `git.list_blobs`) that hold any,
    on `workers` processes (default: one per core; `pool`: those started already, see
    `early_workers`); `sites`, when given, gets their findings (see `Found`).

    `exhaustive`: every blob scanned whole, no delta shortcut (`keyscan git --exhaustive`;
    the tests hold the two to the same findings)."""
    blobs = _within_limits(blobs, scanner)
    workers = workers or _cores()
    total = sum(size for _, size, _ in blobs)

    def tick() -> None:
        scanner.tally.settle(stats, warn, allowed=False)  # history counts those it reaches
        if progress:
            progress(stats)

    if workers < 2 or total < PARALLEL_BYTES or not (pool or _forking()):
        job = _Job(repo, blobs, exhaustive)
        job.tick = tick
        found = job(scanner)
        tick()
        return _unpack(found, sites)

    shares = [share for share in SHARD_SHARES for _ in range(workers)]
    jobs = (_Job(repo, run, exhaustive) for run in _runs(blobs, shares))
    found = Found()
    def again(job: Callable[[Scanner], Found]) -> Callable[[Scanner], Found]:
        assert isinstance(job, _Job)
        return job.through_git()

    with contextlib.nullcontext(pool) if pool else Workers(scanner, workers) as running:
        for part in running.run(jobs, scanner, warn, again=again):
            found.update(part)
            tick()
    return _unpack(found, sites)


def _placed(repo: git.GitRepo, blobs: list[Blob]) -> tuple[list[Pack], list[Packed], list[Blob]]:
    """Where `blobs` are: the packs, the packed ones (in pack order, with their delta
    base's location, which may be outside `blobs`) and the rest (loose, too big, or in no
    pack we read)."""
    paths = pack_files(repo) if blobs else []
    hash_size = HASH_SIZES.get(repo.object_format, 20)
    small = [blob for blob in blobs if blob[1] <= git.BIG_BLOB]
    wanted = {oid for oid, _, _ in small}
    wanted.update(base for _, _, base in small if base)
    where, packs = locate(paths, wanted, hash_size)
    get = where.get
    packed: list[Packed] = [(oid, size, where[oid], get(base)) for oid, size, base in small
                            if oid in where]
    packed.sort(key=_where)
    return packs, packed, [blob for blob in blobs if blob[1] > git.BIG_BLOB or blob[0] not in where]


def _where(blob: Packed) -> Location:
    return blob[2]


def early_workers(repo: git.GitRepo, scanner: Scanner, workers: int | None = None
                  ) -> Workers | None:
    """The worker processes `scan_listed` would start, started now when the packs are big
    enough for them: for a caller with time on its hands, such as one waiting for git to
    list the blobs. Each builds, as it starts, what its first blobs need (the engine's
    patterns, the packs' names: `_ready`) while the caller goes on. The caller closes them."""
    count = workers or _cores()
    paths = pack_files(repo)
    if count < 2 or not _forking() or sum(_size(path) for path in paths) < WARM_PACK_BYTES:
        return None
    hash_size = HASH_SIZES.get(repo.object_format, 20)
    return Workers(scanner, count, functools.partial(_ready, paths, hash_size))


def _ready(paths: list[Path], hash_size: int, scanner: Scanner) -> None:
    scanner.engine.warm()
    keep_names(paths, hash_size)


def _forking() -> bool:
    import multiprocessing  # here: `keyscan git` starts its git processes before this

    return "fork" in multiprocessing.get_all_start_methods()  # cheap workers: not Windows


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _unpack(found: Found, sites: Sites | None) -> dict[str, Secrets]:
    if sites is not None:
        sites.update(found.sites)
    return found.secrets


def _within_limits(blobs: list[Blob], scanner: Scanner) -> list[Blob]:
    """The blobs that may be read: a delta claiming more than `MAX_DELTA_BLOB` is not."""
    kept = []
    for blob in blobs:
        if blob[2] and blob[1] > MAX_DELTA_BLOB:
            scanner.tally.unreadable(blob[0], f"a delta claiming {blob[1]} bytes, more than "
                                     f"the {MAX_DELTA_BLOB >> 20} MiB a delta may make")
        else:
            kept.append(blob)
    return kept


def _scan_packed(job: _Job, packs: list[Pack], packed: list[Packed], scanner: Scanner,
                 found: Found) -> list[str]:
    """Scan the job's packed blobs into `found`; the ids of those the packs could not give
    (big deltas come from git: see the module's doc).

    The shortcut lives here and only here: a blob stored as a delta of a quiet blob is
    checked only around the spans the delta changed (`scanner.emit(..., check=spans)`),
    unless `job.exhaustive`."""
    if not packed:
        return []
    uses = Counter(base for *_, base in packed if base is not None)
    quiet: set[Location] = set()  # quiet blobs with deltas still to come
    unread: list[str] = []
    hash_size = HASH_SIZES.get(job.repo.object_format, 20)
    reach = scanner.engine.reach
    with PackReader(packs, hash_size, uses, KEEP_BYTES) as reader:
        big = {oid for oid, _, where, _ in packed if _delta_size(reader, where) > BIG_DELTA}
        rebuilt = _InOrder(git.iter_blobs(job.repo, [oid for oid, *_ in packed if oid in big],
                                          unreadable=scanner.tally.unreadable))
        for n, (oid, _, where, _) in enumerate(packed):
            windows = None
            if oid in big:
                data = rebuilt.take(oid)
                if data is None:
                    continue  # git could not give it: counted as unreadable
                base, old = reader.adopt(where, data)
                if old is not None and base in quiet:
                    windows = _windows((changed_span(old, data),), reach, len(data))
            else:
                try:
                    data, edit = reader.read(where)
                except PackError:
                    unread.append(oid)
                    continue
                if edit is not None and edit.base in quiet:
                    windows = _windows(edit.changed, reach, len(data))
            if job.exhaustive:
                _scan(scanner, oid, data, None, found)
            elif _scan(scanner, oid, data, windows or [(0, len(data))], found) and uses[where] > 0:
                quiet.add(where)
            if job.tick and n % TICK == 0:
                job.tick()
        rebuilt.finish()
    return unread


def _delta_size(reader: PackReader, where: Location) -> int:
    try:
        return reader.delta_size(where)
    except PackError:
        return 0  # reading it here fails again, and sends it to git


class _InOrder:
    """(id, text) pairs as `git.iter_blobs` streams them, taken in the order asked for;
    git skips an id it does not have, so a pair is taken only when its id is next."""

    def __init__(self, stream: Iterator[tuple[str, bytes]]) -> None:
        self._stream = stream
        self._next = next(stream, None)

    def take(self, oid: str) -> bytes | None:
        if self._next is None or self._next[0] != oid:
            return None
        data = self._next[1]
        self._next = next(self._stream, None)
        return data

    def finish(self) -> None:
        """Read git's stream to its end (where its exit status is checked)."""
        for _ in self._stream:
            pass


def _scan(scanner: Scanner, oid: str, data: bytes | git.BigBlob,
          check: list[tuple[int, int]] | None, found: Found) -> bool:
    """Scan `data` into `found`; with `check`, only if those spans are not quiet (the
    rest is a quiet base's). True if it was quiet."""
    if isinstance(data, git.BigBlob):
        findings, quiet = _findings_in(scanner, data, oid), False
    else:
        scanned = scanner.emit(Fragment(data=data, path=oid), check=check)
        findings, quiet = scanned.findings, scanned.quiet
    found.add(oid, findings)
    return quiet


def _windows(changed: tuple[tuple[int, int], ...], margin: int,
             size: int) -> list[tuple[int, int]]:
    """The changed spans widened by `margin` on each side, overlapping ones joined."""
    windows: list[tuple[int, int]] = []
    for start, end in changed:
        low, high = max(0, start - margin), min(size, end + margin)
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], high)
        else:
            windows.append((low, high))
    return windows


def _runs(blobs: list[Blob], shares: list[float]) -> list[list[Blob]]:
    """`blobs` cut, in their order, into runs with bytes in proportion to `shares`.
    git lists a pack's objects in pack order, where a delta comes soon after its base
    (most often next to it): a run keeps nearly every delta with its base, and a worker
    reads its run's part of the pack front to back."""
    # (at least 1: the blobs may all be empty, the bytes that called for workers elsewhere)
    scale = max(1, sum(size for _, size, _ in blobs)) / sum(shares)
    runs: list[list[Blob]] = []
    start = 0
    done = 0.0  # bytes in the runs cut so far
    target = 0.0
    for share in shares[:-1]:
        target += share * scale
        end = start
        while end < len(blobs) and done + blobs[end][1] / 2 <= target:
            done += blobs[end][1]
            end += 1
        runs.append(blobs[start:end])
        start = end
    runs.append(blobs[start:])
    return [run for run in runs if run]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
