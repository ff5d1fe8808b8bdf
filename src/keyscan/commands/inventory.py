"""`keyscan inventory`: what audits remembered, reported without scanning anything."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from keyscan.errors import ExitCode, KeyscanError
from keyscan.report import formats

if TYPE_CHECKING:
    from keyscan.model import Finding

FORMATS = formats("inventory")
STATUSES = ("live", "invalid", "unknown", "unverifiable", "unverified")


@click.command("inventory")
@click.option("--inventory", "inventory_url", metavar="DB", default="keyscan-inventory.sqlite",
              show_default=True,
              help="SQLite file or postgresql:// URL written by 'keyscan audit'.")
@click.option("--status", "statuses", type=click.Choice(STATUSES), multiple=True,
              help="Only findings whose latest verification is this (repeatable).")
@click.option("--new-since", metavar="DATE",
              help="Only findings first seen at or after DATE (ISO 8601 date or date-time).")
@click.option("--repository", "repo_glob", metavar="GLOB",
              help="Only repositories matching GLOB (e.g. 'https://github.com/acme/*').")
@click.option("--vendor", metavar="ID", help="Only this vendor's keys (e.g. posteverywhere).")
@click.option("--format", "format_", type=click.Choice(FORMATS), default="text",
              show_default=True, help="Report format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to FILE (atomically) instead of stdout.")
def command(inventory_url: str, statuses: tuple[str, ...], new_since: str | None,
            repo_glob: str | None, vendor: str | None, format_: str,
            output: Path | None) -> ExitCode:
    """Report every finding the inventory holds, newest first; no scan, no network."""
    from keyscan.inventory.database import is_postgres, require_sqlalchemy
    from keyscan.report import check_output

    since = _since(new_since) if new_since is not None else None
    check_output(output)
    local = not is_postgres(inventory_url) and "://" not in inventory_url
    if local and not Path(inventory_url).is_file():
        raise KeyscanError(f"no inventory at {inventory_url}: run 'keyscan audit' first, "
                               "or give --inventory")
    require_sqlalchemy(inventory_url)
    from keyscan.inventory.store import Inventory

    inventory = Inventory(inventory_url)
    try:
        findings = inventory.findings()
    finally:
        inventory.close()
    kept = [f for f in findings if _wanted(f, statuses, since, repo_glob, vendor)]
    _write(kept, format_, output)
    return ExitCode.FINDINGS if kept else ExitCode.CLEAN


def _since(text: str) -> str:
    """`DATE` as the inventory writes times (UTC, seconds), for comparing as text."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise KeyscanError(f"bad --new-since {text[:40]!r}: give an ISO 8601 date "
                           "(2026-11-01) or date-time (2026-11-01T09:30:00+00:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _wanted(finding: Finding, statuses: tuple[str, ...], since: str | None,
            repo_glob: str | None, vendor: str | None) -> bool:
    from fnmatch import fnmatchcase

    status = finding.verification.status if finding.verification else "unverified"
    if statuses and status not in statuses:
        return False
    if since is not None and (finding.first_seen or "") < since:
        return False
    if repo_glob is not None and not fnmatchcase(finding.repository or "", repo_glob):
        return False
    return vendor is None or finding.vendor == vendor


def _write(findings: list[Finding], fmt: str, output: Path | None) -> None:
    from keyscan import __version__
    from keyscan.model import Report, Stats
    from keyscan.report import render, write_report
    from keyscan.rules import load_builtin

    ruleset = load_builtin()
    report = Report(findings=tuple(findings), stats=Stats(),
                    rules={rule.id: rule for rule in ruleset.rules}, vendors=ruleset.vendors,
                    version=__version__, mode="inventory")
    write_report(render(report, fmt), output)
