"""`keyscan git [REPO] [--range REVS]`: the history of a repository (or of a URL, cloned)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
@scan_options
def command(repo: str | None, range_: str | None, **kwargs: Any) -> ExitCode:
    """Scan git history: every commit of every ref (branches, tags, stash, notes).

    REPO is a path inside a repository (default: .) or a URL to clone.
    """
    from keyscan.model import Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources.history import parse_range, scan_all, scan_revisions

    options = options_from(kwargs)
    revs = parse_range(range_) if range_ is not None else None  # fail before cloning
    stats = Stats()
    progress = _Progress() if sys.stderr.isatty() else None
    with _opened(repo) as target:
        setup = prepare(options, target.work_tree, mode="git")
        if revs is None:
            findings = scan_all(target, setup.engine, stats, warn, progress)
        else:
            findings = scan_revisions(target, revs, setup.engine, stats, warn, progress)
    if progress:
        progress.done()
    return finish(findings, setup, stats)


class _Progress:
    """One self-rewriting stderr line on a terminal: blobs, bytes, rate."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()

    def __call__(self, stats: Stats) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2:
            self.last = now
            mib = stats.scanned_bytes / 2**20
            rate = mib / max(now - self.start, 1e-3)
            line = f"keyscan: {stats.files} blobs, {mib:.0f} MiB scanned, {rate:.0f} MiB/s"
            print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        print("\r\033[K", end="", file=sys.stderr, flush=True)


@contextmanager
def _opened(repo: str | None) -> Iterator[GitRepo]:
    """The repository at `repo`; a URL is cloned bare into a temporary folder, removed after."""
    from keyscan.sources import git

    if repo is None or not git.is_url(repo) or Path(repo).exists():
        yield git.open_repo(repo)
        return
    scratch = Path(tempfile.mkdtemp(prefix="keyscan-clone-"))
    try:
        yield git.clone_mirror(repo, scratch / "repo.git", progress=sys.stderr.isatty())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
