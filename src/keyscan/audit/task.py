"""One repository's work: `scan_repository(task) -> RepoResult`, a picklable top-level
function of picklable values, so any executor can run it: this process, a local
process pool, or a cluster (see `executors.py`).

The task carries everything the work needs (the source, the engine, what the
inventory remembers of the repository, a read-only `BlobLedger`); the result
carries everything the client writes. Workers never write the inventory: the
client alone does, one repository per transaction.

Whole secrets travel in a result's findings only when the client needs them
(`need_secrets`: `--verify`, `--show-secrets`); otherwise the worker strips them
(`Finding.without_secret`) before the result leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keyscan.errors import KeyscanError
from keyscan.model import Finding, Rule, Stats

if TYPE_CHECKING:
    from keyscan.engine import Engine
    from keyscan.filters.allowlist import Allowlist
    from keyscan.hosts.gitauth import GitAccess
    from keyscan.inventory.ledger import BlobLedger
    from keyscan.sources.attribution import Secrets
    from keyscan.sources.driver import Scanner


@dataclass(frozen=True)
class RepoTask:
    name: str  # as reported and remembered (a URL without credentials)
    source: str  # a local path (read in place) or a URL (mirrored into `cache`)
    cache: str
    rules: tuple[Rule, ...]  # the engine is built from them once per process (`engine_for`)
    engine_digest: str  # the engine's rules: blobs scanned under other rules are scanned again
    digest: str  # engine and filters: a repository scanned under others is scanned again
    last_tips: dict[str, str] | None  # ref -> commit when last scanned (None: never)
    last_digest: str | None
    ledger: BlobLedger | None
    allowlist: Allowlist | None = None  # filters run here: they need the whole secret
    baseline: frozenset[str] = frozenset()
    include_placeholders: bool = False
    need_secrets: bool = False
    cores: int = 1  # processes for this repository's blobs
    access: GitAccess | None = None  # a host's token for git: its variable, never the token
    # Archives in blobs are opened as `keyscan git` opens them (--max-archive-depth,
    # --max-decompressed-bytes; depth 0: never): plain numbers, so the task pickles.
    max_archive_depth: int = 8
    max_decompressed_bytes: int = 1 << 30


@dataclass
class RepoResult:
    name: str
    tips: dict[str, str] = field(default_factory=dict)
    unchanged: bool = False  # same tips and digest as last time: nothing was scanned
    findings: list[Finding] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)  # blob ids scanned now
    secrets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # of those: secrets
    files: int = 0
    scanned_bytes: int = 0
    commits: int = 0
    unreadable: int = 0
    skipped: int = 0  # archive members beyond a limit, damaged archives: each a warning
    suppressed: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # could not be cloned, fetched or read


def scan_repository(task: RepoTask) -> RepoResult:
    """Mirror (or open) the repository, and scan what the inventory has not seen."""
    from keyscan.sources.mirror import mirrored

    result = RepoResult(task.name)
    try:
        location = mirrored(task.source, Path(task.cache), _git_env(task))
        settled = _settled(task)
        if settled and task.last_tips is not None and _same_refs(location, task.last_tips):
            result.tips, result.unchanged = dict(task.last_tips), True
            return result  # the second audit's usual case: no git process at all
        from keyscan.sources import git
        from keyscan.sources.history import scan_all
        from keyscan.sources.packfile import check_store
        from keyscan.sources.refs import ref_tips

        repo = git.open_repo(location)
        check_store(repo)  # before any git reads objects: a FIFO among the packs would hang it
        result.tips = ref_tips(repo)
        if settled and result.tips == task.last_tips:
            result.unchanged = True
            return result
        stats = Stats()
        ledger = _Recorder(task.ledger, result)
        findings = scan_all(repo, scanner_for(task), stats, result.warnings.append,
                            ledger=ledger, workers=task.cores, tips=result.tips)
    except KeyscanError as error:
        result.error = str(error) + _token_hint(task)
        return result
    except OSError as error:
        result.error = f"cannot read it: {error.strerror or type(error).__name__}"
        return result
    if task.allowlist is not None:
        from keyscan.filters import apply_filters

        findings = apply_filters(findings, allowlist=task.allowlist, baseline=task.baseline,
                                 include_placeholders=task.include_placeholders, stats=stats)
    findings = [f.replace(repository=task.name) for f in findings]
    result.findings = findings if task.need_secrets else [f.without_secret() for f in findings]
    result.suppressed = stats.suppressed
    result.files, result.scanned_bytes = stats.files, stats.scanned_bytes
    result.commits, result.unreadable = stats.commits, stats.unreadable
    result.skipped = stats.skipped
    return result


def unchanged_here(task: RepoTask) -> RepoResult | None:
    """`scan_repository(task)` answered without running it, when the repository is a local
    one that its ref files show unchanged (the second audit's usual case); None when the
    task must run. For the client of an executor whose tasks see this machine's files:
    such an answer costs no worker, no pickling, no round trip."""
    from keyscan.sources.mirror import is_remote

    if not _settled(task) or task.last_tips is None or is_remote(task.source):
        return None
    if not _same_refs(task.source, task.last_tips):
        return None
    return RepoResult(task.name, tips=dict(task.last_tips), unchanged=True)


def _settled(task: RepoTask) -> bool:
    """Scanned last time with the same rules and filters, and no whole secret wanted: the
    repository is rescanned only if its refs moved."""
    return task.digest == task.last_digest and not task.need_secrets


def _same_refs(location: str, tips: dict[str, str]) -> bool:
    """The refs at `location` are `tips`, as git's ref files tell without a git process
    (sources/reffiles.py); False also when they cannot tell, and then git is asked."""
    from keyscan.sources.reffiles import plain_git_dir, unchanged

    git_dir = plain_git_dir(Path(location))
    return git_dir is not None and unchanged(git_dir, tips)


def _git_env(task: RepoTask) -> dict[str, str] | None:
    """git's environment for a listed repository: the token of its host, read here (this
    worker's environment), in git's environment config. None: ours, unchanged."""
    if task.access is None:
        return None
    import os

    from keyscan.hosts.gitauth import git_environment

    return git_environment(task.source, task.access, os.environ)


def _token_hint(task: RepoTask) -> str:
    import os

    from keyscan.hosts.gitauth import missing_token_hint

    return missing_token_hint(task.access, os.environ)


_ENGINES: dict[str, Engine] = {}  # engine digest -> engine: built once per worker process


def engine_for(task: RepoTask) -> Engine:
    engine = _ENGINES.get(task.engine_digest)
    if engine is None:
        from keyscan.engine import Engine

        engine = _ENGINES[task.engine_digest] = Engine(task.rules)
    return engine


def scanner_for(task: RepoTask) -> Scanner:
    """The driver `keyscan git` scans with: this process's engine for the task's rules, and
    the archive expansion step within the task's limits."""
    from keyscan.sources.archive import Limits
    from keyscan.sources.contents import expander
    from keyscan.sources.driver import Scanner

    limits = Limits(task.max_archive_depth, task.max_decompressed_bytes)
    return Scanner(engine_for(task), expander(limits))


def remember_engine(digest: str, engine: Engine) -> None:
    """The client's own engine, for tasks it runs itself (and workers it forks)."""
    _ENGINES[digest] = engine


class _Recorder:
    """The history scan's ledger: asks what this process scanned lately (`_Recent`), then
    the inventory (read-only), and notes what was scanned."""

    def __init__(self, ledger: BlobLedger | None, result: RepoResult) -> None:
        self._ledger = ledger
        self._result = result

    def known(self, oids: Sequence[str]) -> Mapping[str, Secrets]:
        if self._ledger is None:
            return {}
        known = _RECENT.known(self._ledger, oids)
        rest = [oid for oid in oids if oid not in known] if known else oids
        if rest:
            known.update(self._ledger.known(rest))
        return known

    def scanned(self, oids: Sequence[str], found: Mapping[str, Secrets]) -> None:
        self._result.scanned = list(oids)
        self._result.secrets = {oid: sorted(secrets) for oid, secrets in found.items()}
        if self._ledger is not None:
            _RECENT.add(self._ledger, oids, found)


class _Recent:
    """The blobs this process scanned for its last few repositories, with their secrets.

    The inventory learns of a repository's blobs only when the client writes its result;
    a fork of it that this worker process scans next (often the task queued behind it)
    would ask the inventory before that and scan every shared blob again. Asked first,
    this answers as the inventory will: same inventory, same rules, secrets by their
    hash. The blobs stay recorded once, by the result of the repository that scanned
    them (a task that skips them does not list them as scanned). Bounded: the last
    SCANS repositories' blobs, at most OIDS of them."""

    SCANS = 8
    OIDS = 1 << 20

    def __init__(self) -> None:
        import threading
        from collections import deque

        self._lock = threading.Lock()  # a Dask worker may run tasks in several threads
        self._scans: deque[tuple[tuple[str, str], dict[str, Secrets]]] = deque()
        self._count = 0

    def known(self, ledger: BlobLedger, oids: Sequence[str]) -> dict[str, Secrets]:
        key = (ledger.url, ledger.engine_digest)
        with self._lock:
            scans = [blobs for scanned_for, blobs in self._scans if scanned_for == key]
        known: dict[str, Secrets] = {}
        if scans:
            for oid in oids:
                for blobs in scans:
                    secrets = blobs.get(oid)
                    if secrets is not None:
                        known[oid] = secrets
                        break
        return known

    def add(self, ledger: BlobLedger, oids: Sequence[str], found: Mapping[str, Secrets]
            ) -> None:
        if not oids or len(oids) > self.OIDS:
            return
        clean: Secrets = frozenset()
        blobs = {oid: found.get(oid, clean) for oid in oids}
        with self._lock:
            self._scans.append(((ledger.url, ledger.engine_digest), blobs))
            self._count += len(blobs)
            while len(self._scans) > self.SCANS or self._count > self.OIDS:
                self._count -= len(self._scans.popleft()[1])


_RECENT = _Recent()
