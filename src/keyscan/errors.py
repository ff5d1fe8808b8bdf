"""Exit codes and the one exception type a user ever sees."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    CLEAN = 0  # nothing reported
    FINDINGS = 1  # something reported
    ERROR = 2  # the run could not be done


class KeyscanError(Exception):
    """A failure the user caused: the message names the cause and the fix, on one line.

    Raised anywhere; caught by the entry points (`cli.main`, and `launch` for the
    click-free hook path), which print it with `report_error` and exit 2. Never put a
    whole secret in the message.
    """


def report_error(message: str) -> ExitCode:
    """The one stderr line every failure a user can fix gets; the exit code to return."""
    import sys

    from keyscan.redaction import safe_message  # a pasted key, a newline in a path

    print(f"keyscan: error: {safe_message(message)}", file=sys.stderr)
    return ExitCode.ERROR
