"""The audit's client: tasks out, results in, each written to the inventory as it comes.

Only this process writes the inventory. The report is read back from it at the
end (the findings this audit saw, first/last seen, `new`), so a resumed audit
reports what its killed predecessor had already recorded, once.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from keyscan import __version__
from keyscan.audit.executors import Executor
from keyscan.audit.task import RepoResult, RepoTask, remember_engine, unchanged_here
from keyscan.model import Finding, Rule, Stats

if TYPE_CHECKING:
    from keyscan.hosts.gitauth import GitAccess
    from keyscan.inventory.ledger import BlobLedger
    from keyscan.inventory.store import Audit, Inventory, RepoState
    from keyscan.pipeline import Setup
    from keyscan.progress import Progress


@dataclass(frozen=True)
class Source:
    name: str  # as reported and remembered
    location: str  # what git reads: a path, or the URL (possibly with credentials)
    access: GitAccess | None = None  # listed by a host: how git gets its token there


@dataclass
class Outcome:
    findings: list[Finding]
    stats: Stats
    audit: Audit


def engine_digest(rules: Sequence[Rule], archive_depth: int = 8,
                  archive_bytes: int = 1 << 30) -> str:
    """Rules, the archive limits and keyscan's version: what a blob's scan depends on (a
    blob scanned with archives closed or shallower is scanned again)."""
    parts = [__version__, f"archives {archive_depth} {archive_bytes}"]
    for rule in sorted(rules, key=lambda r: r.id):
        parts.append(repr((rule.id, rule.vendor, rule.severity, rule.pattern.pattern,
                           rule.pattern.flags, rule.keywords, rule.prefixes, rule.priority,
                           rule.entropy)))
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def scan_digest(setup: Setup, engine: str) -> str:
    """The engine and the filters: what a repository's findings depend on."""
    config = setup.options.config
    parts = [engine, str(setup.options.include_placeholders), *sorted(setup.baseline)]
    if config is not None and config.is_file():
        parts.append(hashlib.sha256(config.read_bytes()).hexdigest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def audit_key(sources: Sequence[Source], digest: str) -> str:
    text = "\n".join([digest, *sorted(source.name for source in sources)])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def run_audit(sources: Sequence[Source], setup: Setup, inventory: Inventory,
              executor: Executor, cache: Path, workers: int,
              warn: Callable[[str], None], progress: Progress | None = None) -> Outcome:
    from keyscan.inventory.ledger import BlobLedger

    rules = setup.ruleset.rules
    options = setup.options
    engine = engine_digest(rules, options.max_archive_depth, options.max_decompressed_bytes)
    digest = scan_digest(setup, engine)
    remember_engine(engine, setup.engine)
    audit = inventory.begin_audit(audit_key(sources, digest))
    states = inventory.states(source.name for source in sources)
    need_secrets = options.verify or options.only_live or options.show_secrets
    ledger = BlobLedger(inventory.url, engine)
    cores = max(1, (os.cpu_count() or 1) // max(1, workers))
    tasks = [_task(source, states.get(source.name), setup, engine, digest, ledger, cache,
                   need_secrets, cores) for source in sources]
    answered: list[RepoResult] = []
    if executor.local:  # unchanged local repositories answered here, the rest sent
        answered = [known for task in tasks if (known := unchanged_here(task)) is not None]
        if answered:
            done_here = {result.name for result in answered}
            tasks = [task for task in tasks if task.name not in done_here]
    tasks, forks = largest_first(tasks)
    done_names: set[str] = set()  # repositories whose results are written (see `_released`)
    stats = Stats()
    held: dict[tuple[str, str], Finding] = {}  # whole secrets, only when needed
    done = found = 0
    failed: set[str] = set()
    unchanged = _Unchanged(inventory, audit, digest)
    results = chain(answered, executor.run(_released(tasks, forks, done_names)))
    for result in _announced(results, progress, len(sources)):
        if progress is not None and (result.warnings or result.error):
            progress.close()  # a warning starts on a line of its own
        for message in result.warnings:
            warn(f"{result.name}: {message}")
        done += 1
        done_names.add(result.name)  # the executor asks for more after this body
        if result.error is not None:
            warn(f"{result.name}: {result.error}")
            stats.failed_repositories += 1
            failed.add(result.name)
            continue
        if result.unchanged:
            unchanged.add(result.name)
        else:
            unchanged.flush()  # those waiting are written now, not after a long scan
            inventory.record(audit, result, result.findings, digest, engine)
        _count(stats, result)
        found += len(result.findings)
        if need_secrets:
            held.update(((f.repository or "", f.fingerprint), f) for f in result.findings)
        if progress is not None:
            progress.show(f"keyscan audit: {done}/{len(sources)} repositories, "
                          f"{found} findings; last: {result.name}")
    unchanged.flush()
    names = [source.name for source in sources if source.name not in failed]
    findings = inventory.audit_findings(audit, names)
    if need_secrets:
        findings = [_whole(held.get((f.repository or "", f.fingerprint)), f) for f in findings]
    inventory.finish_audit(audit)
    return Outcome(findings, stats, audit)


class _Unchanged:
    """Unchanged repositories, written to the inventory in batches (`record_unchanged`):
    at most BATCH of them, or those of the last FLUSH_SECONDS, wait for their write
    (and none past the next changed repository's), so an audit killed loses no more
    than those, and its rerun redoes them at no cost."""

    BATCH = 64
    FLUSH_SECONDS = 1.0

    def __init__(self, inventory: Inventory, audit: Audit, digest: str) -> None:
        self._inventory = inventory
        self._audit = audit
        self._digest = digest
        self._names: list[str] = []
        self._since = 0.0

    def add(self, name: str) -> None:
        import time

        if not self._names:
            self._since = time.monotonic()
        self._names.append(name)
        if len(self._names) >= self.BATCH or time.monotonic() - self._since >= self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._names:
            self._inventory.record_unchanged(self._audit, self._names, self._digest)
            self._names = []


def _task(source: Source, state: RepoState | None, setup: Setup, engine: str, digest: str,
          ledger: BlobLedger, cache: Path, need_secrets: bool, cores: int) -> RepoTask:
    return RepoTask(
        name=source.name, source=source.location, cache=str(cache),
        rules=tuple(setup.ruleset.rules),
        engine_digest=engine, digest=digest,
        last_tips=state.tips if state else None, last_digest=state.digest if state else None,
        ledger=ledger, allowlist=setup.allowlist, baseline=setup.baseline,
        include_placeholders=setup.options.include_placeholders,
        need_secrets=need_secrets, cores=cores, access=source.access,
        max_archive_depth=setup.options.max_archive_depth,
        max_decompressed_bytes=setup.options.max_decompressed_bytes,
    )


def largest_first(tasks: list[RepoTask]) -> tuple[list[RepoTask], dict[str, str]]:
    """The tasks in the order they go out: the largest repositories first, as far as this
    machine can tell (a local path's pack files), the rest after them as listed. Started
    first, the big ones do not end the audit: the last to finish are small, so no worker
    idles at the end while another scans one big repository alone (longest first, the
    classic rule for a short makespan).

    And the forks among them: name -> the larger repository whose objects it mostly
    holds (see `_look`), which `_released` makes it wait for."""
    if len(tasks) < 2:
        return tasks, {}
    looks = {task.name: _look(task.source) for task in tasks}
    ordered = sorted(tasks, key=lambda task: -looks[task.name][0])  # stable: ties as listed
    owner: dict[bytes, str] = {}  # an object name -> the first (largest) repository with it
    forks: dict[str, str] = {}
    for task in ordered:
        sketch = looks[task.name][1]
        shared = Counter(owner[name] for name in sketch if name in owner).most_common(1)
        if len(sketch) == SKETCH and shared and 2 * shared[0][1] >= SKETCH:
            forks[task.name] = shared[0][0]  # (forks own no names: never a fork's fork)
            continue
        for name in sketch:
            owner.setdefault(name, task.name)
    return ordered, forks


def _released(tasks: list[RepoTask], forks: dict[str, str], done: set[str]
              ) -> Iterator[RepoTask]:
    """`tasks` as the executor asks for them, each fork held back until the repository it
    was forked from is done (its result written: `done`), then handed out first. Begun
    beside it, on another worker, a fork would scan every blob they share a second time;
    begun after, it scans only its own (a blob is scanned once per inventory; the worker
    that scanned the origin remembers them even sooner). When nothing else is left, the
    held forks go out anyway: a worker idle is worse than a blob scanned twice."""
    held: list[RepoTask] = []
    for task in tasks:
        if held:
            ready = [fork for fork in held if forks[fork.name] in done]
            for fork in ready:
                held.remove(fork)
                yield fork
        if task.name in forks and forks[task.name] not in done:
            held.append(task)
        else:
            yield task
    yield from held


SKETCH = 32  # object names a repository's sketch holds


def _look(location: str) -> tuple[int, frozenset[bytes]]:
    """(bytes in the pack files, sketch) of the repository at `location` when it is a plain
    one on this machine, else (0, nothing): a URL, or a path only the workers have.

    The sketch is the `SKETCH` smallest object names in its pack indexes (each sorted by
    name: the first names of each, one read). Two repositories share a sketch's names
    about as much as they share objects (a "bottom-k" sketch: which names are smallest
    does not depend on the rest), so a fork's and its origin's mostly coincide, and
    unrelated repositories' almost never do (only a blob both hold, such as a licence
    text, that happens to be among both's smallest names)."""
    from keyscan.sources.mirror import is_remote
    from keyscan.sources.reffiles import plain_git_dir

    if is_remote(location):
        return 0, frozenset()
    git_dir = plain_git_dir(Path(location))
    if git_dir is None:
        return 0, frozenset()
    total = 0
    names: set[bytes] = set()
    try:
        with os.scandir(f"{os.fspath(git_dir)}/objects/pack") as entries:
            for entry in entries:
                if entry.name.endswith(".pack") and entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                    names.update(_first_names(entry.path))
    except OSError:
        return 0, frozenset()
    return total, frozenset(sorted(names)[:SKETCH])


def _first_names(pack: str) -> list[bytes]:
    """The first `SKETCH` object names in the index of `pack` (20 bytes each: a sha256
    repository's are cut the same way in each of its forks), or none if it is unreadable."""
    from keyscan.sources.packfile import Index, PackError

    try:
        index = Index(Path(pack), 20)
    except (OSError, PackError):
        return []
    try:
        return index.first_names(SKETCH)
    except (OSError, PackError):
        return []
    finally:
        index.close()


def _announced(results: Iterator[RepoResult], progress: Progress | None,
               total: int) -> Iterator[RepoResult]:
    if progress is not None:
        progress.show(f"keyscan audit: 0/{total} repositories")
    yield from results


def _count(stats: Stats, result: RepoResult) -> None:
    stats.files += result.files
    stats.scanned_bytes += result.scanned_bytes
    stats.commits += result.commits
    stats.unreadable += result.unreadable
    stats.skipped += result.skipped
    for reason, count in result.suppressed.items():
        stats.suppressed[reason] = stats.suppressed.get(reason, 0) + count


def _whole(full: Finding | None, stored: Finding) -> Finding:
    """The stored finding with its whole secret, when this audit read it."""
    if full is None:
        return stored
    return full.replace(first_seen=stored.first_seen, last_seen=stored.last_seen,
                        new=stored.new, refs=full.refs or stored.refs)
