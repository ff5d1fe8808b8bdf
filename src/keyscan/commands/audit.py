"""`keyscan audit REPO|URL… [--repos-from FILE]`: many repositories, remembered in an inventory."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from keyscan.cli import options_from, scan_options
from keyscan.commands.hostargs import HostArgs, host_options
from keyscan.errors import ExitCode, KeyscanError

if TYPE_CHECKING:
    from keyscan.audit.client import Source
    from keyscan.audit.executors import Executor


@click.command("audit")
@click.argument("repos", nargs=-1, metavar="[REPO|URL]...")
@click.option("--repos-from", type=click.Path(dir_okay=False, path_type=Path),
              help="Read repositories from FILE: one path or URL a line, '#' comments.")
@click.option("--inventory", "inventory_url", metavar="DB",
              default="keyscan-inventory.sqlite", show_default=True,
              help="SQLite file, or a postgresql://USER@HOST/DB URL shared by several audits.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Where mirrors of remote repositories are kept "
                   "(default: the user cache folder, ~/.cache/keyscan/mirrors).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Repositories scanned at a time (default: the number of cores).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Hand each repository to the Dask cluster at tcp://HOST:PORT "
                   "(pip install 'keyscan[dask]'); this process alone writes the inventory.")
@click.option("--new-only", is_flag=True, help="Report only findings first seen in this audit.")
@host_options
@scan_options
def command(repos: tuple[str, ...], repos_from: Path | None, inventory_url: str,
            cache: Path | None, workers: int | None, scheduler: str | None, new_only: bool,
            **kwargs: Any) -> ExitCode:
    """Audit many repositories' whole histories, remembering what was seen.

    Each REPO is a local path (read in place) or a git URL (mirrored into the cache
    and fetched again next time). Findings, blobs already scanned and verifications
    are kept in the inventory: a second audit scans only what changed.
    """
    with _audit_heap() as settled:
        from keyscan.audit.client import run_audit
        from keyscan.audit.executors import executor_for
        from keyscan.inventory.database import require_sqlalchemy
        from keyscan.pipeline import prepare, warn
        from keyscan.progress import Progress
        from keyscan.sources.mirror import default_cache

        options = options_from(kwargs)
        hosts = HostArgs.pop(kwargs)
        queries = hosts.queries()  # names checked before anything runs
        if scheduler is not None:
            from keyscan.cluster import check_address

            check_address(scheduler)
        sources = _sources(repos, repos_from, allow_none=bool(queries))
        require_sqlalchemy(inventory_url)
        setup = prepare(options, None, mode="audit")  # a repository's own config cannot hide keys
        from keyscan.inventory.store import Inventory

        inventory = Inventory(inventory_url)
        settled()
        try:
            with _executor(scheduler, workers) as (executor, count), \
                    Progress("keyscan audit") as display:
                listing = hosts.listing(queries, display, warn)
                sources = _unique([*sources, *listing.sources])
                executor = executor or executor_for(min(count, len(sources)))
                outcome = run_audit(sources, setup, inventory, executor,
                                    cache or default_cache(), count, warn, display)
            outcome.stats.failed_repositories += listing.failed
            findings = outcome.findings
            if options.verify or options.only_live:
                findings = _verified(findings, setup, inventory, outcome.audit)
            if new_only:
                findings = [f for f in findings if f.new]
        finally:
            inventory.close()
        code = _report(findings, setup, outcome.stats)
    _exit_uncollected()
    return code


def _exit_uncollected() -> None:
    """The report written and the inventory closed, nothing is left whose finaliser matters:
    at exit the heap (SQLAlchemy's, the findings) goes with the process instead of being
    walked by the collector first, which cost ~60 ms of a ~0.5 s second audit. (At exit
    only: a caller running the command in its own process is not affected before then.)"""
    import atexit
    import gc

    atexit.register(gc.freeze)


@contextmanager
def _audit_heap() -> Iterator[Callable[[], None]]:
    """The collector and the audit's long-lived heap. Paused while the audit imports
    SQLAlchemy, loads its rules and opens the inventory (what that builds lives until
    the end: passes over it find nothing); then, at `settled()`, that heap is frozen, so
    that the collector walks only what the audit makes next: a full pass over
    SQLAlchemy's objects cost a second audit ~20 ms while it rendered its report, the
    passes during the imports ~15 ms. Thawed at the end. (Forking a worker thaws it too,
    audit/pool.py: an audit that scans is as before.)"""
    import gc

    enabled = gc.isenabled()
    gc.disable()

    def settled() -> None:
        gc.freeze()
        if enabled:
            gc.enable()

    try:
        yield settled
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


@contextmanager
def _executor(scheduler: str | None, workers: int | None
              ) -> Iterator[tuple[Executor | None, int]]:
    """(a cluster, connected now, or None for a local pool; how many repositories this
    machine scans at a time, which sizes each one's share of the cores)."""
    if scheduler is None:
        yield None, workers or os.cpu_count() or 1
        return
    from keyscan.audit.executors import DaskExecutor

    cluster = DaskExecutor(scheduler)
    try:
        yield cluster, 1  # each Dask worker sizes its own share of its machine's cores
    finally:
        cluster.close()


def _unique(sources: list[Source]) -> list[Source]:
    unique: dict[str, Source] = {}
    for source in sources:
        unique.setdefault(source.name, source)
    return list(unique.values())


def _sources(repos: tuple[str, ...], repos_from: Path | None,
             allow_none: bool = False) -> list[Source]:
    from keyscan.audit.client import Source
    from keyscan.sources.git import without_credentials

    given = list(repos)
    if repos_from is not None:
        try:
            text = repos_from.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise KeyscanError(f"cannot read --repos-from {repos_from}: {reason}") from None
        for line in text.splitlines():
            entry = re.sub(r"(^|\s)#.*", "", line).strip()  # a '#' inside a URL stays
            if entry:
                given.append(entry)
    if not given and not allow_none:
        raise KeyscanError(
            "no repositories to audit: give paths or URLs, --repos-from FILE, "
            "--github-org, --github-user or --gitlab-group"
        )
    sources: dict[str, Source] = {}
    for location in given:
        name = without_credentials(location)[0]
        sources.setdefault(name, Source(name, location))
    return list(sources.values())


def _verified(findings: list[Any], setup: Any, inventory: Any, audit: Any) -> list[Any]:
    from keyscan.pipeline import warn
    from keyscan.verify import verify_findings

    verified = verify_findings(findings, setup.ruleset, warn=warn)
    inventory.record_verifications(audit, verified)
    if setup.options.only_live:
        from keyscan.pipeline import only_live

        verified = only_live(verified)
    return verified


def _report(findings: list[Any], setup: Any, stats: Any) -> ExitCode:
    from keyscan import __version__
    from keyscan.model import Report
    from keyscan.report import render, write_report

    ordered = sorted(findings, key=lambda f: (f.repository or "", f.path, f.line, f.column,
                                              f.rule_id))
    report = Report(findings=tuple(ordered), stats=stats,
                    rules={rule.id: rule for rule in setup.ruleset.rules},
                    vendors=setup.ruleset.vendors, version=__version__,
                    show_secrets=setup.options.show_secrets, mode="audit")
    write_report(render(report, setup.options.format), setup.options.output)
    if report.findings:
        return ExitCode.FINDINGS
    return ExitCode.ERROR if stats.failed_repositories else ExitCode.CLEAN
