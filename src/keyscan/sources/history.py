"""Git history: every distinct blob scanned once, attribution from tree changes.

`scan_all` (every ref, the stash and its reflog, notes) streams every blob of
the object store through `git cat-file --batch-all-objects` while, on the
other core, `git log --raw` (tree changes, no text diffs) spools the walk to a
temporary file. Only blobs in which the engine finds something are followed
through the walk to the commit that introduced them (see `attribution.py`).

`scan_revisions` does the same for `git rev-list` arguments (`--range`,
pre-push, CI): the walk comes first and names the blobs to scan.

One finding per (rule, secret, path): its first introduction in the scanned
commits, with the line and column in that commit's version of the file. A key
deleted and added again within a range is reported once, at its first commit:
the JSON has one commit per finding, and the fingerprint (rule, path, secret)
is the same for both.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Protocol

from keyscan.errors import KeyscanError
from keyscan.model import Commit, Finding, Fragment, Stats
from keyscan.sources import git
from keyscan.sources.attribution import (
    WALK_ARGS,
    Change,
    Header,
    Introduction,
    Introductions,
    Secrets,
    parse_renames,
    read_walk,
)
from keyscan.sources.blobscan import Progress, Sites, scan_listed, secrets_in, warm_up
from keyscan.sources.driver import Scanner, report_unreadable
from keyscan.sources.packfile import (
    HASH_SIZES,
    all_objects,
    check_store,
    delta_cycles,
    pack_files,
)
from keyscan.sources.refs import ref_tips, refs_from_walk, with_refs

if TYPE_CHECKING:
    from keyscan.engine import Engine

Warn = Callable[[str], None]
_OID = re.compile(r"^\^?[0-9a-f]{40}([0-9a-f]{24})?$")


class Ledger(Protocol):
    """What an inventory remembers of blobs (`keyscan audit`): a blob is scanned once."""

    def known(self, oids: Sequence[str]) -> Mapping[str, Secrets]:
        """The blobs among `oids` scanned before, with their secrets (empty when none)."""

    def scanned(self, oids: Sequence[str], found: Mapping[str, Secrets]) -> None:
        """`oids` were scanned now; `found` holds the secrets of those that have any."""


class Started:
    """A whole-history scan's first steps, begun as early as possible (`keyscan git`
    begins them before it loads its rules, so git works while Python starts up): the
    object store checked and git listing the blobs (stopped again if a delta cycle
    would make it loop). The walk over every ref is begun once the listing is read
    (`begin_walk`): it is needed only after the blob scan, and on a machine of two
    cores it would slow the listing that everything else waits for. Closing stops
    what still runs."""

    def __init__(self, repo: git.GitRepo, tips: dict[str, str] | None = None) -> None:
        check_store(repo)  # before any git: it would hang on a FIFO among the packs
        self._repo = repo
        self._stash = tips is None or "refs/stash" in tips
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115  (closed by `close`)
        self.walk: subprocess.Popen[bytes] | None = None
        self.listing: git.Listing | None = None
        try:
            # listing while the packs are checked for delta cycles: stopped if any is found
            self.listing = git.Listing(repo)
            self.cycling = delta_cycles(pack_files(repo), HASH_SIZES.get(repo.object_format, 20))
            if self.cycling:
                self.listing.close()
                self.listing = None
        except BaseException:
            self.close()
            raise

    def begin_walk(self) -> subprocess.Popen[bytes]:
        """The walk over every ref (and the stash's reflog), spooling; begun once."""
        if self.walk is None:
            stash = git.reflog(self._repo, "refs/stash") if self._stash else []
            self.walk = _start_walk(self._repo, ["--all"], stash, self.spool)
        return self.walk

    def close(self) -> None:
        if self.walk is not None and self.walk.poll() is None:
            self.walk.kill()
            self.walk.wait()
        if self.listing is not None:
            self.listing.close()
        self.spool.close()

    def __enter__(self) -> Started:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scan_all(repo: git.GitRepo, engine: Engine | Scanner, stats: Stats, warn: Warn,
             progress: Progress | None = None, exhaustive: bool = False, *,
             ledger: Ledger | None = None, workers: int | None = None,
             tips: dict[str, str] | None = None, started: Started | None = None
             ) -> list[Finding]:
    """Every commit reachable from any ref, plus every stash entry in the stash reflog.

    `progress(stats)` is called as blobs are scanned (e.g. a progress line on a TTY);
    `exhaustive` reads every blob whole (no delta shortcut, see `blobscan`). With a
    `ledger`, blobs it knows are not scanned again, and it hears of those that were.
    `workers`: processes for the blob scan (default: one per core). `tips`: the refs
    (`refs.ref_tips`), when the caller read them already. `started`: the first steps
    (see `Started`), when the caller began them; it closes them too.
    """
    if started is None:
        with Started(repo, tips) as begun:
            return scan_all(repo, engine, stats, warn, progress, exhaustive, ledger=ledger,
                            workers=workers, tips=tips, started=begun)
    scanner = _scanner(engine)
    sites: Sites = {}  # the findings of the blobs scanned now, where they are
    found, listed = _scan_store(repo, scanner, stats, warn, progress, exhaustive, ledger,
                                workers, sites, started)
    git.check_exit(started.begin_walk(), "log")
    spool = started.spool
    spool.seek(0)
    known = _Known(found, None)
    graph = bytearray()  # every commit and its parents, as the walk met them
    reaching: dict[str, tuple[str, ...]] = {}

    def look_up_refs(commits: set[str]) -> None:
        reaching.update(refs_from_walk(bytes(graph), commits,
                                       ref_tips(repo) if tips is None else tips))

    findings = _attribute(
        repo, scanner, spool, known, stats, warn, listed,
        lambda missing: _scan_missing(repo, scanner, missing, stats, warn, exhaustive),
        sites, graph, look_up_refs)
    return [f.replace(refs=reaching.get(f.commit.sha, ())) if f.commit else f
            for f in findings]


def _scan_store(repo: git.GitRepo, scanner: Scanner, stats: Stats, warn: Warn,
                progress: Progress | None, exhaustive: bool, ledger: Ledger | None,
                workers: int | None, sites: Sites, started: Started
                ) -> tuple[dict[str, Secrets], set[str]]:
    """Secrets of every blob in the object store (those a ledger knows are not scanned
    again), and the ids of every blob listed; `sites` gets the findings of those scanned."""
    if started.listing is not None:
        warm_up(repo, scanner)  # while git lists
        blobs = started.listing.blobs()
        started.begin_walk()  # it runs beside the blob scan
    else:
        started.begin_walk()
        blobs = _listable(repo, scanner, None, started.cycling)
    listed = {oid for oid, _, _ in blobs}
    if ledger is None:
        return scan_listed(repo, scanner, blobs, stats, warn, progress, exhaustive,
                           workers, sites), listed
    before = ledger.known([oid for oid, _, _ in blobs])
    fresh = [blob for blob in blobs if blob[0] not in before]
    found = scan_listed(repo, scanner, fresh, stats, warn, progress, exhaustive, workers,
                        sites)
    ledger.scanned([oid for oid, _, _ in fresh], found)
    found.update((oid, secrets) for oid, secrets in before.items() if secrets)
    return found, listed


def scan_revisions(
    repo: git.GitRepo, revs: Sequence[str], engine: Engine | Scanner, stats: Stats, warn: Warn,
    progress: Progress | None = None, exhaustive: bool = False,
) -> list[Finding]:
    """What the commits `git rev-list REVS` lists introduce (`"B"`, `"^A"`, `"A..B"`)."""
    scanner = _scanner(engine)
    check_store(repo)
    resolved = resolve_revisions(repo, revs)
    if not resolved:
        return []
    with tempfile.TemporaryFile() as spool:
        git.check_exit(_start_walk(repo, [], resolved, spool), "log")
        spool.seek(0)
        blobs: dict[str, None] = {}  # ordered set: walk order reads packs nearly in order
        for _, diffs in read_walk(spool, lambda old, new: not git.is_zero(new)):
            blobs.update((c.new_blob, None) for diff in diffs for c in diff if c.new_blob)
        if git.promisor_remote(repo) is not None:  # ask git only for what it has: listing
            present = {oid for oid, _, _ in git.list_blobs(repo)}  # one it lacks fetches it
            absent = [oid for oid in blobs if oid not in present]
            if absent:
                _fetch_missing(repo, absent, scanner, warn)
        listed = _listable(repo, scanner, [oid for oid in blobs
                                           if oid not in scanner.tally.missing])
        found = scan_listed(repo, scanner, listed, stats, warn, progress, exhaustive)
        spool.seek(0)

        def old_secrets(oids: list[str]) -> dict[str, Secrets]:  # versions before the range
            quiet = scanner.quiet_copy()  # what cannot be read holds nothing known
            return {oid: secrets_in(quiet, data, oid) for oid, data in
                    git.iter_contents(repo, oids, unreadable=quiet.tally.unreadable)}

        known = _Known(found, old_secrets)
        findings = _attribute(repo, scanner, spool, known, stats, warn,
                              {oid for oid, _, _ in listed},
                              lambda missing: _scan_missing(repo, scanner, missing, stats,
                                                            warn, exhaustive))
        return with_refs(repo, findings)


def _listable(repo: git.GitRepo, scanner: Scanner, oids: list[str] | None,
              cycling: set[str] | None = None) -> list[tuple[str, int, str]]:
    """`git.list_blobs(repo, oids)`, except objects in a delta cycle (git would loop on
    them forever, listing them included): those are unreadable, and git is given the
    ids of everything else instead of listing all objects itself. (`cycling`: those
    objects, when the caller found them already.)"""
    if cycling is None:
        cycling = delta_cycles(pack_files(repo), HASH_SIZES.get(repo.object_format, 20))
    if not cycling:
        return git.list_blobs(repo, oids)
    for oid in sorted(cycling):
        scanner.tally.unreadable(oid, "a delta of itself (a delta cycle): git cannot read it")
    if oids is None:
        oids = [oid for oid in all_objects(repo) if oid not in cycling]
    return git.list_blobs(repo, [oid for oid in oids if oid not in cycling])


def _scanner(engine: Engine | Scanner) -> Scanner:
    return engine if isinstance(engine, Scanner) else Scanner(engine)


def _scan_missing(repo: git.GitRepo, scanner: Scanner, missing: list[str], stats: Stats,
                  warn: Warn, exhaustive: bool) -> dict[str, Secrets]:
    """Blobs the walk names that the object store did not list: a partial clone's are
    fetched from its promisor remote (one batch, as git does); the rest are unreadable
    (missing, or stored as another type: git says which)."""
    todo = [oid for oid in missing if oid not in scanner.tally.missing]
    if todo and git.promisor_remote(repo) is not None:
        todo = _fetch_missing(repo, todo, scanner, warn)
    if not todo:
        return {}
    kinds = git.object_types(repo, todo)
    readable = [oid for oid in todo if kinds.get(oid) == "blob"]
    for oid in todo:
        kind = kinds.get(oid, "missing")
        if kind != "blob":
            scanner.tally.unreadable(oid, "missing from the object store" if kind == "missing"
                                     else f"stored as a {kind}, not a blob")
    if not readable:
        return {}
    return scan_listed(repo, scanner, git.list_blobs(repo, readable), stats, warn, None,
                       exhaustive)


def _fetch_missing(repo: git.GitRepo, oids: list[str], scanner: Scanner,
                   warn: Warn) -> list[str]:
    """Fetch `oids` from the promisor remote in one batch; those it could not give are
    counted unreadable. The ids it gave."""
    remote = git.promisor_remote(repo)
    assert remote is not None
    reason = git.fetch_objects(repo, remote, oids)
    if reason is not None:
        for oid in oids:
            scanner.tally.unreadable(oid, f"missing in this partial clone, and its promisor "
                                     f"remote '{remote}' could not send it ({reason})")
        return []
    return oids


def parse_range(text: str) -> list[str]:
    """`--range` text -> rev-list arguments: `A..B`, `A...B`, `B ^A`, a single revision."""
    revs = text.split()
    if not revs:
        raise KeyscanError(f"bad revision range '{text}': it is empty")
    for rev in revs:
        for part in _parts(rev):
            if part.startswith("-"):
                raise KeyscanError(
                    f"bad revision range '{text}': '{part}' looks like an option; "
                    "give revisions such as main..feature"
                )
    return revs


def _parts(rev: str) -> list[str]:
    """The revision names in `^A`, `A..B`, `A...B`, `A^!`: each is checked on its own."""
    body = rev[1:] if rev.startswith("^") else rev
    body = body[:-2] if body.endswith(("^!", "^@")) else body
    for op in ("...", ".."):
        if op in body:
            return body.split(op, 1)
    return [body]


def resolve_revisions(repo: git.GitRepo, revs: Sequence[str]) -> list[str]:
    """Each revision's commit ids, keeping `^`, `..`, `...`: only ids ever reach git."""
    out: list[str] = []
    for rev in revs:
        if _OID.match(rev):
            out.append(rev)
            continue
        if rev.startswith("-") or "\n" in rev:
            raise KeyscanError(f"bad revision '{rev}': it looks like an option")
        neg, body = ("^", rev[1:]) if rev.startswith("^") else ("", rev)
        suffix = body[-2:] if body.endswith(("^!", "^@")) else ""
        body = body[: len(body) - len(suffix)]
        for op in ("...", ".."):
            if op in body:
                left, _, right = body.partition(op)
                out.append(_resolve(repo, left or "HEAD") + op + _resolve(repo, right or "HEAD"))
                break
        else:
            out.append(neg + _resolve(repo, body) + suffix)
    return out


def _resolve(repo: git.GitRepo, name: str) -> str:
    oid = git.rev_parse(repo, f"{name}^{{commit}}") if not name.startswith("-") else None
    if oid is None:
        raise KeyscanError(f"unknown revision '{name}': check the name (git branch -a, git tag)")
    return oid


def _start_walk(
    repo: git.GitRepo, args: list[str], revs: Iterable[str], spool: IO[bytes]
) -> subprocess.Popen[bytes]:
    walk = git.popen(repo, *WALK_ARGS, *args, stdin=subprocess.PIPE, stdout=spool)
    assert walk.stdin
    walk.stdin.write(b"".join(rev.encode("ascii") + b"\n" for rev in revs))
    walk.stdin.close()
    return walk


class _Known:
    """Secrets per blob: scanned up front, else (ranges: old versions) read when asked,
    those the attribution will ask for in one stream first (`prefetch`)."""

    def __init__(self, found: dict[str, Secrets],
                 read: Callable[[list[str]], dict[str, Secrets]] | None) -> None:
        self.found = found
        self._read = read  # ids -> the secrets of those that could be read
        self._empty: set[str] = set()

    def __call__(self, oid: str) -> Secrets:
        self.prefetch([oid])
        return self.found.get(oid, frozenset())

    def prefetch(self, oids: Iterable[str]) -> None:
        if self._read is None:
            return
        todo = list(dict.fromkeys(oid for oid in oids
                                  if oid not in self.found and oid not in self._empty))
        if todo:
            secrets = self._read(todo)
            self.found.update((oid, found) for oid, found in secrets.items() if found)
            self._empty.update(oid for oid in todo if not secrets.get(oid))


def _attribute(repo: git.GitRepo, scanner: Scanner, spool: IO[bytes], known: _Known,
               stats: Stats, warn: Warn, listed: set[str],
               scan_missing: Callable[[list[str]], dict[str, Secrets]],
               sites: Sites | None = None, graph: bytearray | None = None,
               meanwhile: Callable[[set[str]], None] | None = None) -> list[Finding]:
    """The findings the commits of the walk in `spool` introduce. `meanwhile`, if given,
    is called with the ids of every commit that may introduce one, while git looks for
    the renames (the refs that reach them are looked up then)."""
    named: set[str] = set()  # every blob a commit holds: those not listed are unreadable
    suspects = set(known.found)

    def keep(old: str, new: str) -> bool:
        named.add(new)
        return new in suspects or old in suspects

    touching = _touching(spool, keep, stats, graph)
    missing = sorted(oid for oid in named - listed if not git.is_zero(oid))
    if missing:
        more = scan_missing(missing)
        if more:  # now suspects too: walk again
            known.found.update(more)
            suspects.update(more)
            stats.commits = 0
            spool.seek(0)
            touching = _touching(spool, lambda old, new: new in suspects or old in suspects,
                                 stats)
    if scanner.tally.missing:
        spool.seek(0)
        report_unreadable(scanner.tally.missing, _paths_of(spool, scanner.tally.missing),
                          stats, warn)
    # `keyscan:allow` is counted in the blobs a commit holds (each once), not in blobs
    # no commit reaches (a `git add` never committed, a rewritten history's leftovers).
    allowed = scanner.tally.allowed
    scanner.tally.allowed = {oid: n for oid, n in allowed.items() if oid.split("!")[0] in named}
    scanner.tally.settle(stats, warn)
    # Which renames matter depends only on the blobs' secrets, never on other renames'
    # answers: a dry run lists them, and one git process answers them all at once,
    # instead of one process per rename in the walk.
    # the versions the introductions compare with, in one stream (ranges: old versions)
    known.prefetch(blob for _, _, diffs in touching for diff in diffs for change in diff
                   for blob in (change.old_blob, change.new_blob) if blob)
    wanted: set[tuple[str, str]] = set()
    dry = Introductions(known, lambda parent, commit, _: wanted.add((parent, commit)))
    for header, order, diffs in touching:
        dry.add(header, order, diffs)
    answer = _renames(repo, sorted(wanted), warn)
    if meanwhile is not None and touching:  # while git looks for the renames
        meanwhile({header.sha for header, _, _ in touching})
    renames = answer()
    intros = Introductions(known, lambda parent, commit, path: renames[parent, commit].get(path))
    for header, order, diffs in touching:
        intros.add(header, order, diffs)
    return _findings(repo, scanner, intros.first, sites or {}, stats, warn)


def _touching(spool: IO[bytes], keep: Callable[[str, str], bool], stats: Stats,
              graph: bytearray | None = None) -> list[tuple[Header, int, list[list[Change]]]]:
    """The commits that change a suspect blob: per-finding bookkeeping (and, into
    `graph`, every commit's parents: see `read_walk`)."""
    touching = []
    for order, (header, diffs) in enumerate(read_walk(spool, keep, graph)):
        stats.commits += 1
        if header is not None:  # it changes a suspect blob
            touching.append((header, order, diffs))
    return touching


def _paths_of(spool: IO[bytes], oids: dict[str, str]) -> dict[str, str]:
    """A path that holds each of `oids` in some commit (for the warnings)."""
    paths: dict[str, str] = {}
    for _, diffs in read_walk(spool, lambda old, new: new in oids):
        for diff in diffs:
            for change in diff:
                if change.new_blob:
                    paths.setdefault(change.new_blob, change.path)
    return paths


def _renames(repo: git.GitRepo, pairs: list[tuple[str, str]], warn: Warn
             ) -> Callable[[], dict[tuple[str, str], dict[str, str]]]:
    """(parent, commit) -> new path -> source blob, for the renames between them, all
    from one git process (`--always`: one answer per line, in order, even if empty),
    begun now: the answer waits for it. If git cannot tell (a blob it needs is
    unreadable), no renames: a renamed key is then reported at the rename, never lost."""
    if not pairs:
        return dict
    lines = b"".join(f"{commit} {parent}\n".encode("ascii") for parent, commit in pairs)
    out = tempfile.TemporaryFile()  # noqa: SIM115  (closed by `answer`): git never waits on us
    try:
        proc = git.popen(repo, "diff-tree", "--stdin", "--always", "-r", "-z", "-M",
                         "--no-abbrev", stdin=subprocess.PIPE, stdout=out)
        assert proc.stdin is not None
        try:
            proc.stdin.write(lines)
            proc.stdin.close()
        except BrokenPipeError:  # it failed at once: its status says why
            pass
    except BaseException:
        out.close()
        raise

    def answer() -> dict[tuple[str, str], dict[str, str]]:
        with out:
            try:
                git.check_exit(proc, "diff-tree")
            except KeyscanError as error:
                warn(f"renames not followed: {error}")
                return {pair: {} for pair in pairs}
            out.seek(0)
            return dict(zip(pairs, parse_renames(out.read()), strict=True))

    return answer


def _findings(repo: git.GitRepo, scanner: Scanner,
              first: dict[tuple[str, str, str], Introduction], sites: Sites, stats: Stats,
              warn: Warn) -> list[Finding]:
    """Each introduction's finding, with line and column in the introducing version: as
    the blob scan found it (`sites`), else (a blob an inventory knew, an old version read
    for a range) that version scanned again. A blob git cannot give again (its pack cut
    short since, say) is unreadable: named in a warning and counted."""
    wanted: dict[tuple[str, str, str], set[tuple[str, str]]] = {}  # (rule id, sha256)s
    intro_of: dict[tuple[str, str, str], Introduction] = {}
    for (rule_id, secret, path), intro in first.items():
        group = (intro.blob, path, intro.header.sha)
        wanted.setdefault(group, set()).add((rule_id, secret))
        intro_of[group] = intro
    groups_of: dict[str, list[tuple[str, str, str]]] = {}
    for group in wanted:
        groups_of.setdefault(group[0], []).append(group)
    findings: list[Finding] = []

    def add(blob: str, hits: list[Finding]) -> None:
        for group in groups_of[blob]:
            header = intro_of[group].header
            commit = Commit(header.sha, header.author_name, header.author_email, header.date)
            keys = wanted[group]
            seen: set[tuple[str, str]] = set()
            for hit in sorted(hits, key=lambda f: (f.line, f.column)):
                key = (hit.rule_id, hit.secret_sha256)  # secrets are known by their hash
                if key in keys - seen:
                    seen.add(key)
                    # the scan's path is the blob's id (or `id!member`): the real one
                    findings.append(hit.replace(path=group[1] + hit.path[len(blob):],
                                                commit=commit))

    unread = [blob for blob in groups_of if blob not in sites]
    for blob in groups_of:
        if blob in sites:
            add(blob, sites[blob])
    if not unread:
        return findings
    rescan = scanner.quiet_copy()  # counted once already, in the blob scan
    lost: dict[str, str] = {}

    def unreadable(oid: str, reason: str) -> None:
        if oid not in scanner.tally.missing:  # else counted (and warned about) already
            lost.setdefault(oid, f"{reason}, when read again for its findings' lines")

    # one stream, not a request each
    for blob, data in git.iter_contents(repo, unread, unreadable=unreadable):
        if isinstance(data, git.BigBlob):
            add(blob, rescan.emit_stream(blob, data.chunks(unreadable=unreadable)))
        else:
            add(blob, rescan.emit(Fragment(data=data, path=blob)).findings)
    report_unreadable(lost, {blob: groups_of[blob][0][1] for blob in lost}, stats, warn)
    return findings
