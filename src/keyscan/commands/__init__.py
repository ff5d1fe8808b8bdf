"""One module per command; each defines `command` (a click command).

Modules import their heavy dependencies inside the command body, so listing
them here costs only click decorators at start-up.
"""

from __future__ import annotations

import click


def register_all(group: click.Group) -> None:
    from keyscan.commands import ci, git, prepush, rules, scan, staged, verify_key

    for module in (scan, git, staged, prepush, ci, verify_key, rules):
        group.add_command(module.command)
