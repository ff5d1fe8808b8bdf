"""`keyscan ci [REPO] [--range REVS] [--sarif-file FILE]`: what a CI run's commits introduce.

On GitHub Actions the event says what to scan (see `sources/ci_env.py`), and
the findings also go where a reviewer looks: `::error` annotations on the diff
and a table on the run page, whatever `--format` is. One scan, several renders.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from keyscan.cli import options_from, scan_options
from keyscan.errors import ExitCode

if TYPE_CHECKING:
    from keyscan.model import Report
    from keyscan.pipeline import ScanOptions
    from keyscan.sources.ci_env import CiEnv, Plan


@click.command("ci")
@click.argument("repo", required=False)
@click.option(
    "--range",
    "range_",
    metavar="REVS",
    help="Scan these commits instead of what the CI event says (what `git rev-list` takes:"
    " A..B, 'B ^A'); for CIs keyscan does not detect, e.g. GitLab.",
)
@click.option(
    "--sarif-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a SARIF report to FILE (for github/codeql-action/upload-sarif).",
)
@scan_options
def command(
    repo: str | None, range_: str | None, sarif_file: Path | None, **kwargs: Any
) -> ExitCode:
    """Scan what a CI run's commits introduce: a pull request's, a push's, else all history.

    REPO defaults to $GITHUB_WORKSPACE on GitHub Actions, else the current directory.
    """
    from keyscan.model import Stats
    from keyscan.pipeline import build_report, exit_code, prepare, warn
    from keyscan.report import check_output
    from keyscan.sources import ci_env, ci_git, history
    from keyscan.sources.git import open_repo

    options = options_from(kwargs)
    ci = ci_env.detect(os.environ)
    if range_ is not None:
        plan = ci_env.range_plan(history.parse_range(range_), range_)
    else:
        plan = ci_env.plan_for(ci, os.environ)
    checkout = open_repo(repo or ci.workspace or ".")
    setup = prepare(options, checkout.work_tree, mode="ci")
    check_output(sarif_file)  # fail before fetching and scanning, not after
    plan = ci_git.complete(checkout, plan, github=ci.provider == "github", warn=warn)
    revs = ci_git.revisions(checkout, plan)
    stats = Stats()
    if revs is None:
        findings = history.scan_all(checkout, setup.scanner(), stats, warn)
    elif revs:
        findings = history.scan_revisions(checkout, revs, setup.scanner(), stats, warn)
    else:
        findings = []
    report = build_report(findings, setup, stats)
    _publish(report, options, sarif_file, ci, plan)
    return exit_code(report)


def _publish(
    report: Report, options: ScanOptions, sarif_file: Path | None, ci: CiEnv, plan: Plan
) -> None:
    from keyscan.pipeline import warn
    from keyscan.report import render, write_report
    from keyscan.report.step_summary import render_step_summary

    write_report(render(report, options.format), options.output)
    if sarif_file is not None:
        write_report(render(report, "sarif"), sarif_file)
    if ci.provider != "github":
        return
    # Side channels the user did not name are always redacted: run pages can be public.
    public = report.replace(show_secrets=False)
    if options.format != "github" or options.output is not None:
        # A JSON or SARIF report on stdout must stay parseable; the runner reads
        # workflow commands from stderr too.
        machine = options.output is None and options.format in ("json", "sarif")
        stream = sys.stderr if machine else sys.stdout
        # Only the workflow commands: the main report already has the summary line.
        commands = [line for line in render(public, "github").splitlines() if line[:2] == "::"]
        if commands:
            stream.write("\n".join(commands) + "\n")
            stream.flush()
    if ci.step_summary:
        try:
            with open(ci.step_summary, "a", encoding="utf-8") as summary:
                summary.write(render_step_summary(public, plan.describe) + "\n")
        except OSError as error:
            warn(f"could not append to GITHUB_STEP_SUMMARY {ci.step_summary}: {error.strerror}")
