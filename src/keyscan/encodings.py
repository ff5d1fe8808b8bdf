"""How keys hide: base64 (once, or twice inside base64 JSON) and UTF-16 text.

Base64 is found without decoding everything that looks like base64: the known
key prefixes are encoded ahead of time at each of the three byte alignments,
those encoded forms are searched for like any literal, and only the base64 run
around a hit is decoded and scanned again.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64encode

from keyscan.model import Value

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_RUN = re.compile(rb"[A-Za-z0-9+/]*")
_RUN_LIMIT = 8192  # decode at most this much on each side of a hit: a huge blob stays cheap

# Base64 inside base64: a `.dockerconfigjson` (itself base64 in a Kubernetes Secret) holds
# `"auth": base64(user:key)`. The outer text is found through the encoded forms of `"auth"`,
# searched only at the outermost level and only in text that mentions docker (the
# Secret's `.dockerconfigjson`/`.dockercfg`, DOCKER_AUTH_CONFIG): registries' auth files
# are where base64 nests, and three passes over every file would cost 15% of a scan.
NESTED_MARK = b'"auth"'
NESTED_HINT = b"docker"  # lowercase: found with the keywords, case-insensitively

ENCODING = "base64"


def base64_forms(literal: bytes) -> list[bytes]:
    """The base64 text `literal` turns into at each alignment: only characters it alone decides."""
    forms = []
    for pad in range(3):
        encoded = b64encode(b"\0" * pad + literal)
        first = -(-8 * pad // 6)  # the first character no pad bit flows into
        last = 8 * (pad + len(literal)) // 6  # the last one no following byte flows into
        forms.append(encoded[first:last])
    return forms


class Decoded(Value):
    """Bytes decoded from the base64 text at [offset, end) in the encoded data."""

    __slots__ = ("data", "end", "offset")

    def __init__(self, offset: int, end: int, data: bytes) -> None:
        self.offset: Final = offset
        self.end: Final = end
        self.data: Final = data

    def encoded_offset(self, position: int) -> int:
        """Where decoded byte `position` sits in the encoded data: the start of its 4-char group."""
        return self.offset + position // 3 * 4


def decode_run(data: bytes, at: int) -> list[Decoded]:
    """Decode the base64 run around `at` at each of its 4 possible starting alignments.

    The run's true start is unknown (a '/' or a letter before it looks the same),
    so every alignment is tried; wrong ones decode to noise that matches nothing.
    """
    start = at
    while start > 0 and at - start < _RUN_LIMIT and data[start - 1] in _ALPHABET:
        start -= 1
    match = _RUN.match(data, at, min(len(data), at + _RUN_LIMIT))
    end = match.end() if match else at
    runs = []
    for shift in range(4):
        text = data[start + shift : end]
        text = text[: len(text) - len(text) % 4] + _tail(data, start + shift, end)
        try:
            decoded = binascii.a2b_base64(text)
        except binascii.Error:
            continue
        if decoded:
            runs.append(Decoded(start + shift, end, decoded))
    return runs


def run_length_needed(min_width: int) -> int:
    """The shortest base64 run that can decode to `min_width` bytes (R chars give at most
    3R/4): a run shorter than this cannot hold a match of a pattern that wide."""
    return -(-4 * min_width // 3)


def long_runs(data: bytes, length: int) -> list[tuple[int, int]]:
    """[low, high) of every run of `length` or more base64 characters in `data`, in order.

    Nine passes of `bytes.find` for the encoded prefixes would cost more than every
    other step of a scan together, while in ordinary text long base64 runs are rare:
    a translation to two classes and a search for `length` alphabet characters in a
    row (which `bytes.find` does at memory speed) find them all. A chunk at a time,
    so a big file costs one chunk of extra memory, not a second copy of itself.
    """
    if length < 2:  # too short to be rare: search everything
        return [(0, len(data))] if data else []
    needle = b"A" * length
    regions: list[tuple[int, int]] = []
    for base in range(0, len(data), _CHUNK):
        piece = data[base : base + _CHUNK + length].translate(_CLASSES)
        at = piece.find(needle)
        while -1 < at < _CHUNK:  # later ones start in the next chunk and are found there
            low = base + piece.rfind(b" ", 0, at) + 1
            end = piece.find(b" ", at + length)
            high = base + (end if end != -1 else len(piece))
            if low == base or end == -1:  # it may go on beyond the piece
                low, high = run_bounds(data, low, high)
            if not regions or low >= regions[-1][1]:  # else: met in the previous chunk
                regions.append((low, high))
            at = piece.find(needle, end) if end != -1 else -1
    return regions


def run_bounds(data: bytes, start: int, end: int) -> tuple[int, int]:
    """The whole base64 run that data[start:end] (all base64 characters) is part of."""
    while start > 0:
        piece = data[max(0, start - _STEP) : start].translate(_CLASSES)
        cut = piece.rfind(b" ")
        start -= len(piece) - cut - 1 if cut != -1 else len(piece)
        if cut != -1:
            break
    while end < len(data):
        piece = data[end : end + _STEP].translate(_CLASSES)
        cut = piece.find(b" ")
        end += cut if cut != -1 else len(piece)
        if cut != -1:
            break
    return start, end


_STEP = 4096
_CHUNK = 1 << 20
_CLASSES = bytes(ord("A") if byte in _ALPHABET else ord(" ") for byte in range(256))


def _tail(data: bytes, start: int, end: int) -> bytes:
    """The last, partial 4-char group, padded: the key may end inside it."""
    partial = (end - start) % 4
    if partial < 2:  # one leftover character holds no whole byte
        return b""
    return data[end - partial : end] + b"=" * (4 - partial)


def from_utf16(data: bytes) -> bytes | None:
    """UTF-8 for a UTF-16 text with a byte-order mark (BOM dropped), else None."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace").encode("utf-8")
    return None
