"""`keyscan pre-commit [FILE ...]`: the pre-commit framework's `keyscan` hook."""

from __future__ import annotations

from typing import Any

import click

from keyscan.cli import options_from, scan_options, verbose_option
from keyscan.errors import ExitCode


@click.command("pre-commit")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@scan_options
@verbose_option
def command(files: tuple[str, ...], **kwargs: Any) -> ExitCode:
    """The pre-commit framework's hook: the files it passes, checked as it ran.

    On a commit, what the staged change introduces in FILES (as 'keyscan
    staged'); under 'pre-commit run --all-files' or '--files', the whole
    staged content of every FILE; with '--from-ref A --to-ref B', what the
    commits A..B introduce. No FILES: the whole staged change. Prints nothing
    when nothing is found (-v prints the summary).
    """
    from keyscan.launch import run_precommit  # the same code the click-free hook path runs

    return run_precommit(list(files), options_from(kwargs))
