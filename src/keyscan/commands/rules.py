"""`keyscan rules`: the active rule set. `keyscan rules check [FILE]`: rules vs their examples."""

from __future__ import annotations

from pathlib import Path

import click

from keyscan.errors import ExitCode


@click.group("rules", invoke_without_command=True)
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="Config file whose rules and disable list apply (default: ./.keyscan.yaml).",
)
@click.pass_context
def command(ctx: click.Context, config: Path | None) -> ExitCode | None:
    """List the active rules: the built-in ones, plus the config's, minus those it disables."""
    if ctx.invoked_subcommand is not None:
        return None
    from keyscan.pipeline import active_rules
    from keyscan.report.common import printable

    _, ruleset = active_rules(config, Path("."))
    rows = [("ID", "VENDOR", "SEVERITY", "VERIFIABLE")]
    rows += [  # a config's rule may name any vendor: escaped like every text from input
        (rule.id, printable(rule.vendor), rule.severity, "yes" if rule.verify else "no")
        for rule in ruleset.rules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[3]]))
    return ExitCode.CLEAN


@command.command("check")
@click.argument("file", required=False, type=click.Path(path_type=Path))
def check(file: Path | None) -> ExitCode:
    """Run every rule's examples and negative examples (the built-in rules, or FILE's).

    Exits 1 naming each example that misbehaves, 0 when all pass.
    """
    from keyscan.report.common import printable
    from keyscan.rulecheck import check_examples
    from keyscan.rules import load_builtin, load_rule_file
    from keyscan.verify.spec import endpoint_from

    ruleset = load_rule_file(file) if file is not None else load_builtin()
    for vendor in ruleset.vendors.values():
        if vendor.verify is not None:
            endpoint_from(vendor)  # a malformed verify section: KeyscanError, exit 2
    problems = check_examples(ruleset.rules)
    for problem in problems:
        click.echo(f"FAIL {printable(problem)}")
    examples = sum(len(r.examples) + len(r.negative_examples) for r in ruleset.rules)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {len(ruleset.rules)} rules", err=True)
        return ExitCode.FINDINGS
    click.echo(f"ok: {len(ruleset.rules)} rules, {examples} examples")
    return ExitCode.CLEAN
