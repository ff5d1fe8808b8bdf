"""`keyscan git [REPO] [--range REVS]` (not built yet)."""

from __future__ import annotations

import click

from keyscan.errors import ExitCode, KeyscanError


@click.command("git")
def command() -> ExitCode:
    """Not built yet."""
    raise KeyscanError("'keyscan git' is not built yet")
