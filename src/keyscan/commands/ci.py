"""`keyscan ci` (not built yet)."""

from __future__ import annotations

import click

from keyscan.errors import ExitCode, KeyscanError


@click.command("ci")
def command() -> ExitCode:
    """Not built yet."""
    raise KeyscanError("'keyscan ci' is not built yet")
