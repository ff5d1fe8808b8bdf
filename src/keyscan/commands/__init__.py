"""One module per command; each defines `command` (a click command).

The group imports a command's module only when that command runs (or help
lists it), so a hook pays for `keyscan staged` and nothing else. Modules
import their heavy dependencies inside the command body.
"""

from __future__ import annotations

import importlib

import click

# command name -> module in keyscan.commands, in the order help lists them
COMMANDS = {
    "scan": "scan",
    "git": "git",
    "staged": "staged",
    "pre-commit": "precommit",
    "pre-push": "prepush",
    "ci": "ci",
    "image": "image",
    "verify-key": "verify_key",
    "rules": "rules",
    "audit": "audit",
    "inventory": "inventory",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's whole first sentence, wrapped: click would cut it at ~45 columns."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(f"keyscan.commands.{COMMANDS[cmd_name]}")
            self.add_command(module.command, cmd_name)
        return self.commands.get(cmd_name)


def register_all(group: click.Group) -> None:
    """Register every command now (for a plain group; a LazyGroup needs nothing)."""
    for name in COMMANDS:
        if name not in group.commands:
            command = importlib.import_module(f"keyscan.commands.{COMMANDS[name]}").command
            group.add_command(command, name)
