"""Is a found key a placeholder (`pe_live_0000…`, `rp_live_YOURAPIKEYHERE…`) rather than a key?

The body (the secret after its known prefix) is lowercased, placeholder words and
separators are removed, and what is left must be empty or short, one repeated
unit, or an ascending/descending run. Removing words can never turn a random
body into a placeholder: what a random body leaves is long and patternless.
(Testing "contains KEY" instead would flag about one random base62 body in a
thousand.)
"""

from __future__ import annotations

import itertools
import re

# Words seen in docs and templates in place of a key; longest first so that
# "keys" is removed whole rather than leaving an "s".
_WORD_LIST = """your my the api apikey key keys here example sample dummy fake test placeholder
    changeme change replace insert redacted secret token value live sk put goes paste me
    posteverywhere repeatposts powerpost autoposting"""
_WORDS = sorted(_WORD_LIST.split(), key=len, reverse=True)
# A pattern, not a compiled regex: `re` compiles and caches it on first use, so the hook
# does not pay ~0.3 ms at import for what a run without findings never uses.
_FILLER = "|".join(_WORDS) + r"|x{3,}|\*+|[-_.:/ ]+"
_SEQUENCE = "0123456789abcdefghijklmnopqrstuvwxyz"
SHORT = 4  # a remainder this short is filler around the words
MAX_UNIT = 16  # "a short repeated unit": a1b2c3d4e5f6 repeated is a placeholder


def is_placeholder(secret: str, prefix: str) -> bool:
    """True when the secret's body is filler, not randomness (see the module doc)."""
    body = secret[len(prefix) :] if prefix and secret.startswith(prefix) else secret
    body = body.lower()
    if _patterned(body):
        return True
    rest = re.sub(_FILLER, "", body)
    return len(rest) <= SHORT or _patterned(rest)


def _patterned(text: str) -> bool:
    return _repeats(text) or _run(text) or _run(text[::-1])


def _repeats(text: str) -> bool:
    """A unit of at most MAX_UNIT characters repeated (at least twice) to fill `text`."""
    for size in range(1, min(MAX_UNIT, len(text) // 2) + 1):
        unit = text[:size]
        if (unit * (len(text) // size + 1))[: len(text)] == text:
            return True
    return False


def _run(text: str) -> bool:
    """Consecutive characters of 0-9a-z (0123456789abcdef..., 1234567890)."""
    if len(text) < 2 or any(char not in _SEQUENCE for char in text):
        return False
    positions = [_SEQUENCE.index(char) for char in text]
    return all(
        # digits wrap after 9 (1234567890), hex after f, the whole sequence after z
        (b - a) % len(_SEQUENCE) == 1 or (a, b) in ((9, 0), (15, 0))
        for a, b in itertools.pairwise(positions)
    )
