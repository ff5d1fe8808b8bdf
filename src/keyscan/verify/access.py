"""What a live key opens, read from the vendor's own answer (CONTRACT.md, `access`).

Only fields the vendor returned, each only if it has the expected type; the vendor
file says where each one is in its answer. The answer comes from the network, so
every string is made safe to print anywhere before it leaves this module: e-mail
addresses (a person's, or one inside a name) are replaced, control, bidi and
line-separator characters are escaped, the key itself never appears, and each string
is cut to 200 characters.
"""

from __future__ import annotations

import math
import re

# the contract's fields, in its order, and what each holds
FIELDS: dict[str, str] = {
    "organization": "text",
    "workspace": "text",
    "key_name": "text",
    "scopes": "texts",
    "last_used_at": "text",
    "expires_at": "text",
    "credits": "number",
}
MAX_TEXT = 200  # characters of any one string, escapes included
MAX_SCOPES = 32
EMAIL_SHOWN = "[e-mail]"
KEY_SHOWN = "[this key]"

# Aggressive on purpose: anything@anything (no spaces or brackets) is taken as an address.
_EMAIL = re.compile(r"[^\s@<>()\[\]{}\"',;:]+@[^\s@<>()\[\]{}\"',;:]+")
# C0/C1 controls, DEL, bidi overrides/isolates and marks, line/paragraph separators,
# zero-width characters, and surrogates (a JSON "\ud800" decodes to one)
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)


def read_access(
    paths: tuple[tuple[str, tuple[str, ...]], ...], answer: dict[str, object], secret: str
) -> tuple[tuple[str, object], ...]:
    """(field, value) pairs in the contract's order, for the fields found in `answer`."""
    where = dict(paths)
    found: list[tuple[str, object]] = []
    for field, kind in FIELDS.items():
        for path in where.get(field, ()):
            value = _convert(kind, lookup(answer, path), secret)
            if value is not None:
                found.append((field, value))
                break
    return tuple(found)


def lookup(document: object, path: str) -> object:
    """`document["a"]["b"]` for path `a.b`; None where any step is missing."""
    for step in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(step)
    return document


def _convert(kind: str, value: object, secret: str) -> object:
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if kind == "texts":
        items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        texts = [text for text in (safe_text(item, secret) for item in items) if text]
        if not texts:
            return None
        if len(texts) > MAX_SCOPES:
            texts = [*texts[: MAX_SCOPES - 1], f"… {len(texts) - MAX_SCOPES + 1} more"]
        return tuple(texts)
    return safe_text(value, secret)


def safe_text(value: object, secret: str = "") -> str | None:
    """A vendor's string made safe to print: see the module's docstring. None if empty."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an id such as orgId may be a number
    if not isinstance(value, str):
        return None
    if secret and len(secret) >= 8:
        value = value.replace(secret, KEY_SHOWN)
    value = _EMAIL.sub(EMAIL_SHOWN, value[: MAX_TEXT * 4]).strip()
    if not value:
        return None
    pieces = [_escape(char) if _UNSAFE.match(char) else char for char in value]
    if sum(len(piece) for piece in pieces) <= MAX_TEXT:
        return "".join(pieces)
    kept: list[str] = []
    size = 0
    for piece in pieces:  # whole escapes only, and room for the "…"
        if size + len(piece) > MAX_TEXT - 1:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "…"


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    """`\\n`, `\\x1b`, `\\u202e`: the character named, never acted on."""
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
