"""`keyscan staged [REPO]` (not built yet)."""

from __future__ import annotations

import click

from keyscan.errors import ExitCode, KeyscanError


@click.command("staged")
def command() -> ExitCode:
    """Not built yet."""
    raise KeyscanError("'keyscan staged' is not built yet")
