"""What the pre-commit framework asks the `keyscan` hook to check, and how it is read.

pre-commit runs `keyscan pre-commit FILE...` (`pass_filenames: true`) in three ways,
and tells a hook only the file names and, for a range, two variables:

- a normal `git commit` (or a bare `pre-commit run`): FILE... are the paths the
  index changes; keyscan checks what the staged change introduces in them, as
  `keyscan staged` does;
- `pre-commit run --all-files` / `--files F...` (CI, pre-commit.ci): FILE... are
  every tracked file, or those named; keyscan checks the whole staged content of
  each, and any key in it fails the hook;
- `pre-commit run --from-ref A --to-ref B`: PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF
  are set; keyscan checks what the commits `A..B` introduce.

The first two are told apart by the list itself: a commit passes only paths the
index changes (against HEAD, or against a MERGE_HEAD while a merge is being
committed), while `--all-files` passes files the index does not change. The
`diff-index` that the commit needs anyway decides it, so the commit pays nothing
more. `--files` naming only staged-changed paths is read as the commit: exactly
what `git commit` would check in them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping

from keyscan.model import Fragment
from keyscan.sources import git

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from keyscan.model import Finding, Stats
    from keyscan.sources.driver import Scanner
    from keyscan.sources.staged import Staged


def range_from_env(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(from, to) when pre-commit runs with --from-ref/--to-ref, else None."""
    from_ref = env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_ORIGIN")
    to_ref = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_SOURCE")
    return (from_ref, to_ref) if from_ref and to_ref else None


def is_the_commit(files: Iterable[str], staged: Staged) -> bool:
    """True when every file is one the index changes: what a commit passes."""
    changed = {change.path for change in staged.changes}
    for parent in staged.merge_parents:
        changed.update(parent)
    return all(path in changed for path in files)


def repo_paths(files: Iterable[str], top: Path) -> list[str]:
    """pre-commit passes paths relative to the top level (its working directory); by
    hand they are relative to the current folder. Repository-relative, '/'-separated."""
    here = os.getcwd()
    out = []
    for name in files:
        full = os.path.normpath(os.path.join(here, name))
        out.append(os.path.relpath(full, top).replace(os.sep, "/"))
    return list(dict.fromkeys(out))  # a path given twice is checked once


def files_findings(
    repo: git.GitRepo,
    top: Path,
    files: list[str],
    scanner: Scanner,
    stats: Stats,
    warn: Callable[[str], None],
) -> list[Finding]:
    """Every finding in the staged version of each file (repository-relative paths),
    through the driver (archives opened, big blobs in windows, counts kept).

    A file that the index does not hold as one blob (untracked, or unmerged) is read
    from the work tree; a submodule is a commit id and has no content.
    """
    from keyscan.sources.driver import file_chunks, report_unreadable

    entries = _index_blobs(git.run(repo, "ls-files", "--stage", "-z"))
    wanted: dict[str, list[str]] = {}  # blob -> the passed paths that hold it
    on_disk: list[str] = []
    for path in files:
        entry = entries.get(path)
        if entry is None:
            on_disk.append(path)
        elif entry[0] != git.GITLINK_MODE:
            wanted.setdefault(entry[1], []).append(path)
    found: list[Finding] = []
    for blob, data in git.iter_contents(repo, list(wanted), unreadable=scanner.tally.unreadable):
        for path in wanted[blob]:
            if isinstance(data, git.BigBlob):  # git may fail in it: what came is scanned
                found += scanner.emit_stream(path, data.chunks(unreadable=scanner.tally.unreadable))
            else:
                found += scanner.emit(Fragment(data=data, path=path)).findings
    for path in on_disk:
        full = os.path.join(top, path)
        try:
            if not stat.S_ISREG(os.lstat(full).st_mode):
                scanner.tally.skip(f"{path} is not a regular file in the index or the work "
                                   "tree; skipped")
                continue
            with open(full, "rb") as file:
                found += scanner.emit_stream(path, file_chunks(file))
        except OSError as error:
            scanner.tally.skip(f"cannot read {path}: {error.strerror or error}; skipped")
    scanner.tally.settle(stats, warn)
    report_unreadable(scanner.tally.missing, {oid: paths[0] for oid, paths in wanted.items()},
                      stats, warn)
    return found


def _index_blobs(out: bytes) -> dict[str, tuple[str, str]]:
    """`ls-files --stage -z` -> path -> (mode, blob), leaving out unmerged paths."""
    entries: dict[str, tuple[str, str] | None] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, blob, stage = meta.decode("ascii").split(" ")
        path = name.decode("utf-8", "surrogateescape")
        entries[path] = (mode, blob) if stage == "0" and path not in entries else None
    return {path: entry for path, entry in entries.items() if entry is not None}
