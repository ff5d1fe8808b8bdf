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
    Introduction,
    Introductions,
    Secrets,
    parse_renames,
    read_walk,
)
from keyscan.sources.blobscan import Progress, scan_listed, secrets_in
from keyscan.sources.refs import with_refs

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


def scan_all(repo: git.GitRepo, engine: Engine, stats: Stats, warn: Warn,
             progress: Progress | None = None, *, ledger: Ledger | None = None,
             workers: int | None = None) -> list[Finding]:
    """Every commit reachable from any ref, plus every stash entry in the stash reflog.

    `progress(stats)` is called as blobs are scanned (e.g. a progress line on a TTY).
    With a `ledger`, blobs it knows are not scanned again, and it hears of those that
    were. `workers`: processes for the blob scan (default: one per core).
    """
    stash = git.reflog(repo, "refs/stash")
    with tempfile.TemporaryFile() as spool:
        walk = _start_walk(repo, ["--all"], stash, spool)  # runs beside the blob scan
        try:
            found = _scan_store(repo, engine, stats, progress, ledger, workers)
        except BaseException:
            walk.kill()
            walk.wait()
            raise
        git.check_exit(walk, "log")
        spool.seek(0)
        return with_refs(repo, _attribute(repo, engine, spool, _Known(found, None), stats))


def _scan_store(repo: git.GitRepo, engine: Engine, stats: Stats, progress: Progress | None,
                ledger: Ledger | None, workers: int | None) -> dict[str, Secrets]:
    blobs = git.list_blobs(repo)
    if ledger is None:
        return scan_listed(repo, engine, blobs, stats, progress, workers)
    before = ledger.known([oid for oid, _, _ in blobs])
    fresh = [blob for blob in blobs if blob[0] not in before]
    found = scan_listed(repo, engine, fresh, stats, progress, workers)
    ledger.scanned([oid for oid, _, _ in fresh], found)
    found.update((oid, secrets) for oid, secrets in before.items() if secrets)
    return found


def scan_revisions(
    repo: git.GitRepo, revs: Sequence[str], engine: Engine, stats: Stats, warn: Warn,
    progress: Progress | None = None,
) -> list[Finding]:
    """What the commits `git rev-list REVS` lists introduce (`"B"`, `"^A"`, `"A..B"`)."""
    resolved = resolve_revisions(repo, revs)
    if not resolved:
        return []
    with tempfile.TemporaryFile() as spool:
        git.check_exit(_start_walk(repo, [], resolved, spool), "log")
        spool.seek(0)
        blobs: dict[str, None] = {}  # ordered set: walk order reads packs nearly in order
        for _, diffs in read_walk(spool, lambda old, new: not git.is_zero(new)):
            blobs.update((c.new_blob, None) for diff in diffs for c in diff if c.new_blob)
        found = scan_listed(repo, engine, git.list_blobs(repo, blobs), stats, progress)
        spool.seek(0)
        with git.BlobReader(repo) as reader:
            known = _Known(found, lambda oid: secrets_in(engine, reader.read(oid) or b""))
            findings = _attribute(repo, engine, spool, known, stats)
        return with_refs(repo, findings)


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
    """Secrets per blob: scanned up front, else (ranges: old versions) read on demand."""

    def __init__(self, found: dict[str, Secrets], read: Callable[[str], Secrets] | None) -> None:
        self.found = found
        self._read = read
        self._empty: set[str] = set()

    def __call__(self, oid: str) -> Secrets:
        if oid in self.found or self._read is None or oid in self._empty:
            return self.found.get(oid, frozenset())
        secrets = self._read(oid)
        if secrets:
            self.found[oid] = secrets
        else:
            self._empty.add(oid)
        return secrets


def _attribute(repo: git.GitRepo, engine: Engine, spool: IO[bytes], known: _Known,
               stats: Stats) -> list[Finding]:
    suspects = set(known.found)

    def keep(old: str, new: str) -> bool:
        return new in suspects or old in suspects

    touching = []  # the commits that change a suspect blob: per-finding bookkeeping
    for order, (header, diffs) in enumerate(read_walk(spool, keep)):
        stats.commits += 1
        if header is not None:  # it changes a suspect blob
            touching.append((header, order, diffs))
    # Which renames matter depends only on the blobs' secrets, never on other renames'
    # answers: a dry run lists them, and one git process answers them all at once,
    # instead of one process per rename in the walk.
    wanted: set[tuple[str, str]] = set()
    dry = Introductions(known, lambda parent, commit, _: wanted.add((parent, commit)))
    for header, order, diffs in touching:
        dry.add(header, order, diffs)
    renames = _renames(repo, sorted(wanted))
    intros = Introductions(known, lambda parent, commit, path: renames[parent, commit].get(path))
    for header, order, diffs in touching:
        intros.add(header, order, diffs)
    return _findings(repo, engine, intros.first)


def _renames(repo: git.GitRepo, pairs: list[tuple[str, str]]
             ) -> dict[tuple[str, str], dict[str, str]]:
    """(parent, commit) -> new path -> source blob, for the renames between them, all
    from one git process (`--always`: one answer per line, in order, even if empty)."""
    if not pairs:
        return {}
    lines = b"".join(f"{commit} {parent}\n".encode("ascii") for parent, commit in pairs)
    out = git.run(repo, "diff-tree", "--stdin", "--always", "-r", "-z", "-M", "--no-abbrev",
                  input=lines)
    return dict(zip(pairs, parse_renames(out), strict=True))


def _findings(repo: git.GitRepo, engine: Engine, first: dict[tuple[str, str, str], Introduction]
              ) -> list[Finding]:
    """Rescan each introducing version (with its real path) for line and column."""
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
    for blob, data in git.iter_blobs(repo, groups_of):  # one stream, not a request each
        for group in groups_of[blob]:
            header = intro_of[group].header
            commit = Commit(header.sha, header.author_name, header.author_email, header.date)
            keys = wanted[group]
            seen: set[tuple[str, str]] = set()
            hits = sorted(engine.scan(Fragment(data=data, path=group[1], commit=commit)),
                          key=lambda f: (f.line, f.column))
            for hit in hits:
                key = (hit.rule_id, hit.secret_sha256)  # secrets are known by their hash
                if key in keys - seen:
                    seen.add(key)
                    findings.append(hit.replace(path=group[1], commit=commit))
    return findings
