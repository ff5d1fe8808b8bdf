"""Keys hidden by escaping: percent-encoding, string escapes, HTML entities, and hex.

Found the way base64 is (`encodings.py`): never by decoding everything. A key
prefix always holds a `_` or a `-` (`pe_live_`, `sk-social-`), and an encoder that
touches a key at all escapes those (`pe%5Flive%5F…`, `\\u005f`, `&#95;`, `&lowbar;`);
so the escaped forms of `_` and `-` are searched for, in lowercased text and only
inside runs long enough to hold a key (see `encodings.long_runs`, whose alphabet
has `% \\ & # ;` for this). Only the stretch around a hit is decoded, with the
offset of every decoded byte in the encoded text, and scanned again. Hex has no
escape character: the hex forms of the whole prefixes are searched instead.

The decoders' regexes are compiled on first use: the pre-commit hook imports this
module, and a commit without escaped text never needs them.
"""

from __future__ import annotations

import re

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Final

BEFORE = 64  # decode from this far before a hit: the tokens are in step again by the prefix
AFTER = 2048  # and this far after it: a 140-character key as `&#x0005f;`-style entities

# The escaped forms of `_` and `-` (lowercase: searched in lowercased text), by
# encoding, with the mark that all of them hold: text without it needs no search.
SEPARATORS: dict[str, tuple[bytes, tuple[bytes, ...]]] = {
    "percent": (b"%", (b"%5f", b"%2d", b"%255f", b"%252d")),  # and twice (`%25` is `%`)
    "escape": (b"\\", (b"\\u005f", b"\\u002d", b"\\x5f", b"\\x2d", b"\\137", b"\\055")),
    "html": (b"&", (b"&#95;", b"&#45;", b"&#x5f;", b"&#x2d;", b"&lowbar;", b"&underbar;")),
}


def hex_forms(prefixes: Iterable[bytes]) -> list[bytes]:
    """Each prefix in hex, lowercase and uppercase (a key is hexed whole: no escape mark)."""
    return [form for prefix in prefixes for form in (prefix.hex().encode(),
                                                     prefix.hex().upper().encode())]


def inner_forms(prefix: bytes) -> list[bytes]:
    """How percent-encoding writes `prefix` (its separators escaped, as encoders do: in
    uppercase hex), for finding it once more encoded: base64 of a percent-encoded key
    holds base64 of this. (Escapes and entities inside base64 are left out: each form
    is a pass more over every base64 run.)"""
    form = prefix.replace(b"_", b"%5F").replace(b"-", b"%2D")
    return [form] if form != prefix else []


class Unescaped:
    """Bytes decoded from data[offset:end], with where each decoded byte starts."""

    __slots__ = ("data", "encoding", "end", "offset", "starts")

    def __init__(self, data: bytes, starts: list[int], end: int, encoding: str) -> None:
        self.data: Final = data
        self.starts: Final = starts  # one more than data: where the byte after the last starts
        self.offset: Final = starts[0]
        self.end: Final = end
        self.encoding: Final = encoding

    def encoded_offset(self, position: int) -> int:
        return self.starts[position]

    def encoded_end(self, position: int) -> int:
        """Where the encoded text of decoded bytes [.., position) ends."""
        return self.starts[position]


def decode(data: bytes, at: int, encoding: str, low: int = 0, high: int | None = None
           ) -> Unescaped | None:
    """The text around `at` (inside [low, high)) decoded as `encoding`; None if nothing in
    it was escaped."""
    high = len(data) if high is None else high
    start, end = max(low, at - BEFORE), min(high, at + AFTER)
    if encoding == "hex":
        return _hex(data, at, start, end)
    decoded = bytearray()
    starts: list[int] = []
    position = start
    for match in _pattern(encoding).finditer(data, start, end):
        value = _value(encoding, match)
        if value is None:  # looks like an escape, is not one: literal text
            continue
        decoded += data[position : match.start()]
        starts.extend(range(position, match.start()))
        decoded += value
        starts.extend([match.start()] * len(value))
        position = match.end()
    if not starts:
        return None  # nothing in it was escaped
    decoded += data[position:end]
    starts.extend(range(position, end + 1))
    return Unescaped(bytes(decoded), starts, end, encoding)


def _hex(data: bytes, at: int, start: int, end: int) -> Unescaped | None:
    """Hex digits around `at`, in the pairs that `at` starts one of."""
    first = at
    while first - 2 >= start and _is_hex(data, first - 2) and _is_hex(data, first - 1):
        first -= 2
    last = at
    while last + 2 <= end and _is_hex(data, last) and _is_hex(data, last + 1):
        last += 2
    try:
        decoded = bytes.fromhex(data[first:last].decode("ascii"))
    except ValueError:
        return None
    return Unescaped(decoded, list(range(first, last + 1, 2)), last, "hex")


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _is_hex(data: bytes, position: int) -> bool:
    return data[position] in _HEX_DIGITS


_TOKENS: dict[str, re.Pattern[bytes]] = {}
_PATTERNS = {
    "percent": rb"%([0-9A-Fa-f]{2})",
    # \uXXXX (and surrogate pairs), \xXX, octal, and one-character escapes (\/ \n \" \\ …)
    "escape": rb"\\(?:u([dD][89abAB][0-9A-Fa-f]{2})\\u([dD][c-fC-F][0-9A-Fa-f]{2})"
              rb"|u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2})|([0-7]{1,3})|(.))",
    "html": rb"&(?:#[xX]0*([0-9A-Fa-f]{1,6});?|#0*([0-9]{1,7});?|([A-Za-z][A-Za-z0-9]{1,31});)",
}
_SIMPLE_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b",
                   ord("f"): b"\f", ord("v"): b"\v", ord("0"): b"\0"}


def _pattern(encoding: str) -> re.Pattern[bytes]:
    if encoding not in _TOKENS:
        _TOKENS[encoding] = re.compile(_PATTERNS[encoding], re.DOTALL)
    return _TOKENS[encoding]


def _value(encoding: str, match: re.Match[bytes]) -> bytes | None:
    """The bytes an escape stands for (UTF-8 for characters), None if it stands for none."""
    if encoding == "percent":
        return bytes.fromhex(match.group(1).decode())
    if encoding == "escape":
        high, low, code, byte, octal, char = match.groups()
        if high is not None:
            point = 0x10000 + (int(high, 16) - 0xD800) * 0x400 + int(low, 16) - 0xDC00
            return _utf8(point)
        if code is not None:
            return _utf8(int(code, 16))
        if byte is not None:
            return bytes((int(byte, 16),))
        if octal is not None:
            return bytes((int(octal, 8) & 0xFF,))
        return _SIMPLE_ESCAPES.get(char[0], char)
    hexadecimal, decimal, name = match.groups()
    if name is not None:
        return _entity(name)
    point = int(hexadecimal, 16) if hexadecimal is not None else int(decimal)
    return _utf8(point)


def _utf8(point: int) -> bytes | None:
    if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
        return None
    return chr(point).encode("utf-8")


def _entity(name: bytes) -> bytes | None:
    """An HTML5 named character reference (`lowbar`, `UnderBar`, `sol`, `equals`…)."""
    from html.entities import html5  # only when an entity-encoded prefix was seen

    value = html5.get(name.decode("ascii") + ";")
    return value.encode("utf-8") if value is not None else None
