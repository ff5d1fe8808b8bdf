"""The console-script entry: `keyscan staged`, exactly as the pre-commit hook runs it, skips click.

A hook runs on every commit. Importing click costs ~20 ms, a fifth of the whole
run, to parse an argv that the hook always gives in the same form. So when the
arguments are exactly `staged`, this module runs the same function the click
command runs, with the same defaults, and maps errors the way `cli.main` does;
anything else goes to the click CLI unchanged.

`run_staged` is the one implementation of `keyscan staged`; the click command in
`keyscan.commands.staged` calls it too. Nothing here may import click.
"""

from __future__ import annotations

import sys

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from keyscan.errors import ExitCode
    from keyscan.pipeline import ScanOptions

FAST = (["staged"],)  # argv (after the program name) that skips click


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in FAST:
        sys.exit(_staged_without_click())
    from keyscan.cli import main as cli_main

    cli_main(argv)


def run_staged(repo: str | None, options: ScanOptions) -> ExitCode:
    """`keyscan staged [REPO]`: what the staged change introduces, reported; the exit code."""
    from keyscan.model import Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources.staged import open_work_tree, staged_findings

    git_repo, top = open_work_tree(repo)
    setup = prepare(options, top, mode="staged")
    stats = Stats()
    return finish(staged_findings(git_repo, setup.scanner(), stats, warn=warn), setup, stats)


def _staged_without_click() -> int:
    from keyscan.errors import ExitCode, KeyscanError, report_error
    from keyscan.pipeline import ScanOptions

    # The same mapping as cli.main: one stderr line and exit 2 for what the user can fix.
    try:
        return int(run_staged(None, ScanOptions()))  # click's defaults for every option
    except KeyscanError as error:
        return int(report_error(str(error)))
    except KeyboardInterrupt:
        return int(report_error("interrupted"))
    except BrokenPipeError:
        return int(ExitCode.ERROR)
