"""Exit codes and the one exception type a user ever sees."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    CLEAN = 0  # nothing reported
    FINDINGS = 1  # something reported
    ERROR = 2  # the run could not be done


class KeyscanError(Exception):
    """A failure the user caused: the message names the cause and the fix, on one line.

    Raised anywhere; caught in exactly one place (`cli.main`), which prints it to
    stderr and exits 2. Never put a whole secret in the message.
    """
