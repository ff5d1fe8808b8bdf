"""How keys hide: base64 (unbroken, or wrapped over lines) and UTF-16 text.

Base64 is found without decoding everything that looks like base64: the known
key prefixes are encoded ahead of time at each of the three byte alignments,
those encoded forms are searched for like any literal, and only the base64 run
around a hit is decoded and scanned again. Base64 wrapped over lines (PEM bodies,
MIME, YAML block scalars, CRLF or not) is joined line to line around a run first,
so a form cut by a line end is found too.

The runs searched are those of base64's alphabet plus `% \\ & # ;`, the marks of
the escaping encodings (`escapes.py`), whose forms are searched in the same runs.
"""

from __future__ import annotations

import binascii
import re

from keyscan.model import Value

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_MARKS = frozenset(b"%\\&#;")  # escapes' marks: a percent-encoded key is one run, too
RUN_BYTES = _ALPHABET | _MARKS  # what `long_runs` counts as a run's characters
# Patterns, not compiled regexes: `re` compiles and caches them on first use, and only
# text with a hit of an encoded prefix uses them (the hook's start-up spares ~0.3 ms).
_RUN = rb"[A-Za-z0-9+/]*"
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
        encoded = binascii.b2a_base64(b"\0" * pad + literal, newline=False)  # b64encode's
        first = -(-8 * pad // 6)  # the first character no pad bit flows into
        last = 8 * (pad + len(literal)) // 6  # the last one no following byte flows into
        forms.append(encoded[first:last])
    return forms


class Decoded(Value):
    """Bytes decoded from the base64 text at [offset, end) in the encoded data."""

    __slots__ = ("data", "end", "offset")
    encoding = ENCODING

    def __init__(self, offset: int, end: int, data: bytes) -> None:
        self.offset: Final = offset
        self.end: Final = end
        self.data: Final = data

    def encoded_offset(self, position: int) -> int:
        """Where decoded byte `position` sits in the encoded data: the start of its 4-char group."""
        return self.offset + position // 3 * 4

    def encoded_end(self, position: int) -> int:
        """Where the encoded text of decoded bytes [.., position) ends: its last group's end."""
        return self.offset + -(-position // 3) * 4


class Joined:
    """Lines of wrapped base64, data[offset:end], without their line breaks and indents."""

    __slots__ = ("_pieces", "_text", "data", "end", "offset")

    def __init__(self, data: bytes, offset: int, end: int) -> None:
        self._text = data[offset:end]
        self.data = self._text.translate(None, b"\r\n \t")  # only line breaks have these
        self.offset, self.end = offset, end
        self._pieces: list[tuple[int, int]] = []  # where each line is, found when asked

    def origin(self, position: int) -> int:
        """Where byte `position` of the joined text is in the data."""
        if not self._pieces:
            self._pieces = [m.span() for m in re.finditer(_LINE, self._text)]
        for low, high in self._pieces:
            if position < high - low:
                return self.offset + low + position
            position -= high - low
        return self.end


class Rejoined:
    """A base64 run decoded out of `Joined` text, placed in the wrapped data."""

    __slots__ = ("_joined", "_run", "data", "end", "offset")
    encoding = ENCODING

    def __init__(self, joined: Joined, run: Decoded) -> None:
        self._joined, self._run, self.data = joined, run, run.data
        self.offset, self.end = joined.origin(run.offset), joined.origin(run.end - 1) + 1

    def encoded_offset(self, position: int) -> int:
        return self._joined.origin(self._run.encoded_offset(position))

    def encoded_end(self, position: int) -> int:
        return self._joined.origin(self._run.encoded_end(position) - 1) + 1


MAX_INDENT = 62  # of a line of wrapped base64 that `wrapped` looks back to


def wrapped(data: bytes, start: int, end: int, min_line: int, back: int = 0,
            ahead: int = 0) -> Joined | None:
    """The lines of wrapped base64 that the run data[start:end] is one of, joined. Each
    line is the whole of its line after the indentation (a YAML plain scalar's first
    line, `key: AAAA…`, is not joined); the lines after it follow while each line
    before is `min_line` or longer and the next begins right after its line break and
    indentation (the last may be shorter, and must end its line), at most `ahead` of
    them if that is given; `back` lines before it likewise. None when the run is no
    line of wrapped base64."""
    if not _starts_line(data, start):
        return None  # text before it on its line: code, not lines of base64
    low = start
    for _ in range(back):
        head = data[max(0, low - MAX_INDENT - 2) : low]
        cut = head.rfind(b"\n")
        if cut == -1 or head[cut + 1 :].strip(b" \t"):
            break
        line_end = low - len(head) + cut
        if line_end > 0 and data[line_end - 1] == 13:  # CRLF
            line_end -= 1
        line_start = _run_start(data, line_end)
        if line_end - line_start < min_line or not _starts_line(data, line_start):
            break
        low = line_start
    high = end
    if end - start >= min_line:
        following = _following(min_line, ahead).match(data, end)  # matches, if only ""
        high = following.end() if following else end
    return Joined(data, low, high) if low < start or high > end else None


def _starts_line(data: bytes, start: int) -> bool:
    """Is data[start] the first character of its line after the indentation?"""
    head = data[max(0, start - MAX_INDENT - 2) : start]
    cut = head.rfind(b"\n")
    if cut == -1 and start > len(head):
        return False  # an indent longer than wrapped base64 has
    return not head[cut + 1 :].strip(b" \t")


def _following(min_line: int, ahead: int) -> re.Pattern[bytes]:
    """The lines that follow a line of wrapped base64 (see `wrapped`): one regex, so a
    megabyte of PEM costs one C loop, not a Python step per line."""
    key = (min_line, ahead)
    if key not in _FOLLOWING:
        line = rb"\r?\n[ \t]*[A-Za-z0-9+/]%s(?=[\r\n=\"']|\Z)"
        full, last = line % b"{%d,}" % min_line, line % b"+"
        count = b"*" if not ahead else b"{0,%d}" % (ahead - 1)
        _FOLLOWING[key] = re.compile(b"(?:%s)%s(?:%s)?" % (full, count, last))
    return _FOLLOWING[key]


_FOLLOWING: dict[tuple[int, int], re.Pattern[bytes]] = {}
_LINE = rb"[^\r\n \t]+"  # a pattern, as `_RUN`


def _run_start(data: bytes, end: int) -> int:
    """Where the run of base64 characters that ends at `end` starts (bounded)."""
    piece = data[max(0, end - _RUN_LIMIT) : end].translate(_PURE)
    cut = piece.rfind(b" ")
    return end - len(piece) + cut + 1


def decode_run(data: bytes, at: int) -> list[Decoded]:
    """Decode the base64 run around `at` at each of its 4 possible starting alignments.

    The run's true start is unknown (a '/' or a letter before it looks the same),
    so every alignment is tried; wrong ones decode to noise that matches nothing.
    """
    start = at
    while start > 0 and at - start < _RUN_LIMIT and data[start - 1] in _ALPHABET:
        start -= 1
    match = re.compile(_RUN).match(data, at, min(len(data), at + _RUN_LIMIT))
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
    """[low, high) of every run of `length` or more base64 characters (or escapes'
    marks, see the module's doc) in `data`, in order.

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
_CLASSES = bytes(ord("A") if byte in _ALPHABET or byte in _MARKS else ord(" ")
                 for byte in range(256))
_PURE = bytes(ord("A") if byte in _ALPHABET else ord(" ") for byte in range(256))


def _tail(data: bytes, start: int, end: int) -> bytes:
    """The last, partial 4-char group, padded: the key may end inside it."""
    partial = (end - start) % 4
    if partial < 2:  # one leftover character holds no whole byte
        return b""
    return data[end - partial : end] + b"=" * (4 - partial)


def from_utf16(data: bytes) -> bytes | None:
    """UTF-8 for a UTF-16 text (BOM dropped, if it has one), else None."""
    codec = utf16_codec(data)
    return data.decode(codec, "replace").encode("utf-8") if codec else None


_SAMPLE = 4096  # bytes of a text's beginning that tell UTF-16 without a BOM


def utf16_codec(data: bytes) -> str | None:
    """The codec of UTF-16 text: by its byte-order mark, or without one (as Windows
    tools write it) by its beginning: ASCII-range characters make every other byte 0,
    the odd ones in little-endian, the even ones in big-endian; binary data has zeros
    at both (or none). None when `data` is not UTF-16."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    if data.find(b"\0", 0, _SAMPLE) == -1:  # most text: one memchr decides
        return None
    sample = data[: _SAMPLE - _SAMPLE % 2] if len(data) >= _SAMPLE else data[: len(data) & ~1]
    pairs = len(sample) // 2
    if pairs < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd * 10 >= pairs * 6 and even * 50 <= pairs:
        return "utf-16-le"
    if even * 10 >= pairs * 6 and odd * 50 <= pairs:
        return "utf-16-be"
    return None
