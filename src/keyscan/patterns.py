"""Regexes keyscan did not ship: compiled so that no pattern can hang or exhaust a scan.

A config's `rules` and `allow.regexes` come from the scanned repository (and `keyscan
rules check FILE` checks a user's own file of them): a backtracking engine gives such a
pattern exponential time (`(a+)+$` on 35 characters ran for minutes), and Python's
parser crashes on `a{4294967296}` or a thousand nested groups. So these patterns are
compiled with RE2 (`google-re2`), whose matching time is linear in the text, whatever
the pattern; RE2 is also what gitleaks' configs are written in (Go's regexp). What RE2
cannot run in linear time (backreferences, lookaround) is refused, as is a pattern past
the limits below, each with one line naming where it is and why (exit 2). The shipped
rules stay on Python's `re`: they are reviewed, tested and fast to load.
"""

from __future__ import annotations

import re
from typing import Any

from keyscan.errors import KeyscanError

MAX_LENGTH = 4096  # characters of one pattern
MAX_NESTING = 100  # open groups at once
MAX_REPEAT = 1000  # RE2's own limit for {n}; larger counts would otherwise read as text
MAX_PROGRAM = 8 << 20  # bytes of memory RE2 may use for one compiled pattern

_REPEAT = re.compile(r"(?<!\\)\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


def compile_untrusted(pattern: str, where: str, *, as_bytes: bool) -> Any:
    """`pattern` compiled by RE2 (bytes or str patterns); KeyscanError naming `where`.

    The result has the methods keyscan calls on a compiled `re` pattern (`finditer`,
    `search`, `groups`, `pattern`), so the engine and the filters take either."""
    _check_shape(pattern, where)
    try:
        import re2  # type: ignore[import-untyped]  # only when a config has patterns
    except ImportError:  # pragma: no cover - a dependency of keyscan
        raise KeyscanError(
            f"{where}: patterns from a config need the google-re2 package: pip install google-re2"
        ) from None
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line on stderr
    options.max_mem = MAX_PROGRAM
    try:
        return re2.compile(pattern.encode("utf-8") if as_bytes else pattern, options=options)
    except re2.error as error:
        reason = _reason(error)
        raise KeyscanError(f"{where}: {reason} (fix the pattern; it is RE2 syntax)") from None


def _check_shape(pattern: str, where: str) -> None:
    if len(pattern) > MAX_LENGTH:
        raise KeyscanError(f"{where}: the pattern is longer than {MAX_LENGTH} characters")
    for match in _REPEAT.finditer(pattern):
        counts = [int(group) for group in match.groups() if group]
        if any(count > MAX_REPEAT for count in counts):
            raise KeyscanError(
                f"{where}: a repetition count over {MAX_REPEAT} (use + or a smaller count)"
            )
    if _nesting(pattern) > MAX_NESTING:
        raise KeyscanError(f"{where}: groups nested more than {MAX_NESTING} deep")


def _nesting(pattern: str) -> int:
    """The deepest group nesting, skipping escapes and character classes."""
    depth = deepest = 0
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1  # `[]...]`: a leading ] is literal
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
        i += 1
    return deepest


def _reason(error: Exception) -> str:
    reason = error.args[0] if error.args else "not a valid regex"
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    # RE2 quotes the pattern after a colon ("missing ): (pe_live_…"): keep only the cause
    cause = " ".join(str(reason).split(":")[0].split())[:80]
    return f"pattern is not a valid regex: {cause}"
