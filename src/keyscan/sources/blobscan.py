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
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

from keyscan.edits import changed_span
from keyscan.encodings import utf16_codec
from keyscan.model import Fragment, Stats
from keyscan.sources import git
from keyscan.sources.attribution import Secrets
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
    from keyscan.engine import Engine

PARALLEL_BYTES = 32 << 20  # below this, one process is faster than starting workers
SHARDS_PER_WORKER = 4  # more shards than workers: progress to show, and an even finish
BIG_DELTA = 2048  # bytes of delta above which git rebuilds a blob faster than Python
KEEP_BYTES = 32 << 20  # rebuilt delta bases a worker keeps until their deltas are read
Progress = Callable[[Stats], None]
Blob = tuple[str, int, str]  # id, size, delta base id ("" when none): see git.list_blobs
Packed = tuple[str, int, Location, "Location | None"]  # id, size, where, where its base is


class _Job:
    """What one worker scans: blobs in packs (in pack order), then the rest through git."""

    def __init__(self, repo: git.GitRepo, engine: Engine, packs: list[Pack],
                 packed: list[Packed], loose: list[str]) -> None:
        self.repo, self.engine, self.packs = repo, engine, packs
        self.packed, self.loose = packed, loose


def secrets_in(engine: Engine, data: bytes) -> Secrets:
    """What the engine finds in `data`, as (rule id, the secret's sha256) pairs: the hash,
    not the secret, so that what an inventory remembers of a blob compares alike."""
    return frozenset((f.rule_id, f.secret_sha256)
                     for f in engine.scan(Fragment(data=data, path="")))


def scan_all_blobs(repo: git.GitRepo, engine: Engine, stats: Stats,
                   progress: Progress | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for every blob in the object store that holds any."""
    return scan_listed(repo, engine, git.list_blobs(repo), stats, progress)


def scan_listed(repo: git.GitRepo, engine: Engine, blobs: list[Blob],
                stats: Stats, progress: Progress | None = None,
                workers: int | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for the blobs of `blobs` (see `git.list_blobs`) that hold any,
    on `workers` processes (default: one per core)."""
    paths = pack_files(repo) if blobs else []
    hash_size = HASH_SIZES.get(repo.object_format, 20)
    where, packs = locate(paths, [oid for oid, _, _ in blobs], hash_size)
    packed = sorted(((oid, size, where[oid], where.get(base)) for oid, size, base in blobs
                     if oid in where), key=lambda blob: blob[2])
    loose = [blob for blob in blobs if blob[0] not in where]
    workers = workers or _cores()
    total = sum(size for _, size, _ in blobs)
    forking = "fork" in multiprocessing.get_all_start_methods()  # cheap workers: not Windows
    if workers < 2 or total < PARALLEL_BYTES or not forking:
        job = _Job(repo, engine, packs, packed, [oid for oid, _, _ in loose])
        return _scan_job(job, stats, progress)[0]
    count = workers * SHARDS_PER_WORKER
    jobs = [_Job(repo, engine, packs, shard, []) for shard in _shards(packed, count)]
    jobs += [_Job(repo, engine, packs, [], part) for part in _split(loose, count)]
    found: dict[str, Secrets] = {}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for done in as_completed([pool.submit(_scan_job, job) for job in jobs]):
            part, files, scanned = done.result()
            found.update(part)
            stats.files += files
            stats.scanned_bytes += scanned
            if progress:
                progress(stats)
    return found


def _scan_job(job: _Job, stats: Stats | None = None,
              progress: Progress | None = None) -> tuple[dict[str, Secrets], int, int]:
    stats = stats or Stats()
    found: dict[str, Secrets] = {}
    unread = _scan_packed(job, found, stats, progress) + job.loose
    for oid, data in git.iter_blobs(job.repo, unread):
        _scan(job.engine, oid, data, None, found)
        _count(stats, data, progress)
    return found, stats.files, stats.scanned_bytes


def _scan_packed(job: _Job, found: dict[str, Secrets], stats: Stats,
                 progress: Progress | None) -> list[str]:
    """Scan the job's packed blobs into `found`; the ids of those the packs could not give
    (big deltas come from git: see the module's doc)."""
    if not job.packed:
        return []
    engine = job.engine
    uses = Counter(base for *_, base in job.packed if base is not None)
    quiet: set[Location] = set()  # quiet blobs with deltas still to come
    unread: list[str] = []
    hash_size = HASH_SIZES.get(job.repo.object_format, 20)
    with PackReader(job.packs, hash_size, uses, KEEP_BYTES) as reader:
        big = {oid for oid, _, where, _ in job.packed if _delta_size(reader, where) > BIG_DELTA}
        rebuilt = _InOrder(git.iter_blobs(job.repo, [oid for oid, *_ in job.packed if oid in big]))
        for oid, _, where, _ in job.packed:
            windows = None
            if oid in big:
                data = rebuilt.take(oid)
                if data is None:
                    continue  # git has no such blob (any more): nothing to scan
                base, old = reader.adopt(where, data)
                if old is not None and base in quiet:
                    windows = _windows((changed_span(old, data),), engine.reach, len(data))
            else:
                try:
                    data, edit = reader.read(where)
                except PackError:
                    unread.append(oid)
                    continue
                if edit is not None and edit.base in quiet:
                    windows = _windows(edit.changed, engine.reach, len(data))
            if _scan(engine, oid, data, windows, found) and uses[where] > 0:
                quiet.add(where)
            _count(stats, data, progress)
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


def _scan(engine: Engine, oid: str, data: bytes, windows: list[tuple[int, int]] | None,
          found: dict[str, Secrets]) -> bool:
    """Scan `data` into `found` unless it is quiet (only `windows` checked, when given:
    the rest is a quiet base's); True if it was."""
    spans = windows or [(0, len(data))]
    # UTF-16 is scanned converted, never by parts.
    if utf16_codec(data) is None and all(engine.quiet(data, *span) for span in spans):
        return True
    secrets = secrets_in(engine, data)
    if secrets:
        found[oid] = secrets
    return False


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


def _count(stats: Stats, data: bytes, progress: Progress | None) -> None:
    stats.files += 1
    stats.scanned_bytes += len(data)
    if progress:
        progress(stats)


def _shards(packed: list[Packed], count: int) -> list[list[Packed]]:
    """`count` shards of about equal bytes, in pack order, each delta in its base's
    shard (unless that shard is well past its share)."""
    share = sum(size for _, size, _, _ in packed) / count
    shards: list[list[Packed]] = [[] for _ in range(count)]
    sizes = [0] * count
    shard_of: dict[Location, int] = {}
    for blob in packed:
        _, size, where, base = blob
        index = shard_of.get(base, -1) if base is not None else -1
        if index < 0 or sizes[index] > 1.25 * share:
            index = min(range(count), key=sizes.__getitem__)
        shards[index].append(blob)
        sizes[index] += size
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
