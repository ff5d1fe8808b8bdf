"""Scan many blobs once each, on every core: secrets per blob, nothing else kept.

Scanning (the engine's keyword passes) costs about as much CPU as git's
inflating the blobs, so one Python process reading one `cat-file` leaves a
core idle. For big inputs the blob list is cut into contiguous shards (in pack
order, so each `cat-file` keeps its delta cache warm), one per core, each read
by its own `git cat-file --batch` in a worker process; small inputs stay in
this process, where starting workers would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

from keyscan.model import Fragment, Stats
from keyscan.sources import git
from keyscan.sources.attribution import Secrets

if TYPE_CHECKING:
    from keyscan.engine import Engine

PARALLEL_BYTES = 32 << 20  # below this, one process is faster than starting workers
SHARDS_PER_WORKER = 4  # more shards than workers: progress to show, and an even finish
Progress = Callable[[Stats], None]


def secrets_in(engine: Engine, data: bytes) -> Secrets:
    """What the engine finds in `data`, as (rule id, secret) pairs."""
    return frozenset((f.rule_id, f.secret) for f in engine.scan(Fragment(data=data, path="")))


def scan_all_blobs(repo: git.GitRepo, engine: Engine, stats: Stats,
                   progress: Progress | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for every blob in the object store that holds any."""
    blobs = git.list_blobs(repo)
    return scan_listed(repo, engine, blobs, stats, progress)


def scan_listed(repo: git.GitRepo, engine: Engine, blobs: list[tuple[str, int]],
                stats: Stats, progress: Progress | None = None) -> dict[str, Secrets]:
    """Blob id -> secrets for the blobs of `blobs` ((id, size) pairs) that hold any."""
    workers = _cores()
    total = sum(size for _, size in blobs)
    forking = "fork" in multiprocessing.get_all_start_methods()  # cheap workers: not Windows
    if workers < 2 or total < PARALLEL_BYTES or not forking:
        blob_ids = (oid for oid, _ in blobs)
        return scan_stream(engine, git.iter_blobs(repo, blob_ids), stats, progress)
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
                progress: Progress | None = None) -> dict[str, Secrets]:
    found: dict[str, Secrets] = {}
    for oid, data in blobs:
        stats.files += 1
        stats.scanned_bytes += len(data)
        secrets = secrets_in(engine, data)
        if secrets:
            found[oid] = secrets
        if progress:
            progress(stats)
    return found


def _scan_shard(job: tuple[git.GitRepo, Engine, list[str]]) -> tuple[dict[str, Secrets], int, int]:
    repo, engine, oids = job
    stats = Stats()
    found = scan_stream(engine, git.iter_blobs(repo, oids), stats)
    return found, stats.files, stats.scanned_bytes


def _shards(blobs: Iterable[tuple[str, int]], total: int, count: int) -> list[list[str]]:
    """Contiguous runs of about total/count bytes each."""
    shards: list[list[str]] = [[]]
    filled = 0
    for oid, size in blobs:
        if filled >= total * len(shards) / count and len(shards) < count:
            shards.append([])
        shards[-1].append(oid)
        filled += size
    return shards


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
