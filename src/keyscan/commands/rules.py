"""`keyscan rules` (not built yet)."""

from __future__ import annotations

import click

from keyscan.errors import ExitCode, KeyscanError


@click.command("rules")
def command() -> ExitCode:
    """Not built yet."""
    raise KeyscanError("'keyscan rules' is not built yet")
