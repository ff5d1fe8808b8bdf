"""`keyscan pre-push` (not built yet)."""

from __future__ import annotations

import click

from keyscan.errors import ExitCode, KeyscanError


@click.command("pre-push")
def command() -> ExitCode:
    """Not built yet."""
    raise KeyscanError("'keyscan pre-push' is not built yet")
