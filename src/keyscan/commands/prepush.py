"""`keyscan pre-push [REMOTE [URL]]`: the commits a `git push` sends (a pre-push hook)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from keyscan.cli import options_from, scan_options, verbose_option
from keyscan.errors import ExitCode


@click.command("pre-push")
@click.argument("remote", required=False)
@click.argument("url", required=False)
@scan_options
@verbose_option
def command(remote: str | None, url: str | None, **kwargs: Any) -> ExitCode:
    """Scan the commits being pushed (git's pre-push hook input on stdin).

    Under pre-commit, PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF say what is pushed.
    Prints nothing when nothing is found (-v prints the summary).
    """
    from keyscan.model import Finding, Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources.git import open_repo
    from keyscan.sources.history import scan_revisions
    from keyscan.sources.pushed import pushed_revisions, read_updates, remote_name

    options = options_from(kwargs)
    repo = open_repo(None)
    setup = prepare(options, repo.work_tree, mode="pre-push")
    stats = Stats()
    updates = read_updates(sys.stdin, os.environ)
    revs = pushed_revisions(repo, updates, remote_name(remote))
    findings: list[Finding] = []
    if revs:
        findings = scan_revisions(repo, revs, setup.scanner(), stats, warn)
    return finish(findings, setup, stats)
