"""The index against HEAD: what `git commit` would record now.

Blobs come from the object store (the index), never from the working tree, so
`git add -p` decides what is checked. A finding is reported only when the
staged change introduces it: the secret is in the path's new blob and not in
its old one (for a rename, the old path's blob). During a merge, the old blobs
are every parent's version, as in `git diff --cc`: a key the other branch
already committed is that branch's finding, not the merge's.

The hot path (a hook with no findings) costs three git processes: rev-parse,
diff-index, and one cat-file for the changed blobs. Old blobs are read only for
paths whose new blob has a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from keyscan.errors import KeyscanError
from keyscan.model import Fragment, Stats, Value
from keyscan.sources import git
from keyscan.sources.driver import report_unreadable

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Final

    from keyscan.model import Finding
    from keyscan.sources.driver import Scanner


class Change(Value):
    """One `diff-index --raw` record: the index's blob at `path` against the base tree."""

    __slots__ = ("new_blob", "new_mode", "old_blob", "old_path", "path", "status")

    def __init__(
        self,
        status: str,
        path: str,
        old_path: str | None,
        old_blob: str | None,
        new_blob: str | None,
        new_mode: str,
    ) -> None:
        self.status: Final = status  # A, M, R, C, D, T, U (first letter of git's status)
        self.path: Final = path  # the new path, as git prints it (repo-relative, '/'-separated)
        self.old_path: Final = old_path  # the rename/copy source, else the path; None if added
        self.old_blob: Final = old_blob  # None when the path is new in the index
        self.new_blob: Final = new_blob  # None when deleted or unmerged
        self.new_mode: Final = new_mode


class Staged(Value):
    """What is staged in a work tree, and which versions it replaces."""

    __slots__ = ("changes", "merge_parents", "top")

    def __init__(
        self,
        top: Path,
        changes: tuple[Change, ...],
        merge_parents: tuple[dict[str, str | None], ...] = (),
    ) -> None:
        self.top: Final = top
        self.changes: Final = changes
        # During a merge: for each MERGE_HEAD, path -> that parent's blob (None: absent
        # there). A path missing from a map is identical in that parent and the index.
        self.merge_parents: Final = merge_parents


def parse_raw(out: bytes) -> list[Change]:
    """Parse `git diff-index --raw -z` output (records: meta NUL path NUL [path NUL])."""
    fields = out.split(b"\0")
    changes: list[Change] = []
    i = 0
    while i < len(fields) and fields[i]:
        old_mode, new_mode, old_id, new_id, status = fields[i][1:].decode("ascii").split(" ")
        letter = status[0]
        paths = [f.decode("utf-8", "surrogateescape") for f in fields[i + 1 : i + 3]]
        two = letter in "RC"
        i += 3 if two else 2
        added = old_mode == "000000" and letter != "U"
        changes.append(
            Change(
                status=letter,
                path=paths[1] if two else paths[0],
                old_path=None if added else paths[0],
                old_blob=None if added or set(old_id) == {"0"} else old_id,
                new_blob=None if set(new_id) == {"0"} or letter in "DU" else new_id,
                new_mode=new_mode,
            )
        )
    return changes


def open_work_tree(path: str | None) -> tuple[git.GitRepo, Path]:
    """The repository around `path` and its top-level folder; a bare one has no index."""
    repo = git.open_repo(path)
    if repo.work_tree is None:
        raise KeyscanError(
            f"{path or '.'} is not in a work tree (a bare repository or inside .git): "
            "run 'keyscan staged' in the checkout whose index to check"
        )
    return repo, repo.work_tree


def read_staged(repo: git.GitRepo) -> Staged:
    """The staged changes of `repo` against HEAD (the empty tree before the first commit)."""
    assert repo.work_tree is not None, "open it with open_work_tree"
    try:
        raw = git.diff_cached(repo, "HEAD")
    except KeyscanError:
        if git.rev_parse(repo, "HEAD") is not None:
            raise  # HEAD exists, so git failed for another reason: say it
        raw = git.diff_cached(repo, git.EMPTY_TREES[repo.object_format])  # the first commit
    parents = tuple(
        {change.path: change.old_blob for change in parse_raw(git.diff_cached(repo, parent))}
        for parent in git.merge_heads(repo)
    )
    return Staged(top=repo.work_tree, changes=tuple(parse_raw(raw)), merge_parents=parents)


def staged_findings(
    repo: git.GitRepo,
    scanner: Scanner,
    stats: Stats,
    warn: Callable[[str], None],
    staged: Staged | None = None,
    only: Collection[str] | None = None,
) -> Iterator[Finding]:
    """Findings the staged change introduces; paths repo-relative, commit None.

    `only`: the paths to check (the pre-commit framework's list), else every one.
    """
    staged = read_staged(repo) if staged is None else staged
    wanted: dict[str, list[Change]] = {}  # new blob id -> the paths that hold it
    for change in staged.changes:
        if only is not None and change.path not in only:
            continue
        if change.status == "U":
            # `git commit` refuses while a path is unmerged, so the hook never gets
            # here; for a manual run, say so rather than scan one side of a conflict.
            scanner.tally.skip(
                f"{change.path}: unmerged, not checked (resolve it and 'git add' it first)")
        elif change.new_blob is None or change.new_mode == git.GITLINK_MODE:
            continue  # deleted, or a submodule: nothing of it is committed here
        elif all(change.path in parent for parent in staged.merge_parents):
            wanted.setdefault(change.new_blob, []).append(change)
    suspects: list[tuple[Change, list[Finding]]] = []
    # Streamed one blob at a time: a first commit of a big tree stays within memory.
    for blob, data in _blobs(repo, list(wanted), scanner):
        for change in wanted[blob]:
            found = _scan(scanner, data, change.path)
            if found:
                suspects.append((change, found))
    scanner.tally.settle(stats, warn)
    report_unreadable(scanner.tally.missing, {oid: wanted[oid][0].path for oid in wanted},
                      stats, warn)
    if suspects:
        yield from _introduced(repo, staged, suspects, scanner)


def _blobs(repo: git.GitRepo, oids: list[str], scanner: Scanner
           ) -> Iterator[tuple[str, bytes | git.BigBlob]]:
    """(id, contents) of each blob; a blob too big to hold comes as a `git.BigBlob`,
    read in pieces when scanned. A blob git cannot read is counted as unreadable."""
    return git.iter_contents(repo, oids, unreadable=scanner.tally.unreadable)


def _scan(scanner: Scanner, data: bytes | git.BigBlob, path: str) -> list[Finding]:
    if isinstance(data, git.BigBlob):  # git may fail in it: what came is still scanned
        return scanner.emit_stream(path, data.chunks(unreadable=scanner.tally.unreadable))
    return scanner.emit(Fragment(data=data, path=path)).findings


def _introduced(
    repo: git.GitRepo,
    staged: Staged,
    suspects: list[tuple[Change, list[Finding]]],
    scanner: Scanner,
) -> Iterator[Finding]:
    """Drop the findings whose secret the old version (every parent's, in a merge) had."""
    from keyscan.sources.driver import Scanner, Tally

    olds: dict[Change, set[str]] = {}
    old_paths: dict[str, str] = {}  # blob -> a path it had, for the engine's path-aware checks
    for change, _ in suspects:
        versions = [change.old_blob, *(p.get(change.path) for p in staged.merge_parents)]
        olds[change] = {blob for blob in versions if blob}
        for blob in olds[change]:
            old_paths.setdefault(blob, change.old_path or change.path)
    known: dict[str, set[str]] = {blob: set() for blob in old_paths}
    # Old versions are not what this scan reports on: their counts are not kept.
    quiet = Scanner(scanner.engine, scanner.expand, Tally())
    for blob, data in _blobs(repo, sorted(old_paths), quiet):
        known[blob] = {f.secret for f in _scan(quiet, data, old_paths[blob])}
    for change, found in suspects:
        before = set[str]().union(*(known[blob] for blob in olds[change]))
        yield from (f for f in found if f.secret not in before)
