"""Which commit introduced each secret, worked out from tree changes only (no text diffs).

Input: the output of `git log --raw -z --no-renames --diff-merges=separate`
(see `WALK_ARGS`): per commit a header, then one raw diff per parent, each
line `old mode, new mode, old blob, new blob, status, path`. git omits the
diff against a parent when it is empty, which is all we need to know: a path
absent from some parent's diff is unchanged from that parent.

A commit introduces secret S at path P when S is in P's new blob and in none
of the parents' versions of P (for a rename, the source path's version).
Hence a merge introduces only what a conflict resolution added; a key merged
in from a branch stays that branch commit's. Over many commits, the earliest
committer date wins, ties going to the commit listed later in `--topo-order`
(an ancestor is always listed after its descendants).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from keyscan.sources.git import GITLINK_MODE, is_zero

Secrets = frozenset[tuple[str, str]]  # (rule id, secret)
Key = tuple[str, str, str]  # (rule id, secret, path)

WALK_ARGS = (
    "log", "--stdin", "--topo-order", "--raw", "-z", "--no-abbrev", "--no-renames",
    "--diff-merges=separate", "--root", "--no-color", "--no-show-signature",
    "--format=%x01%H %P%x00%ct%x00%an%x00%ae%x00%aI",
)


@dataclass(frozen=True, slots=True)
class Header:
    sha: str
    parents: tuple[str, ...]
    ctime: int  # committer date: decides which introduction is first
    author_name: str
    author_email: str
    date: str  # author date, ISO 8601


@dataclass(frozen=True, slots=True)
class Change:
    status: str  # A, M, T, D (renames are off: a rename is a D and an A)
    path: str
    old_blob: str | None
    new_blob: str | None  # None when deleted or a submodule (gitlink)


@dataclass(frozen=True, slots=True)
class Introduction:
    header: Header
    order: int  # position in --topo-order
    path: str
    blob: str


def tokens(stream: IO[bytes], chunk: int = 1 << 20) -> Iterator[bytes]:
    """NUL-separated tokens of `stream`, read in chunks (bounded memory)."""
    rest = b""
    while block := stream.read(chunk):
        parts = (rest + block).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def read_walk(
    stream: IO[bytes], keep: Callable[[str, str], bool], graph: bytearray | None = None
) -> Iterator[tuple[Header | None, list[list[Change]]]]:
    """Per commit: its header and its per-parent diffs, holding only changes that
    `keep(old_blob, new_blob)` accepts (both ids as git prints them). The header is
    None when no change was kept: most commits of a long history, not worth decoding.
    `graph`, when given, gets each commit's `\\x01id parents\\0`, in the walk's order
    (see `refs.refs_from_walk`)."""
    toks = tokens(stream)
    raw: tuple[bytes, ...] = ()  # the current commit's header tokens, undecoded
    diffs: list[list[Change]] = []
    for tok in toks:
        tok = tok.lstrip(b"\n")
        if tok.startswith(b"\x01"):
            if not raw or raw[0] != tok:  # git repeats the header for each parent's diff
                if raw:
                    yield _header(raw, diffs), diffs
                if graph is not None:
                    graph += tok
                    graph += b"\0"
                raw = (tok, next(toks), next(toks), next(toks), next(toks))
                diffs = []
            else:
                for _ in range(4):
                    next(toks)
            diffs.append([])
        elif tok.startswith(b":"):
            path = next(toks)
            old_mode, new_mode, old, new, status = tok[1:].decode("ascii").split(" ")
            if keep(old, new):
                diffs[-1].append(
                    Change(
                        status=status[0],
                        path=path.decode("utf-8", "surrogateescape"),
                        old_blob=None if is_zero(old) or old_mode == GITLINK_MODE else old,
                        new_blob=None if is_zero(new) or new_mode == GITLINK_MODE else new,
                    )
                )
    if raw:
        yield _header(raw, diffs), diffs


def _header(raw: tuple[bytes, ...], diffs: list[list[Change]]) -> Header | None:
    if not any(diffs):
        return None
    sha, _, parents = raw[0][1:].decode("ascii").partition(" ")
    name, email, date = (field.decode("utf-8", "replace") for field in raw[2:])
    return Header(sha, tuple(parents.split()), int(raw[1]), name, email, date)


class Introductions:
    """The first introduction of every (rule, secret, path), fed commit by commit."""

    def __init__(
        self,
        secrets_of: Callable[[str], Secrets],
        rename_source: Callable[[str, str, str], str | None],
    ) -> None:
        self._secrets_of = secrets_of  # blob id -> what the engine finds in it
        self._rename_source = rename_source  # (parent, commit, path) -> source blob or None
        self.first: dict[Key, Introduction] = {}

    def add(self, header: Header, order: int, diffs: list[list[Change]]) -> None:
        shown = max(1, len(header.parents))
        by_path: dict[str, list[tuple[int, Change]]] = {}
        for index, diff in enumerate(diffs):
            for change in diff:
                if change.new_blob is not None:
                    by_path.setdefault(change.path, []).append((index, change))
        for path, changes in by_path.items():
            if len(changes) < shown:
                continue  # unchanged from some parent, which therefore has the same secrets
            found = self._secrets_of(changes[0][1].new_blob or "")
            for index, change in changes:
                found = self._minus(found, self._old_secrets(header, diffs[index], index, change))
            for rule_id, secret in found:
                self._offer((rule_id, secret, path), header, order, changes[0][1])

    def _old_secrets(
        self, header: Header, diff: list[Change], index: int, change: Change
    ) -> Secrets:
        if change.old_blob is not None:
            return self._secrets_of(change.old_blob)
        if not header.parents:
            return frozenset()  # a root commit compares against nothing
        # Added against this parent: was it renamed from a deleted path holding the
        # same secret? Only then ask git's rename detection (rare and costly).
        new = {secret for _, secret in self._secrets_of(change.new_blob or "")}
        deleted = (c.old_blob for c in diff if c.status == "D" and c.old_blob)
        if not any(new & {s for _, s in self._secrets_of(blob)} for blob in deleted):
            return frozenset()
        source = self._rename_source(header.parents[index], header.sha, change.path)
        return self._secrets_of(source) if source else frozenset()

    @staticmethod
    def _minus(found: Secrets, old: Secrets) -> Secrets:
        if not old:
            return found
        old_secrets = {secret for _, secret in old}
        return frozenset(item for item in found if item[1] not in old_secrets)

    def _offer(self, key: Key, header: Header, order: int, change: Change) -> None:
        best = self.first.get(key)
        if best is None or (header.ctime, -order) < (best.header.ctime, -best.order):
            self.first[key] = Introduction(header, order, change.path, change.new_blob or "")


def parse_renames(out: bytes) -> list[dict[str, str]]:
    """`git diff-tree --stdin --always -r -z -M --no-abbrev` output -> per input line (each
    starts with its commit's id), new path -> source blob, for the renames only."""
    fields = out.split(b"\0")
    answers: list[dict[str, str]] = []
    i = 0
    while i < len(fields) - 1:
        if not fields[i].startswith(b":"):  # the next line's commit id
            answers.append({})
            i += 1
            continue
        meta = fields[i][1:].decode("ascii").split(" ")
        if meta[4].startswith(("R", "C")):
            answers[-1][fields[i + 2].decode("utf-8", "surrogateescape")] = meta[2]
            i += 3
        else:
            i += 2
    return answers
