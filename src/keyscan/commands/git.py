"""`keyscan git [REPO] [--range REVS]`: the history of a repository (or of a URL, cloned)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from keyscan.cli import options_from, scan_options
from keyscan.errors import ExitCode

if TYPE_CHECKING:
    from keyscan.model import Stats
    from keyscan.sources.git import GitRepo


@click.command("git")
@click.argument("repo", required=False)
@click.option(
    "--range",
    "range_",
    metavar="REVS",
    help="Only what these commits introduce: what 'git rev-list' takes (A..B, 'B ^A', REV).",
)
@click.option(
    "--exhaustive",
    is_flag=True,
    help="Read every blob whole: no shortcut for a delta of a blob without a key (slower; "
    "finds the same, as the tests check).",
)
@scan_options
def command(repo: str | None, range_: str | None, exhaustive: bool, **kwargs: Any) -> ExitCode:
    """Scan git history: every commit of every ref (branches, tags, stash, notes).

    REPO is a path inside a repository (default: .) or a URL to clone.
    """
    from keyscan.sources import early, git
    from keyscan.sources.history import Started, parse_range, scan_all, scan_revisions

    options = options_from(kwargs)
    revs = parse_range(range_) if range_ is not None else None
    begun = early.take(repo) if revs is None else None  # begun before click loaded
    remote = repo is not None and git.is_url(repo) and not Path(repo).exists()
    local = begun[0] if begun else None if remote else git.open_repo(repo)
    # A local history's git processes start first: they work while the rules load.
    with (begun[1] if begun else Started(local) if local is not None and revs is None
          else nullcontext()) as started:
        from keyscan.model import Stats
        from keyscan.pipeline import finish, prepare, warn
        from keyscan.progress import Progress

        # Everything the user can get wrong fails now, before a clone that may take minutes.
        setup = prepare(options, local.work_tree if local else None, mode="git")
        stats = Stats()
        # "files", as the summary says: each distinct file version (blob) is read once
        with Progress("keyscan git") as display:
            def progress(now: Stats) -> None:
                display.update(now.files, now.scanned_bytes)

            with _cloned(repo) if repo and remote else nullcontext(local) as target:
                assert target is not None
                scanner = setup.scanner()
                if revs is None:
                    findings = scan_all(target, scanner, stats, warn, progress, exhaustive,
                                        started=started)
                else:
                    findings = scan_revisions(target, revs, scanner, stats, warn, progress,
                                              exhaustive)
    return finish(findings, setup, stats)


@contextmanager
def _cloned(url: str) -> Iterator[GitRepo]:
    """`url` cloned bare into a temporary folder, removed after."""
    from keyscan.sources import git

    scratch = Path(tempfile.mkdtemp(prefix="keyscan-clone-"))
    try:
        yield git.clone_mirror(url, scratch / "repo.git", progress=sys.stderr.isatty())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
