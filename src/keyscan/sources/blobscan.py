"""Scan many blobs once each, on every core: secrets per blob, nothing else kept.

Blobs in pack files are read by `packfile` (no git process, no pipe); loose
objects, and anything `packfile` cannot read with certainty, through
`git cat-file --batch`. For big inputs the blobs are cut into shards, one
worker process per core; small inputs stay in this process, where starting
workers would cost more than it saves.

Most blobs of a history are a small edit of another, which git stores as a
delta of it, the base earlier in the pack. A blob whose base was quiet (no
keyword, no encoded prefix: see `Engine.quiet`) is checked only around the spans
the edit changed (`packfile.Edit`), plus a margin; so shards keep each delta with
its base, and pack order puts the base first. Python rebuilds a delta at a cost
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

import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from keyscan.edits import changed_span
from keyscan.model import Fragment, Stats
from keyscan.sources import git
from keyscan.sources.attribution import Secrets
from keyscan.sources.driver import Scanner, preload_workers, run_parts
from keyscan.sources.packfile import (
    HASH_SIZES,
    Location,
    Pack,
    PackError,
    PackReader,
    locate,
    pack_files,
)

if TYPE_CHECKING:
    from keyscan.model import Finding

PARALLEL_BYTES = 32 << 20  # below this, one process is faster than starting workers
# Each worker's shards, as shares of its bytes, handed out largest first: the last few
# are small, so no worker is left scanning a big one alone at the end (a shard's cost
# varies with how much of it the delta shortcut skips). Their count: progress to show.
SHARD_SHARES = (4.0, 3.0, 2.0, 1.0)
BIG_DELTA = 2048  # bytes of delta above which git rebuilds a blob faster than Python
KEEP_BYTES = 32 << 20  # rebuilt delta bases a worker keeps until their deltas are read
# A blob stored as a delta is rebuilt in memory (by git too): past this, it is skipped
# as unreadable, never allocated. git stores files past core.bigFileThreshold (512 MiB)
# whole, which are read in pieces whatever their size.
MAX_DELTA_BLOB = 256 << 20
TICK = 256  # blobs between progress updates in this process
# Packs this big hold enough blobs for workers, usually (blobs compress 10-20x in packs)
WARM_PACK_BYTES = PARALLEL_BYTES // 16
Progress = Callable[[Stats], None]
Sites = dict[str, "list[Finding]"]  # blob id -> its findings (path: the id; line, column)
Blob = tuple[str, int, str]  # id, size, delta base id ("" when none): see git.list_blobs
Packed = tuple[str, int, Location, "Location | None"]  # id, size, where, where its base is


class _Job:
    """What one worker scans: blobs in packs (in pack order), then the rest through git.
    Called with the scanner to scan with; returns blob id -> secrets for blobs with any."""

    def __init__(self, repo: git.GitRepo, packs: list[Pack], packed: list[Packed],
                 loose: list[str], exhaustive: bool) -> None:
        self.repo, self.packs = repo, packs
        self.packed, self.loose = packed, loose
        self.exhaustive = exhaustive
        self.tick: Callable[[], None] | None = None  # progress, in this process only

    def __call__(self, scanner: Scanner) -> Found:
        found = Found()
        unread = _scan_packed(self, scanner, found) + self.loose
        contents = git.iter_contents(self.repo, unread, unreadable=scanner.tally.unreadable)
        for n, (oid, data) in enumerate(contents):
            _scan(scanner, oid, data, None, found)
            if self.tick and n % TICK == 0:
                self.tick()
        return found

    def through_git(self) -> _Job:
        """The same blobs, all read by git (a worker died reading a pack: cut short?)."""
        oids = [oid for oid, *_ in self.packed] + self.loose
        return _Job(self.repo, [], [], oids, self.exhaustive)


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
                sites: Sites | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for the blobs of `blobs` (see `git.list_blobs`) that hold any,
    on `workers` processes (default: one per core); `sites`, when given, gets their
    findings (see `Found`).

    `exhaustive`: every blob scanned whole, no delta shortcut (`keyscan git --exhaustive`;
    the tests hold the two to the same findings)."""
    blobs = _within_limits(blobs, scanner)
    workers = workers or _cores()
    total = sum(size for _, size, _ in blobs)
    import multiprocessing  # here: `keyscan git` starts its git processes before this

    forking = "fork" in multiprocessing.get_all_start_methods()  # cheap workers: not Windows

    def tick() -> None:
        scanner.tally.settle(stats, warn, allowed=False)  # history counts those it reaches
        if progress:
            progress(stats)

    if workers < 2 or total < PARALLEL_BYTES or not forking:
        packs, packed, loose = _placed(repo, blobs)
        job = _Job(repo, packs, packed, [oid for oid, _, _ in loose], exhaustive)
        job.tick = tick
        found = job(scanner)
        tick()
        return _unpack(found, sites)

    def jobs() -> Iterator[_Job]:  # made once the workers are starting (see `run_parts`)
        packs, packed, loose = _placed(repo, blobs)
        shares = [share for share in SHARD_SHARES for _ in range(workers)]
        for shard in _shards(packed, shares):
            yield _Job(repo, packs, shard, [], exhaustive)
        for part in _split(loose, len(shares)):
            yield _Job(repo, packs, [], part, exhaustive)

    found = Found()
    def again(job: Callable[[Scanner], Found]) -> Callable[[Scanner], Found]:
        assert isinstance(job, _Job)
        return job.through_git()

    for part in run_parts(jobs(), scanner, workers, warn, again=again):
        found.update(part)
        tick()
    return _unpack(found, sites)


def _placed(repo: git.GitRepo, blobs: list[Blob]) -> tuple[list[Pack], list[Packed], list[Blob]]:
    """Where `blobs` are: the packs, the packed ones (in pack order, with their delta
    base's location) and the rest (loose, too big, or in no pack we read)."""
    paths = pack_files(repo) if blobs else []
    hash_size = HASH_SIZES.get(repo.object_format, 20)
    small = [blob for blob in blobs if blob[1] <= git.BIG_BLOB]
    where, packs = locate(paths, [oid for oid, _, _ in small], hash_size)
    packed = sorted(((oid, size, where[oid], where.get(base)) for oid, size, base in small
                     if oid in where), key=lambda blob: blob[2])
    return packs, packed, [blob for blob in blobs if blob[0] not in where]


def warm_up(repo: git.GitRepo, scanner: Scanner) -> None:
    """When the packs are big enough for workers, ready now what each worker would build
    first (see `Engine.warm`) and what starting them imports: for a caller with time on
    its hands, such as one waiting for git to list the blobs."""
    paths = pack_files(repo)
    if _cores() > 1 and sum(_size(path) for path in paths) >= WARM_PACK_BYTES:
        scanner.engine.warm()
        preload_workers()


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


def _scan_packed(job: _Job, scanner: Scanner, found: Found) -> list[str]:
    """Scan the job's packed blobs into `found`; the ids of those the packs could not give
    (big deltas come from git: see the module's doc).

    The shortcut lives here and only here: a blob stored as a delta of a quiet blob is
    checked only around the spans the delta changed (`scanner.emit(..., check=spans)`);
    one stored as a delta of a blob with findings is searched at once (`check=[]`: most
    such edits keep the key, and the test for a sign would find it again), unless
    `job.exhaustive`."""
    if not job.packed:
        return []
    uses = Counter(base for *_, base in job.packed if base is not None)
    quiet: set[Location] = set()  # quiet blobs with deltas still to come
    noisy: set[Location] = set()  # blobs with findings and deltas still to come
    unread: list[str] = []
    hash_size = HASH_SIZES.get(job.repo.object_format, 20)
    reach = scanner.engine.reach
    with PackReader(job.packs, hash_size, uses, KEEP_BYTES) as reader:
        big = {oid for oid, _, where, _ in job.packed if _delta_size(reader, where) > BIG_DELTA}
        rebuilt = _InOrder(git.iter_blobs(job.repo, [oid for oid, *_ in job.packed if oid in big],
                                          unreadable=scanner.tally.unreadable))
        for n, (oid, _, where, _) in enumerate(job.packed):
            windows: list[tuple[int, int]] | None = None
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
                base = edit.base if edit is not None else None
                if edit is not None and base in quiet:
                    windows = _windows(edit.changed, reach, len(data))
            if job.exhaustive:
                _scan(scanner, oid, data, None, found)
            else:
                if windows is None and base in noisy:
                    windows = []  # an edit of a text with findings: searched, untested
                elif not windows:
                    windows = [(0, len(data))]
                if _scan(scanner, oid, data, windows, found) and uses[where] > 0:
                    quiet.add(where)
                elif oid in found.secrets and uses[where] > 0:
                    noisy.add(where)
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


def _shards(packed: list[Packed], shares: list[float]) -> list[list[Packed]]:
    """Shards of `packed` with bytes in proportion to `shares`, in that order, each delta
    in its base's shard (unless that shard is well past its share)."""
    # (at least 1: packed blobs may all be empty, the bytes that called for workers loose)
    scale = max(1, sum(size for _, size, _, _ in packed)) / sum(shares)
    targets = [share * scale for share in shares]
    count = len(shares)
    shards: list[list[Packed]] = [[] for _ in range(count)]
    sizes = [0] * count
    shard_of: dict[Location, int] = {}
    fill = [0.0] * count  # how far each shard is to its target
    for blob in packed:
        _, size, where, base = blob
        index = shard_of.get(base, -1) if base is not None else -1
        if index < 0 or fill[index] > 1.25:
            index = fill.index(min(fill))
        shards[index].append(blob)
        sizes[index] += size
        fill[index] = sizes[index] / targets[index]
        shard_of[where] = index
    return [shard for shard in shards if shard]


def _split(blobs: list[Blob], count: int) -> list[list[str]]:
    """The ids of `blobs` in `count` parts of about equal bytes."""
    parts: list[list[str]] = [[] for _ in range(count)]
    sizes = [0] * count
    for oid, size, _ in sorted(blobs, key=lambda blob: -blob[1]):
        index = min(range(count), key=sizes.__getitem__)
        parts[index].append(oid)
        sizes[index] += size
    return [part for part in parts if part]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
