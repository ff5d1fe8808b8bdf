"""Where encoded key prefixes are, and the text around one decoded.

The engine's gates for hidden keys (see `engine.py`): the base64 forms of the
prefixes (`encodings.py`; also of how percent-encoding and base64 write them, for
one encoding inside another), their hex forms, and the escaped forms of their
separators (`escapes.py`), searched for only inside the runs long enough to hold a
key, gathered into one text so that each form costs one pass, not one per run.
Built on first use: most commits the pre-commit hook checks hold no such run, and
choosing the anchors of ~150 forms costs more than the rest of the engine's set-up.
"""

from __future__ import annotations

import binascii
import re
from bisect import bisect_right

from keyscan import escapes
from keyscan.encodings import (
    NESTED_HINT,
    NESTED_MARK,
    Joined,
    Rejoined,
    base64_forms,
    decode_run,
    wrapped,
)
from keyscan.literals import LiteralIndex

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, Protocol

    class View(Protocol):
        """Decoded text and where its bytes came from (`encodings.Decoded`, `Unescaped`…)."""

        @property
        def data(self) -> bytes: ...
        @property
        def end(self) -> int: ...
        @property
        def encoding(self) -> str: ...

        def encoded_offset(self, position: int) -> int: ...
        def encoded_end(self, position: int) -> int: ...

    Hit = tuple[int, str, Joined | None, int]  # where, encoding, wrapped lines, where in them

_MARKS = {"percent": b"%", "escape": b"\\", "html": b"&"}  # escapes that base64 may be in


class Gates:
    """The encoded forms of `prefixes`, found in runs of `run` or more characters."""

    def __init__(self, prefixes: Iterable[bytes], run: int) -> None:
        prefixes = set(prefixes)
        self._run = run
        # The prefixes, and how the encodings that base64 may wrap write them: escaped
        # (base64 of a percent-encoded key) or base64 (base64 of base64).
        inner = {form for prefix in prefixes for form in escapes.inner_forms(prefix)}
        inner |= {form for prefix in prefixes for form in base64_forms(prefix) if len(form) >= 8}
        forms = [form for prefix in prefixes for form in base64_forms(prefix) if len(form) >= 4]
        inner_forms = [form for literal in inner for form in base64_forms(literal)
                       if len(form) >= 6]
        nested = base64_forms(NESTED_MARK) if forms else []
        hexed = escapes.hex_forms(prefixes)
        self._base64 = LiteralIndex(forms, min_anchor=6)
        self._inner = LiteralIndex(inner_forms, min_anchor=6)
        self._nested = LiteralIndex(nested, min_anchor=6)
        self._hex = LiteralIndex(hexed, min_anchor=6)
        self._escaped = {
            mark: (LiteralIndex(separators if prefixes else (), min_anchor=2), kind)
            for kind, (mark, separators) in escapes.SEPARATORS.items()
        }
        escaped = [form for _, separators in escapes.SEPARATORS.values() for form in separators]
        self._every = (forms + inner_forms + nested + hexed, escaped if prefixes else [])
        self._any: Any = None  # one RE2 pattern of every form above: see `may_hit`
        self._form_at: Callable[[bytes, int], bool] | None = None  # see `form_at`
        self._spread = _spread_all(*self._every)  # see `spread_forms`

    def may_hit(self, data: bytes) -> bool:
        """False when no form that `hits` looks for occurs in `data`, spaces, tabs and
        line breaks allowed between its bytes: then `hits` finds nothing in any run of
        `data` (a run holds none of those, and the lines of wrapped base64 that `hits`
        joins are joined across nothing else). One RE2 pass, where `hits` costs a Python
        step per run and a pass per anchor: source code has runs everywhere (long
        identifiers) and encoded prefixes almost nowhere."""
        if self._any is None:
            self.warm()
        return self._any is True or self._any.search(data) is not None

    def form_at(self, data: bytes, at: int) -> bool:
        """Does a form `may_hit` looks for start at data[at] (once `ready`)?"""
        if self._any is True:
            return True
        if self._form_at is None:
            self._form_at = _anchored(self._any)
        return self._form_at(data, at)

    @property
    def ready(self) -> bool:
        """`may_hit`'s pattern is compiled: a call costs one pass, nothing more."""
        return self._any is not None

    def warm(self) -> None:
        """Compile now the pattern `may_hit` would compile when first called."""
        if self._any is None:
            self._any = _any_of(self.spread_forms())

    def spread_forms(self) -> bytes | None:
        """An RE2 pattern (Latin-1) of every form `hits` looks for, any spaces, tabs and
        line breaks allowed between its bytes; None when there is none (then anything
        may hit). The same question as taking the whitespace out first and searching for
        the forms as they are, without the copy (which cost more than the search)."""
        return self._spread

    def hits(self, data: bytes, regions: list[tuple[int, int]], depth: int,
              around: int | None = None) -> Iterator[Hit]:
        """Encoded prefixes in the runs `regions` (where, encoding, and for base64 wrapped
        over lines the lines joined and where in them); lazily, so `quiet` stops at the
        first. Lines are joined to their ends, or (`around`) that many on each side."""
        blocks: list[Joined] = []
        rest: list[tuple[int, int]] = []  # the runs that are no line of wrapped base64
        for low, high in regions:
            if blocks and low < blocks[-1].end:
                continue  # a line of the block before
            if around is None:
                block = wrapped(data, low, high, self._run)
            else:
                block = wrapped(data, low, high, self._run, back=around, ahead=around)
            if block is None:
                rest.append((low, high))
                continue
            blocks.append(block)
            for at, _ in self._base64.find(block.data):
                yield block.origin(at), "base64", block, at
            if depth == 0 and (len(block.data) <= CHAINS_ANYWHERE
                               or _text_inside(block.data, 0, len(block.data))):
                for at, _ in self._inner.find(block.data):
                    yield block.origin(at), "base64", block, at
        starts = [block.offset for block in blocks]
        text, back = _gathered(data, rest)
        found = [back(at) for at, _ in self._base64.find(text)]
        if depth == 0:  # at depth 1, what base64 wraps could wrap nothing more
            if len(rest) <= FEW_RUNS or sum(high - low for low, high in rest) > CHAINS_ANYWHERE:
                inner_text, inner_back = _gathered(
                    data, [(low, high) for low, high in rest if _text_inside(data, low, high)])
            else:
                inner_text, inner_back = text, back
            found += [inner_back(at) for at, _ in self._inner.find(inner_text)]
        for at in found:
            before = bisect_right(starts, at) - 1  # the block that starts before it
            if before < 0 or at >= blocks[before].end:  # else found in the joined lines
                yield at, "base64", None, at
        for at, _ in self._hex.find(text):
            yield back(at), "hex", None, 0
        lowered = b""
        for mark, (forms, kind) in self._escaped.items():
            if text.find(mark) != -1:  # base64 and hex have none: no pass
                lowered = lowered or text.lower()  # the escapes' hex digits: in any case
                yield from ((back(at), kind, None, 0) for at, _ in forms.find(lowered))
        if depth == 0 and regions:
            nested = [back(at) for at, _ in self._nested.find(text)]
            if nested and _mentions(data, NESTED_HINT):
                yield from ((at, "base64", None, at) for at in nested)

    def views(self, data: bytes, at: int, kind: str, block: Joined | None,
               inner_at: int) -> list[View]:
        """The text around a hit, decoded: base64 at each alignment (of the joined lines,
        when wrapped), and base64 that an escaping encoding broke up (`%2F`, `\\/`),
        unescaped first; or the escaped text, unescaped."""
        if kind != "base64":
            unescaped = escapes.decode(data, at, kind)
            return [unescaped] if unescaped is not None else []
        views: list[View] = []
        if block is not None:
            views += [Rejoined(block, run) for run in decode_run(block.data, inner_at)]
        else:
            views += decode_run(data, at)
        around = data[max(0, at - escapes.BEFORE) : at + escapes.AFTER]
        for encoding, mark in _MARKS.items():
            if mark in around:
                unescaped = escapes.decode(data, at, encoding)
                if unescaped is not None:
                    views.append(unescaped)
        return views


def _any_of(pattern: bytes | None) -> Any:
    """`pattern` compiled by RE2 for bytes; True (anything may hit) when it is None."""
    if pattern is None:
        return True
    import re2  # type: ignore[import-untyped]  # like the engine's signs: off the hook's path

    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # bytes as bytes, not UTF-8
    return re2.compile(pattern, options)


def _anchored(pattern: Any) -> Callable[[bytes, int], bool]:
    """Does `pattern` match at data[at]? Straight into RE2's C method where the module
    has it (as `engine._raw_search`: no match object per call)."""
    import re2

    regexp = getattr(pattern, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "ANCHOR_START", None)
    if regexp is None or anchor is None or not hasattr(regexp, "Match"):
        return lambda data, at: pattern.match(data, at) is not None
    match, nothing = regexp.Match, (-1, -1)
    return lambda data, at: match(anchor, data, at, len(data))[0] != nothing


def _spread_all(forms: list[bytes], folded: list[bytes]) -> bytes | None:
    """One pattern for any of `forms` (as they are) or of `folded` (in any case), spaces,
    tabs and line breaks allowed between their bytes; None when there are none."""
    either = [b"|".join(_spread(form) for form in sorted(set(forms)))] if forms else []
    if folded:
        either.append(b"(?i:%s)" % b"|".join(_spread(form) for form in sorted(set(folded))))
    return b"|".join(either) if either else None


def _spread(form: bytes) -> bytes:
    """`form` as a pattern with any spaces, tabs and line breaks between its bytes."""
    return b"[ \t\r\n]*".join(re.escape(form[at : at + 1]) for at in range(len(form)))


def _gathered(data: bytes, regions: list[tuple[int, int]]
              ) -> tuple[bytes, Callable[[int], int]]:
    """The regions of `data` in one text, a space between them (no needle holds one), and
    where a byte of it is in `data`: each needle's pass then costs one call, not one per
    region (source code has thousands of short runs). Mostly runs: `data` itself."""
    if sum(high - low for low, high in regions) > len(data) // 2:
        return data, int
    text = b" ".join(data[low:high] for low, high in regions)
    starts, offsets = [], []
    position = 0
    for low, high in regions:
        starts.append(position)
        offsets.append(low)
        position += high - low + 1

    def back(at: int) -> int:
        index = bisect_right(starts, at) - 1
        return offsets[index] + at - starts[index]

    return text, back


def _text_inside(data: bytes, low: int, high: int) -> bool:
    """Does the base64 run data[low:high] begin with the base64 of text (at one of its 4
    alignments)? Base64 of images, fonts and archives does not: what it wraps is no
    percent-encoded or base64 text, so the chains' forms need no pass over it."""
    sample = data[low : min(high, low + 256)]
    for shift in range(4):
        piece = sample[shift : shift + (len(sample) - shift) // 4 * 4]
        try:
            decoded = binascii.a2b_base64(piece)
        except binascii.Error:
            continue
        if decoded and len(decoded.translate(None, _TEXT)) * 10 <= len(decoded):
            return True
    return False


_TEXT = bytes(range(32, 127)) + b"\t\n\r"
# Runs past this many bytes in all are searched for the forms of one encoding inside
# another only where they hold text (`_text_inside`): a file of base64 data would
# otherwise cost ~30 passes more, for base64 of base64 and of percent-encoding.
CHAINS_ANYWHERE = 256 << 10
FEW_RUNS = 3  # or when there are so few runs that looking at each costs less than ~30 passes


def _mentions(data: bytes, word: bytes) -> bool:
    """Does lowercase `word` occur in `data`, in any case? (Rare: no chunking needed.)"""
    return re.search(re.escape(word), data, re.IGNORECASE) is not None
