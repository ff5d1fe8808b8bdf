"""Scan many blobs once each, on every core: secrets per blob, nothing else kept.

Scanning (the engine's keyword passes) costs about as much CPU as git's
inflating the blobs, so one Python process reading one `cat-file` leaves a
core idle. For big inputs the blob list is cut into shards, one per core, each
read by its own `git cat-file --batch` in a worker process (no blob crosses a
process boundary); small inputs stay in this process, where starting workers
would cost more than it saves.

Most blobs of a history are a small edit of another (git stores them as deltas
of it, the base earlier in the pack). A blob whose base was quiet (no keyword,
no encoded prefix: see `Engine.quiet`) is checked only around the span the edit
changed (`edits.changed_span`, a memcmp); so shards keep each delta with its base,
and a worker holds quiet bases in memory until their last delta has come
(at most `BASE_CACHE` bytes: past that, deltas are checked whole).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

from keyscan.edits import changed_span
from keyscan.encodings import from_utf16
from keyscan.model import Fragment, Stats
from keyscan.sources import git
from keyscan.sources.attribution import Secrets

if TYPE_CHECKING:
    from keyscan.engine import Engine

PARALLEL_BYTES = 32 << 20  # below this, one process is faster than starting workers
SHARDS_PER_WORKER = 4  # more shards than workers: progress to show, and an even finish
BASE_CACHE = 32 << 20  # bytes of quiet bases a worker keeps for their deltas
Progress = Callable[[Stats], None]
Blob = tuple[str, int, str]  # id, size, delta base id ("" when none)
_NOTHING: Secrets = frozenset()


def secrets_in(engine: Engine, data: bytes) -> Secrets:
    """What the engine finds in `data`, as (rule id, secret) pairs."""
    return frozenset((f.rule_id, f.secret) for f in engine.scan(Fragment(data=data, path="")))


def scan_all_blobs(repo: git.GitRepo, engine: Engine, stats: Stats,
                   progress: Progress | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for every blob in the object store that holds any."""
    blobs = git.list_blobs(repo)
    return scan_listed(repo, engine, blobs, stats, progress)


def scan_listed(repo: git.GitRepo, engine: Engine, blobs: list[Blob],
                stats: Stats, progress: Progress | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for the blobs of `blobs` (see `git.list_blobs`) that hold any."""
    workers = _cores()
    total = sum(size for _, size, _ in blobs)
    forking = "fork" in multiprocessing.get_all_start_methods()  # cheap workers: not Windows
    if workers < 2 or total < PARALLEL_BYTES or not forking:
        return _scan_shard((repo, engine, blobs), stats, progress)[0]
    shards = _shards(blobs, total, workers * SHARDS_PER_WORKER)
    found: dict[str, Secrets] = {}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        jobs = [pool.submit(_scan_shard, (repo, engine, shard)) for shard in shards]
        for job in as_completed(jobs):
            part, files, scanned = job.result()
            found.update(part)
            stats.files += files
            stats.scanned_bytes += scanned
            if progress:
                progress(stats)
    return found


def scan_stream(engine: Engine, blobs: Iterator[tuple[str, bytes]], stats: Stats,
                progress: Progress | None = None,
                bases: dict[str, str] | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for the blobs of the stream that hold any. `bases` maps a
    blob to its delta base where that base comes earlier in the same stream."""
    bases = bases or {}
    uses = Counter(bases.values())  # deltas still to come, per base
    quiet: dict[str, bytes] = {}  # quiet bases with deltas still to come
    cached = 0
    found: dict[str, Secrets] = {}
    for oid, data in blobs:
        stats.files += 1
        stats.scanned_bytes += len(data)
        base = bases.get(oid)
        old = quiet.get(base) if base else None
        if base:
            uses[base] -= 1
            if uses[base] == 0 and old is not None:  # its last delta: let it go
                cached -= len(quiet.pop(base))
        if _quiet(engine, data, old):
            if uses[oid] > 0 and cached + len(data) <= BASE_CACHE:
                quiet[oid] = data
                cached += len(data)
        else:
            secrets = secrets_in(engine, data)
            if secrets:
                found[oid] = secrets
        if progress:
            progress(stats)
    return found


def _quiet(engine: Engine, data: bytes, base: bytes | None) -> bool:
    """Can the engine find nothing in `data`? Only the edit is checked when `base`
    (what git stored `data` as an edit of) is known to be quiet."""
    if from_utf16(data[:2]) is not None:
        return False  # UTF-16: the engine scans it converted, never by parts
    if base is None:
        return engine.quiet(data)
    start, end = changed_span(base, data)
    return engine.quiet(data, max(0, start - engine.reach), min(len(data), end + engine.reach))


def _scan_shard(job: tuple[git.GitRepo, Engine, list[Blob]], stats: Stats | None = None,
                progress: Progress | None = None) -> tuple[dict[str, Secrets], int, int]:
    repo, engine, blobs = job
    stats = stats or Stats()
    bases: dict[str, str] = {}  # only bases met earlier in the stream
    seen: set[str] = set()
    for oid, _, base in blobs:
        if base in seen:
            bases[oid] = base
        seen.add(oid)
    oids = (oid for oid, _, _ in blobs)
    found = scan_stream(engine, git.iter_blobs(repo, oids), stats, progress, bases)
    return found, stats.files, stats.scanned_bytes


def _shards(blobs: Iterable[Blob], total: int, count: int) -> list[list[Blob]]:
    """`count` shards of about total/count bytes each, in pack order, each delta in its
    base's shard (unless that shard is well past its share): a base comes before its
    deltas in a pack, so each shard's stream meets a base first."""
    share = total / count
    shards: list[list[Blob]] = [[] for _ in range(count)]
    sizes = [0] * count
    shard_of: dict[str, int] = {}
    for oid, size, base in blobs:
        index = shard_of.get(base, -1)
        if index < 0 or sizes[index] > 1.25 * share:
            index = min(range(count), key=sizes.__getitem__)
        shards[index].append((oid, size, base))
        sizes[index] += size
        shard_of[oid] = index
    return [shard for shard in shards if shard]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
