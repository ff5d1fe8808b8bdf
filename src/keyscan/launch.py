"""The console-script entry: the hooks' own argv skips click.

A hook runs on every commit. Importing click costs ~20 ms, a fifth of the whole
run, to parse an argv that the hook always gives in the same form. So when the
arguments are exactly `staged` (the plain git hook), or `pre-commit` followed
by file names only (the pre-commit framework's hook), this module runs the same
function the click command runs, with the same defaults, and maps errors the
way `cli.main` does; anything else goes to the click CLI unchanged.

`run_staged` and `run_precommit` are the one implementation of `keyscan staged`
and `keyscan pre-commit`; the click commands call them too. Nothing here may
import click.
"""

from __future__ import annotations

import sys

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from keyscan.errors import ExitCode
    from keyscan.pipeline import ScanOptions

FAST = (["staged"],)  # argv (after the program name) that skips click
# A scan makes many small objects that live to its end (a history's blob listing, the
# walk's changes, findings): at Python's default threshold (700 new objects) the cyclic
# collector passes over them again and again (121 times in the history benchmark's
# main process: ~80 ms, as much again in its workers). At this threshold it runs a few
# times in a big scan (worker processes inherit it), and garbage cycles are still
# collected, at most this many objects late.
GC_THRESHOLD = (100_000, 20, 20)


def run() -> None:
    """The console script's entry, and `python -m keyscan`'s: `main`, then an exit that
    skips the interpreter's teardown (`_exit`)."""
    try:
        main()
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def main(argv: list[str] | None = None) -> None:
    """The command for `argv` (default: the process's arguments); ends in SystemExit."""
    import gc  # (built in: free)

    gc.set_threshold(*GC_THRESHOLD)
    _dispatch(sys.argv[1:] if argv is None else argv)


def _dispatch(args: list[str]) -> None:
    if args in FAST:
        sys.exit(_without_click(None))
    if args[:1] == ["pre-commit"] and not any(arg.startswith("-") for arg in args[1:]):
        sys.exit(_without_click(args[1:]))  # file names only: no option to parse
    if args[:1] == ["git"]:  # git lists the blobs while click loads (see sources/early.py)
        from keyscan.sources.early import begin

        begin(args[1:])
    from keyscan.cli import main as cli_main

    cli_main(args)


def _exit(code: object) -> NoReturn:
    """Exit with `code` (as `sys.exit` takes it) without tearing the interpreter down: a
    scan ends with every object it made still alive, and freeing them one by one (and
    the last full collection) took a history scan ~40 ms. The exit handlers run and the
    output is flushed first; with a thread still running, the ordinary exit waits for it."""
    import atexit
    import os

    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # as sys.exit prints a message
        code = 1
    threading = sys.modules.get("threading")  # (not imported: no thread was started)
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    status = code or 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`keyscan scan | head`), as Python's
            status = status or 120  # own exit reports it
    os._exit(status)


def run_staged(repo: str | None, options: ScanOptions) -> ExitCode:
    """`keyscan staged [REPO]`: what the staged change introduces, reported; the exit code."""
    from keyscan.model import Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources.staged import open_work_tree, staged_findings

    git_repo, top = open_work_tree(repo)
    setup = prepare(options, top, mode="staged")
    stats = Stats()
    return finish(staged_findings(git_repo, setup.scanner(), stats, warn=warn), setup, stats)


def run_precommit(files: list[str], options: ScanOptions) -> ExitCode:
    """`keyscan pre-commit [FILE ...]`: the commit, the files, or the range pre-commit asks
    for (see `keyscan.sources.precommit`); no FILE: the whole staged change."""
    import os

    from keyscan.model import Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources import precommit

    span = precommit.range_from_env(os.environ)
    if span is not None:
        return _run_range(*span, options)
    from keyscan.sources.staged import open_work_tree, read_staged, staged_findings

    git_repo, top = open_work_tree(None)
    paths = precommit.repo_paths(files, top)
    staged = read_staged(git_repo)
    stats = Stats()
    if not files or precommit.is_the_commit(paths, staged):
        setup = prepare(options, top, mode="staged")
        only = set(paths) if files else None
        found = staged_findings(git_repo, setup.scanner(), stats, warn, staged=staged, only=only)
        return finish(found, setup, stats)
    setup = prepare(options, top, mode="files")
    whole = precommit.files_findings(git_repo, top, paths, setup.scanner(), stats, warn)
    return finish(whole, setup, stats)


def _run_range(from_ref: str, to_ref: str, options: ScanOptions) -> ExitCode:
    from keyscan.model import Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources.git import open_repo
    from keyscan.sources.history import scan_revisions

    repo = open_repo(None)
    setup = prepare(options, repo.work_tree, mode="git")
    stats = Stats()
    # resolve_revisions refuses option-like names and names what it cannot find (exit 2)
    findings = scan_revisions(repo, [to_ref, f"^{from_ref}"], setup.scanner(), stats, warn)
    return finish(findings, setup, stats)


def _without_click(files: list[str] | None) -> int:
    """`staged` (files None) or `pre-commit FILE...`, with click's defaults for every option."""
    from keyscan.errors import ExitCode, KeyscanError, report_error
    from keyscan.pipeline import ScanOptions

    options = ScanOptions(quiet=True)  # what the click commands give without -v
    # The same mapping as cli.main: one stderr line and exit 2 for what the user can fix.
    try:
        if files is None:
            return int(run_staged(None, options))
        return int(run_precommit(files, options))
    except KeyscanError as error:
        return int(report_error(str(error)))
    except KeyboardInterrupt:
        return int(report_error("interrupted"))
    except BrokenPipeError:
        return int(ExitCode.ERROR)
