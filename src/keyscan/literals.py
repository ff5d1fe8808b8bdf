"""Find many literal needles in bytes with few passes over the data.

`bytes.find` runs at gigabytes per second but each call is one pass, and a pass
costs more than anything else the engine does on clean data. So needles that
share a substring (`pe_live_`, `rp_live_`, `ap_live_` share `_live_`; every
vendor-name spelling contains `post`) are found through one shared anchor, and
the whole needle is compared only where the anchor occurs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

DENSE = 1000  # anchor hits after which each needle is searched for on its own


class LiteralIndex:
    """Finds every occurrence of every needle; anchors are chosen once, at construction."""

    def __init__(self, needles: Iterable[bytes], min_anchor: int = 4) -> None:
        self._plan = _choose_anchors(sorted(set(needles)), min_anchor)

    @property
    def anchors(self) -> tuple[bytes, ...]:
        return tuple(anchor for anchor, _ in self._plan)

    def find(self, data: bytes, low: int = 0, high: int | None = None
             ) -> Iterator[tuple[int, bytes]]:
        """(start, needle) for each occurrence inside data[low:high], each once; not sorted."""
        high = len(data) if high is None else high
        for anchor, covered in self._plan:
            seen: set[tuple[int, bytes]] = set()
            at = data.find(anchor, low, high)
            hits = 0
            while at != -1:
                hits += 1
                if hits > DENSE and len(covered) > 1:
                    # Text full of the anchor ("post" in a blogging app): one C-speed pass
                    # per needle beats checking every needle at every hit in Python.
                    yield from _each_needle(data, covered, at, seen, low, high)
                    break
                for needle, offset in covered:
                    start = at - offset
                    found = (start, needle)
                    if (start >= low and data.startswith(needle, start, high)
                            and found not in seen):
                        seen.add(found)
                        yield found
                at = data.find(anchor, at + 1, high)

    def contains_any(self, data: bytes) -> bool:
        return any(True for _ in self.find(data))


def _each_needle(
    data: bytes, covered: list[tuple[bytes, int]], at: int, seen: set[tuple[int, bytes]],
    low: int, high: int,
) -> Iterator[tuple[int, bytes]]:
    """Every occurrence of the covered needles inside [low, high) from the anchor hit at `at` on."""
    for needle, offset in covered:
        start = data.find(needle, max(low, at - offset), high)
        while start != -1:
            if (start, needle) not in seen:
                seen.add((start, needle))
                yield start, needle
            start = data.find(needle, start + 1, high)


def _choose_anchors(
    needles: list[bytes], min_anchor: int
) -> list[tuple[bytes, list[tuple[bytes, int]]]]:
    """Greedy set cover: the substring shared by the most needles first (longest on ties)."""
    plan: list[tuple[bytes, list[tuple[bytes, int]]]] = []
    substrings = {needle: _substrings(needle, min_anchor) for needle in needles}  # once
    left = list(needles)
    while left:
        counts: Counter[bytes] = Counter()
        for needle in left:
            counts.update(substrings[needle])
        anchor = max(counts, key=lambda sub: (counts[sub], len(sub), sub))
        covered = [(needle, offset) for needle in left for offset in _offsets(needle, anchor)]
        plan.append((anchor, covered))
        left = [needle for needle in left if anchor not in needle]
    return plan


def _substrings(needle: bytes, min_len: int) -> set[bytes]:
    size = min(min_len, len(needle))
    return {needle[i:j] for i in range(len(needle)) for j in range(i + size, len(needle) + 1)}


def _offsets(needle: bytes, anchor: bytes) -> list[int]:
    found = []
    at = needle.find(anchor)
    while at != -1:
        found.append(at)
        at = needle.find(anchor, at + 1)
    return found
