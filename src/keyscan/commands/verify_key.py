"""`keyscan verify-key` (not built yet)."""

from __future__ import annotations

import click

from keyscan.errors import ExitCode, KeyscanError


@click.command("verify-key")
def command() -> ExitCode:
    """Not built yet."""
    raise KeyscanError("'keyscan verify-key' is not built yet")
