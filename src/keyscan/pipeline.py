"""What every scanning command shares: set up, then findings -> filters -> verify -> report.

A command builds a `Setup` with `prepare`, hands `setup.scanner()` to its source
(the one driver: engine, expansion, windows, counts; see `sources/driver.py`), and
the findings to `finish`, which filters, verifies, reports and returns the exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from keyscan import __version__
from keyscan.errors import ExitCode
from keyscan.model import Report, Stats, Value

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Final

    from keyscan.config import Config
    from keyscan.engine import Engine
    from keyscan.filters.allowlist import Allowlist
    from keyscan.model import Finding
    from keyscan.rules import RuleSet
    from keyscan.sources.driver import Expand, Scanner

def warn(message: str) -> None:
    """One warning line on stderr. Never pass a whole secret (key-shaped text is redacted)."""
    from keyscan.redaction import safe_message  # file names may hold keys and newlines

    print(f"keyscan: warning: {safe_message(message)}", file=sys.stderr)


class ScanOptions(Value):
    """The options shared by every scanning command, as parsed by click."""

    __slots__ = (
        "baseline",
        "config",
        "format",
        "include_placeholders",
        "max_archive_depth",
        "max_decompressed_bytes",
        "only_live",
        "output",
        "quiet",
        "show_secrets",
        "verify",
    )

    def __init__(
        self,
        format: str = "text",
        output: Path | None = None,
        config: Path | None = None,
        baseline: Path | None = None,
        verify: bool = False,
        only_live: bool = False,
        show_secrets: bool = False,
        include_placeholders: bool = False,
        max_archive_depth: int = 8,
        max_decompressed_bytes: int = 1 << 30,
        quiet: bool = False,
    ) -> None:
        self.format: Final = format
        self.output: Final = output
        self.config: Final = config
        self.baseline: Final = baseline
        self.verify: Final = verify
        self.only_live: Final = only_live
        self.show_secrets: Final = show_secrets
        self.include_placeholders: Final = include_placeholders
        self.max_archive_depth: Final = max_archive_depth  # archive.Limits
        self.max_decompressed_bytes: Final = max_decompressed_bytes
        # A hook's manners: a text report to stdout says nothing when nothing was found
        # (the hook commands' default; -v/--verbose prints the summary).
        self.quiet: Final = quiet


class Setup(Value):
    __slots__ = ("allowlist", "baseline", "engine", "expand", "mode", "options", "ruleset")

    def __init__(
        self,
        options: ScanOptions,
        mode: str,
        engine: Engine,
        ruleset: RuleSet,
        allowlist: Allowlist,
        baseline: frozenset[str],
        expand: Expand | None = None,
    ) -> None:
        self.options: Final = options
        self.mode: Final = mode
        self.engine: Final = engine
        self.ruleset: Final = ruleset
        self.allowlist: Final = allowlist
        self.baseline: Final = baseline
        # The expansion step every fragment is offered to (archives); None: no expansion.
        self.expand: Final = expand

    def scanner(self) -> Scanner:
        """The driver a source emits its fragments to (see `sources/driver.py`)."""
        from keyscan.sources.driver import Scanner

        return Scanner(self.engine, self.expand)


def prepare(options: ScanOptions, root: Path | None, mode: str) -> Setup:
    """Load rules, config and baseline; fail early (exit 2) on anything broken.

    `root` is where `.keyscan.yaml` is looked for when `--config` is not given
    (the scanned folder or the repository's top level); None looks nowhere.
    """
    from keyscan.engine import Engine
    from keyscan.filters.allowlist import Allowlist
    from keyscan.report import check_output

    check_output(options.output)  # a bad --output fails now, not after a long scan
    config, ruleset = active_rules(options.config, root)
    baseline: frozenset[str] = frozenset()
    baseline_file = options.baseline or config.baseline  # --baseline, else the config's
    if baseline_file:
        from keyscan.filters.baseline import load_baseline  # json: only when asked for

        baseline = load_baseline(baseline_file)
    if options.verify or options.only_live:
        from keyscan.verify import check_environment

        check_environment()
    return Setup(
        options=options,
        mode=mode,
        engine=Engine(ruleset.rules),
        ruleset=ruleset,
        allowlist=Allowlist(config),
        baseline=baseline,
        expand=_archives(options),
    )


def _archives(options: ScanOptions) -> Expand | None:
    """The expansion step every source's fragments are offered to: archives, within the
    options' limits (see `sources/contents.py`)."""
    from keyscan.sources.archive import Limits
    from keyscan.sources.contents import expander

    return expander(Limits(options.max_archive_depth, options.max_decompressed_bytes))


def active_rules(config_file: Path | None, root: Path | None) -> tuple[Config, RuleSet]:
    """The config (`--config`, else `.keyscan.yaml` at `root`) and the rules it makes active."""
    from keyscan.config import load_config
    from keyscan.rules import load_builtin

    if config_file is not None:
        config = load_config(config_file, explicit=True)
    else:
        config = load_config(root / ".keyscan.yaml" if root else None, explicit=False)
    return config, load_builtin().extended(config.rules).without(config.disable)


def finish(
    findings: Iterable[Finding],
    setup: Setup,
    stats: Stats,
    layer_notes: dict[str, str] | None = None,
) -> ExitCode:
    """Filter, verify, render and write; the exit code says whether anything was reported."""
    from keyscan.report import render, write_report

    report = build_report(findings, setup, stats, layer_notes)
    options = setup.options
    silent = options.quiet and options.format == "text" and options.output is None
    if not (silent and not report.findings):
        write_report(render(report, options.format), options.output)
    return exit_code(report)


def exit_code(report: Report) -> ExitCode:
    """1 if anything was reported; else 2 if something could not be read (never 0 then)."""
    if report.findings:
        return ExitCode.FINDINGS
    return ExitCode.ERROR if report.stats.unreadable else ExitCode.CLEAN


def build_report(
    findings: Iterable[Finding],
    setup: Setup,
    stats: Stats,
    layer_notes: dict[str, str] | None = None,
) -> Report:
    """Filter and verify: the Report every format renders (`ci` renders it more than once)."""
    from keyscan.filters import apply_filters

    options = setup.options
    kept = apply_filters(
        findings,
        allowlist=setup.allowlist,
        baseline=setup.baseline,
        include_placeholders=options.include_placeholders,
        stats=stats,
    )
    if options.verify or options.only_live:
        from keyscan.verify import verify_findings

        kept = verify_findings(kept, setup.ruleset, warn=warn)
        if options.only_live:
            kept = only_live(kept)
    return Report(
        findings=tuple(sorted(kept, key=_order)),
        stats=stats,
        rules={rule.id: rule for rule in setup.ruleset.rules},
        vendors=setup.ruleset.vendors,
        version=__version__,
        show_secrets=options.show_secrets,
        mode=setup.mode,
        layer_notes=layer_notes,
    )


def only_live(findings: list[Finding]) -> list[Finding]:
    """Live findings only; never hides silently: stderr counts what was left out and why."""
    live = [f for f in findings if f.verification and f.verification.status == "live"]
    left_out: dict[str, int] = {}
    for finding in findings:
        if finding.verification is None or finding.verification.status != "live":
            status = finding.verification.status if finding.verification else "unverified"
            left_out[status] = left_out.get(status, 0) + 1
    if left_out:
        order = ("invalid", "unknown", "unverifiable", "unverified")
        counts = ", ".join(
            f"{left_out[status]} {status}" for status in sorted(left_out, key=order.index)
        )
        warn(f"--only-live left out {counts}: rerun with --verify to see them")
    return live


def _order(finding: Finding) -> tuple[str, int, int, str]:
    return (finding.path, finding.line, finding.column, finding.rule_id)
