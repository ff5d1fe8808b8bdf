"""`keyscan scan [PATH ...]`: files and folders; '-' reads stdin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from keyscan.cli import options_from, scan_options
from keyscan.errors import ExitCode


@click.command("scan")
@click.argument("paths", nargs=-1)
@scan_options
def command(paths: tuple[str, ...], **kwargs: Any) -> ExitCode:
    """Scan files and folders (default: .); '-' reads stdin."""
    from keyscan.model import Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources.paths import check_paths, scan_paths

    options = options_from(kwargs)
    targets = paths or (".",)
    check_paths(targets)
    root = Path(targets[0]) if len(targets) == 1 and Path(targets[0]).is_dir() else Path(".")
    setup = prepare(options, root, mode="scan")
    stats = Stats()
    findings = scan_paths(targets, setup.scanner(), stats, warn=warn)
    return finish(findings, setup, stats)
