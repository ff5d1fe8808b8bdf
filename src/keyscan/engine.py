"""Fragment -> Findings. Pure: no files, no git, no network.

Bytes in, characters out. The data is searched once per *anchor* (a literal the
rules' keywords share, see `literals.py`); each rule's regex runs only in small
windows around its keywords, and line/column are computed only for what is
found. Keys hidden in base64, percent-encoding, string escapes, HTML entities or
hex are found through the encoded forms of the rules' prefixes (`encodings.py`,
`escapes.py`), searched for only inside runs long enough to hold a match
(`encodings.long_runs`: one translation and one `find`, where the forms would cost
dozens of passes), and reported at the encoded text. Only the text around a hit is
decoded, and scanned again as any text is (so one encoding inside another is found
too, to `MAX_DEPTH` levels); `encoding` names them outermost first
(`"base64/percent"`).

Matches on a line holding `keyscan:allow` are dropped here (the line is only
known here) and counted: `scan_counted` returns that count, which sources add to
`stats.suppressed["keyscan:allow"]`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from keyscan.encodings import (
    MAX_INDENT,
    RUN_BYTES,
    from_utf16,
    long_runs,
    run_bounds,
    run_length_needed,
)
from keyscan.literals import LiteralIndex
from keyscan.model import Finding, Fragment, Rule, Value

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from keyscan.gates import Gates, Hit

ALLOW_MARK = b"keyscan:allow"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# A regex runs from this far before a keyword to this far after it. A match must
# contain its keyword and fit in the window: a key is at most ~140 bytes, a
# vendor-named setting at most ~100 bytes of name before the vendor's name.
BEFORE = 256
AFTER = 768
CHUNK = 1 << 20  # bytes lowercased at a time to find keywords
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
# Places a warmed engine looks at one by one for keywords and forms (`_matches`); in a
# text with more, the literal index (a pass per anchor) costs less.
MANY_PLACES = 256
MAX_DEPTH = 2  # one encoding inside another (.dockerconfigjson in a Kubernetes Secret)


class _Match(Value):
    __slots__ = ("encoding", "end", "rule", "secret", "start")

    def __init__(
        self, rule: int, start: int, end: int, secret: bytes, encoding: str | None = None
    ) -> None:
        self.rule: Final = rule  # index into Engine.rules
        self.start: Final = start  # where the secret starts (encoded: where its encoding does)
        self.end: Final = end
        self.secret: Final = secret
        self.encoding: Final = encoding


class Engine:
    """Cheap to build; pickles as its rules, so a worker process can rebuild it."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._by_keyword: dict[bytes, list[int]] = {}
        for index, rule in enumerate(self.rules):
            for keyword in rule.keywords:
                self._by_keyword.setdefault(keyword, []).append(index)
        needles = list(self._by_keyword)
        self._keywords = LiteralIndex(needles, min_anchor=4)
        self._by_start: dict[int, list[bytes]] = {}  # first byte (lowercase) -> keywords
        for needle in needles:
            self._by_start.setdefault(needle[0], []).append(needle)
        self._overlap = max(map(len, needles), default=1) - 1  # a keyword across a chunk's edge
        # Runs shorter than this decode to less than any rule can match: not searched.
        # (Base64 of W bytes is 4W/3 characters; an escaped key is 2+ longer than itself.)
        width = min((_width(rule) for rule in self.rules), default=0)
        self._run = min(run_length_needed(width), width + 2)
        # How far from a changed byte a change can make or unmake a sign (see `quiet`).
        self.reach = max(self._overlap + 1, self._run)
        self._prefixes = frozenset(p.encode() for rule in self.rules for p in rule.prefixes)
        self._gates: Gates | None = None  # built when first needed: see `gates.py`
        self._signs: _Signs | None = None  # built when `quiet` is first asked

    def warm(self) -> None:
        """Build now what the first `quiet` or finding would (the RE2 patterns, the gates,
        the rules' patterns, hashlib): worker processes forked after this inherit them,
        instead of each building its own before it can begin."""
        if self._signs is None and self._run > 1:
            self._built_signs()
        self._built_gates().warm()
        for rule in self.rules:
            rule.pattern  # noqa: B018  (a shipped rule's is compiled when first asked for)
        import hashlib  # noqa: F401  (what a finding's sha256 imports)

    def __reduce__(self) -> tuple[type[Engine], tuple[tuple[Rule, ...]]]:
        return (Engine, (self.rules,))

    def scan(self, fragment: Fragment) -> list[Finding]:
        """Every finding in `fragment`, except those on a `keyscan:allow` line."""
        return self.scan_counted(fragment)[0]

    def scan_counted(self, fragment: Fragment, *, allowed_at: list[tuple[int, int]] | None = None,
                     as_is: bool = False) -> tuple[list[Finding], int]:
        """(findings, how many matches a `keyscan:allow` on their line suppressed); the
        line and column of each of those into `allowed_at` if given (windows count each
        once: `sources/windows.py`).

        UTF-16 text is scanned converted to UTF-8 (never `as_is`: windows convert a whole
        stream). Without a byte-order mark that is a guess from the text's beginning
        (`encodings.utf16_codec`), so the bytes as they are are scanned too: a binary
        file that begins like UTF-16 hides nothing."""
        findings: list[Finding] = []
        allowed = 0
        converted = None if as_is else from_utf16(fragment.data)
        texts = [converted] if converted is not None else []
        if converted is None or fragment.data[:2] not in UTF16_BOMS:
            texts.append(fragment.data)
        for data in texts:
            known = {(f.rule_id, f.secret) for f in findings}
            locate = _Locator(data)
            for match in sorted(self._matches(data, depth=0), key=lambda m: m.start):
                line, column = locate(match.start)
                if locate.on_allowed_line():
                    allowed += 1
                    if allowed_at is not None:
                        allowed_at.append((line, column))
                    continue
                finding = self._finding(match, line, column, fragment)
                if (finding.rule_id, finding.secret) not in known:
                    findings.append(finding)
        return findings, allowed

    def quiet(self, data: bytes, low: int = 0, high: int | None = None) -> bool:
        """True when data[low:high] shows no sign of a finding: no keyword (in any case)
        and no encoded prefix inside a run long enough to hold a key (a run that crosses
        the window's edges is followed to its ends, and a line of wrapped base64 is
        joined with its neighbours). A quiet text has no findings; a text is quiet iff
        every window of it is (windows overlapping by `reach`). Not for UTF-16 text,
        which the engine converts first.
        """
        high = len(data) if high is None else high
        # An edit at the start of a line of wrapped base64 (the last one may be short)
        # can complete a prefix that the line end before it cut: the runs are sought
        # from far enough back to hold that line's end too.
        runs_low = low
        line = data.rfind(b"\n", max(0, low - MAX_INDENT - 2), min(high, low + self._run))
        if line > 0:
            end = line - 1 if data[line - 1] == 13 else line  # CRLF
            if end > 0 and data[end - 1] in _BASE64:
                runs_low = max(0, min(low, end - self._run))
        whole = runs_low == 0 and high == len(data)
        one_pass = False  # a whole text's one pass found a form (`Gates.may_hit` is True)
        if self._run > 1:
            signs = self._signs or self._built_signs()
            # A whole text: one pass for a keyword or an encoded prefix's form anywhere
            # (in a run or not); a window: for a keyword or a long run in it.
            one_pass = whole and signs.whole is not None
            sign = (signs.first_in_whole(data) if one_pass
                    else signs.first_sign(data, runs_low, high))
            if sign is None:
                return True  # most texts and windows of a history end here
            if sign < 0 or signs.has_keyword(data, sign, high):
                return False  # a keyword (the first sign, or after the first run or form)
        elif any(True for _ in self._keyword_hits(data[low:high])):
            return False
        if whole and not one_pass and not self._built_gates().may_hit(data):
            return True  # runs, but no encoded prefix anywhere: a whole text in one pass
        window = data[runs_low:high]  # (copied only once the cheap answers are out)
        regions = []
        for start, end in long_runs(window, self._run):
            if start == 0 or end == len(window):  # it may go on beyond the window
                regions.append(run_bounds(data, runs_low + start, runs_low + end))
            else:
                regions.append((runs_low + start, runs_low + end))
        return not regions or not any(True for _ in self._hits(data, regions, 0, around=1))

    def _hits(self, data: bytes, regions: list[tuple[int, int]], depth: int,
              around: int | None = None) -> Iterator[Hit]:
        return self._built_gates().hits(data, regions, depth, around)

    def _built_signs(self) -> _Signs:
        self._signs = _Signs(self._by_keyword, self._run, self._built_gates().spread_forms())
        return self._signs

    def _built_gates(self) -> Gates:
        if self._gates is None:
            from keyscan.gates import Gates  # only for text with a run long enough for a key

            self._gates = Gates(self._prefixes, self._run)
        return self._gates

    def _matches(self, data: bytes, depth: int) -> list[_Match]:
        starts: dict[int, list[int]] = {}  # rule index -> where its keywords start
        signs, gates = self._signs, self._gates
        forms: bool | None = None  # does an encoded prefix's form occur (None: not asked)
        hits = None
        if signs is not None and signs.whole is not None and gates is not None and gates.ready:
            # a warmed engine: keywords and forms in one RE2 pass (see `_Signs.whole`),
            # ~2x faster than a pass per anchor and one for the forms; not for text full
            # of keywords (a place at a time costs more there than the literal index)
            both = signs.keywords_and_forms(data, self._by_start, gates.form_at)
            if both is not None:
                hits, forms = both
        if hits is None:
            hits = list(self._keyword_hits(data))
        for start, keyword in hits:
            for index in self._by_keyword[keyword]:
                starts.setdefault(index, []).append(start)
        found = self._plain(data, starts)
        if depth < MAX_DEPTH and forms is not False:
            found.extend(self._encoded(data, depth, forms is True))
        return found

    def _plain(self, data: bytes, starts: dict[int, list[int]]) -> list[_Match]:
        """Matches in the bytes as they are; where rules overlap, the most specific wins."""
        found: list[_Match] = []
        for index, keyword_starts in starts.items():
            rule = self.rules[index]
            for low, high in _windows(keyword_starts, len(data)):
                found.extend(_search(index, rule, data, low, high))
        return _most_specific(found, self.rules)

    def _keyword_hits(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Keywords, case-insensitively: the data is lowercased a chunk at a time, so a big
        file costs one chunk of extra memory, not a second copy of itself. (A warmed
        engine finds them with its RE2 patterns first: see `_matches`.)"""
        for base in range(0, len(data), CHUNK):
            chunk = data[base : base + CHUNK + self._overlap].lower()
            for start, keyword in self._keywords.find(chunk):
                if start < CHUNK:  # later ones start in the next chunk and are found there
                    yield base + start, keyword

    def _encoded(self, data: bytes, depth: int, forms: bool = False) -> list[_Match]:
        """Matches in the text around each hit of an encoded prefix (or, at the outermost
        level of text that mentions docker, of an encoded `"auth"`: base64 that may hold
        base64), decoded. Only runs long enough to hold a match are searched. (`forms`:
        the caller knows an encoded prefix's form occurs in `data`.)"""
        gates = self._gates
        if gates is not None and gates.ready:  # (a warmed engine) its pass costs less than
            if not forms and not gates.may_hit(data):  # finding the runs: most texts end here
                return []
            regions = long_runs(data, self._run)
        else:  # a small scan: a text without runs needs no gates built
            regions = long_runs(data, self._run)
            if not regions:
                return []
            gates = self._built_gates()
            if not gates.may_hit(data):
                return []  # runs, but no encoded prefix in any of them: one pass says so
        if not regions:
            return []
        decoded_until: dict[str, int] = {}
        found: list[_Match] = []
        for at, kind, block, inner_at in sorted(self._hits(data, regions, depth),
                                                key=lambda hit: hit[:2]):
            if at < decoded_until.get(kind, 0):
                continue  # inside the text decoded for an earlier hit
            for view in gates.views(data, at, kind, block, inner_at):
                until = view.end if kind == "base64" else (at + view.end) // 2
                decoded_until[kind] = max(decoded_until.get(kind, 0), until)
                for inner in self._matches(view.data, depth + 1):
                    start = view.encoded_offset(inner.start)
                    end = view.encoded_end(inner.end)
                    if inner.encoding is None and end - start == inner.end - inner.start:
                        continue  # nothing in it was decoded: the plain text's match
                    outer = view.encoding
                    name = f"{outer}/{inner.encoding}" if inner.encoding else outer
                    found.append(_Match(inner.rule, start, end, inner.secret, name))
        return _one_per_key(found)

    def _finding(self, match: _Match, line: int, column: int, fragment: Fragment) -> Finding:
        rule = self.rules[match.rule]
        secret = match.secret.decode("utf-8", "surrogateescape")
        prefixes = sorted(rule.prefixes, key=len, reverse=True)
        return Finding(
            rule_id=rule.id,
            vendor=rule.vendor,
            severity=rule.severity,
            secret=secret,
            path=fragment.path,
            line=line,
            column=column,
            prefix=next((p for p in prefixes if secret.startswith(p)), ""),
            encoding=match.encoding,
            commit=fragment.commit,
        )


class _Signs:
    """RE2 patterns for `quiet`: `first` finds the first keyword (in any case, as group 1)
    or `run` characters of a run, `keyword` a keyword, and `whole` (for a whole text) the
    first keyword (group 1) or form of an encoded prefix (`Gates.spread_forms`). Where
    they find nothing, the exact checks would find no sign either (they find a
    superset), in one linear pass where those cost a lowercased copy and a pass per
    anchor and per run: most windows a history checks are small and clean, and their
    cost was the checks' per-call overhead, which one call to C replaces. RE2 (a
    dependency already, for config patterns) because Python's `re` runs an alternation of
    literals ~60x slower. A whole text's one pass replaces three (to the first run, for
    a keyword after it, for a form): source code has a long identifier in most files."""

    __slots__ = ("_first", "_keyword", "_whole", "first", "keyword", "longest", "whole")

    def __init__(self, keywords: Iterable[bytes], run: int, forms: bytes | None) -> None:
        import re2  # type: ignore[import-untyped]  # histories only: not on the hook's path

        options = re2.Options()
        options.encoding = re2.Options.Encoding.LATIN1  # bytes as bytes, not UTF-8
        keywords = sorted(keywords)
        self.longest = max(map(len, keywords), default=0)
        words = b"|".join(re.escape(word) for word in keywords)
        sign = rb"[%s]{%d}" % (re.escape(bytes(sorted(RUN_BYTES))), run)
        # `(?i:(...))` even without keywords keeps group 1; a run never matches it empty
        self.first = re2.compile(rb"(?i:(%s))|%s" % (words, sign) if words else
                                 rb"()\x00\xff\x00|%s" % sign, options)
        self.keyword: Any = re2.compile(rb"(?i:%s)" % words, options) if words else None
        self._first = _raw_search(self.first)
        self._keyword = _raw_search(self.keyword) if words else None
        # None without forms (anything may hit): whole texts then go the windows' way
        self.whole: Any = None if forms is None else re2.compile(
            rb"(?i:(%s))|%s" % (words, forms) if words else rb"()\x00\xff\x00|%s" % forms,
            options)
        self._whole = None if forms is None else _raw_search(self.whole)

    def first_sign(self, data: bytes, low: int, high: int) -> int | None:
        """Where the first run in data[low:high] starts, -1 if a keyword comes first, None
        if there is neither."""
        spans = self._first(data, low, high)
        if spans is None:
            return None
        return -1 if spans[1][0] >= 0 else int(spans[0][0])

    def first_in_whole(self, data: bytes) -> int | None:
        """Where the first form of an encoded prefix in `data` starts, -1 if a keyword
        comes first, None if there is neither (only when `whole` is not None)."""
        assert self._whole is not None
        spans = self._whole(data, 0, len(data))
        if spans is None:
            return None
        return -1 if spans[1][0] >= 0 else int(spans[0][0])

    def has_keyword(self, data: bytes, low: int, high: int) -> bool:
        return self._keyword is not None and self._keyword(data, low, high) is not None

    def keywords_and_forms(self, data: bytes, by_start: dict[int, list[bytes]],
                           form_at: Callable[[bytes, int], bool]
                           ) -> tuple[list[tuple[int, bytes]], bool] | None:
        """(start, keyword) for every occurrence of the keywords `by_start` holds (by their
        first byte; lowercase), in any case, overlapping ones too; and whether a form of an
        encoded prefix occurs in `data`. From one pass of `whole`: RE2 finds the leftmost
        place where either starts (a keyword first: where one starts, `form_at` says
        whether a form starts there too), each keyword is compared there, and the search
        goes on from the next byte. (RE2's Latin-1 case folding may find more places than
        ASCII's; the comparison decides.) None past `MANY_PLACES` places."""
        assert self._whole is not None
        search, size = self._whole, len(data)
        hits: list[tuple[int, bytes]] = []
        forms = False
        at = places = 0
        while at < size:
            spans = search(data, at, size)
            if spans is None:
                break
            places += 1
            if places > MANY_PLACES:
                return None
            start = int(spans[0][0])
            if spans[1][0] >= 0:  # a keyword, in some case
                here = data[start : start + self.longest].lower()
                hits.extend((start, keyword) for keyword in by_start.get(here[0], ())
                            if here.startswith(keyword))
                forms = forms or form_at(data, start)
            else:
                forms = True
            at = start + 1
        return hits, forms


def _raw_search(pattern: Any) -> Callable[[bytes, int, int], Any]:
    """`pattern.search(data, low, high)`'s group spans ((-1, -1) for a group that did not
    take part), or None. Straight into RE2's C method where the `re2` module has it: its
    `search` builds a generator and a match object per call, which on the ~15,000 small
    windows of a history cost more than the searches themselves. (0 <= low <= high <=
    len(data), as `quiet` gives them.)"""
    import importlib  # here: the hook's path never builds the RE2 patterns

    regexp = getattr(pattern, "_regexp", None)
    anchor = getattr(getattr(importlib.import_module("re2"), "_Anchor", None), "UNANCHORED", None)
    if regexp is None or anchor is None or not hasattr(regexp, "Match"):
        def search(data: bytes, low: int, high: int) -> Any:
            found = pattern.search(data, low, high)
            return None if found is None else [found.span(g) for g in range(pattern.groups + 1)]
        return search
    match, nothing = regexp.Match, (-1, -1)

    def raw(data: bytes, low: int, high: int) -> Any:
        spans = match(anchor, data, low, high)
        return None if spans[0] == nothing else spans
    return raw


def _mentions(data: bytes, word: bytes) -> bool:
    """Does lowercase `word` occur in `data`, in any case? (Rare: no chunking needed.)"""
    return re.search(re.escape(word), data, re.IGNORECASE) is not None


def _width(rule: Rule) -> int:
    """The fewest bytes a match of `rule` spans (loaded rules know it: see `rules.py`)."""
    if rule.width is not None:
        return rule.width
    from keyscan.rules import min_width

    return min_width(rule.pattern)


def _windows(starts: list[int], size: int) -> Iterator[tuple[int, int]]:
    """Merged [low, high) windows around keyword starts, so no text is searched twice."""
    starts.sort()
    low, high = max(0, starts[0] - BEFORE), min(size, starts[0] + AFTER)
    for start in starts[1:]:
        if start - BEFORE > high:
            yield low, high
            low = start - BEFORE
        high = min(size, start + AFTER)
    yield low, high


def _search(index: int, rule: Rule, data: bytes, low: int, high: int) -> Iterator[_Match]:
    for match in rule.pattern.finditer(data, low, high):
        if match.end() == high < len(data):
            continue  # the window's edge may have cut it: what follows decides
        start, end = match.span(1)
        if start == end:
            continue
        secret = data[start:end]
        if rule.entropy and entropy(secret) < rule.entropy:
            continue
        yield _Match(index, start, end, secret)


def _one_per_key(found: list[_Match]) -> list[_Match]:
    """One match per rule and stretch of encoded text: the same key decoded in several
    ways (base64 alone and unescaped first, a run cut short by an escape and whole) is
    the longest secret, the earliest start on ties."""
    found.sort(key=lambda m: (m.rule, m.start))
    kept: list[_Match] = []
    for match in found:
        last = kept[-1] if kept else None
        if last is None or last.rule != match.rule or match.start >= last.end:
            kept.append(match)
        elif len(match.secret) > len(last.secret):  # overlaps the last: the same key
            kept[-1] = match
    return kept


def _most_specific(found: list[_Match], rules: tuple[Rule, ...]) -> list[_Match]:
    """One match per stretch of text: the highest-priority rule's (ties: the earlier rule)."""
    found.sort(key=lambda m: (-rules[m.rule].priority, m.rule, m.start))
    kept: list[_Match] = []
    for match in found:
        if not any(match.start < k.end and k.start < match.end for k in kept):
            kept.append(match)
    return kept


class _Locator:
    """Line and column (in characters) of increasing offsets.

    Each call costs the distance from the previous offset, not from the start of
    the data: many keys in a big file, or on one long line, stay linear.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0  # not a character
        self._line = 1
        self._line_start = 0
        self._column = 1
        self._allowed: dict[int, bool] = {}

    def __call__(self, offset: int) -> tuple[int, int]:
        data = self._data
        newline = data.rfind(b"\n", self._offset, offset)
        if newline == -1:
            self._column += len(data[self._offset : offset].decode("utf-8", "replace"))
        else:
            self._line += data.count(b"\n", self._offset, offset)
            self._line_start = newline + 1
            self._column = 1 + len(data[newline + 1 : offset].decode("utf-8", "replace"))
        self._offset = offset
        return self._line, self._column

    def on_allowed_line(self) -> bool:
        """Does the line of the last offset hold `keyscan:allow`?"""
        start = self._line_start
        if start not in self._allowed:
            end = self._data.find(b"\n", self._offset)
            stop = len(self._data) if end == -1 else end
            self._allowed[start] = self._data.find(ALLOW_MARK, start, stop) != -1
        return self._allowed[start]


def entropy(text: bytes) -> float:
    """Shannon entropy in bits per character."""
    total = len(text)
    from math import log2  # only for a match to check: a hook run rarely has one

    return -sum(n / total * log2(n / total) for n in Counter(text).values())
