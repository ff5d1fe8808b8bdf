"""`keyscan staged [REPO]`: what `git commit` would record now (the pre-commit hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from keyscan.cli import options_from, scan_options, verbose_option
from keyscan.errors import ExitCode


@click.command("staged")
@click.argument("repo", required=False, type=click.Path(file_okay=False, path_type=Path))
@scan_options
@verbose_option
def command(repo: Path | None, **kwargs: Any) -> ExitCode:
    """Scan the index against HEAD: only keys the staged change introduces.

    Reads staged blobs, not the working tree, so 'git add -p' decides what is
    checked. .keyscan.yaml is read from the work tree's top level. Prints
    nothing when nothing is found (-v prints the summary).
    """
    from keyscan.launch import run_staged  # the same code the click-free hook path runs

    return run_staged(str(repo) if repo else None, options_from(kwargs))
