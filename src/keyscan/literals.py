"""Find many literal needles in bytes with few passes over the data.

`bytes.find` runs at gigabytes per second but each call is one pass, and a pass
costs more than anything else the engine does on clean data. So needles that
share a substring (`pe_live_`, `rp_live_`, `ap_live_` share `_live_`; every
vendor-name spelling contains `post`) are found through one shared anchor, and
the whole needle is compared only where the anchor occurs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

DENSE = 1000  # anchor hits after which each needle is searched for on its own


class LiteralIndex:
    """Finds every occurrence of every needle; anchors are chosen once, at construction."""

    def __init__(self, needles: Iterable[bytes], min_anchor: int = 4) -> None:
        unique = sorted(set(needles))
        self._plan = _choose_anchors(unique, min_anchor)
        self._shortest = min(map(len, unique), default=0)

    @property
    def anchors(self) -> tuple[bytes, ...]:
        return tuple(anchor for anchor, _ in self._plan)

    def find(self, data: bytes, low: int = 0, high: int | None = None
             ) -> Iterator[tuple[int, bytes]]:
        """(start, needle) for each occurrence inside data[low:high], each once; not sorted."""
        high = len(data) if high is None else high
        if high - low < self._shortest:
            return  # no needle fits: no pass at all
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
    """Greedy set cover: the substring shared by the most needles first (longest on ties,
    then the greatest). Counts are kept up to date as needles are covered, and the best
    is taken from a heap (stale entries are pushed back with their count now): the
    engine's hundreds of encoded forms cost a millisecond, not a rescan per anchor."""
    subs = {needle: _substrings(needle, min_anchor) for needle in needles}
    holders: dict[bytes, list[bytes]] = {}
    for needle, own in subs.items():
        for sub in own:
            holders.setdefault(sub, []).append(needle)
    counts = {sub: len(held) for sub, held in holders.items()}
    heap = [(-count, -len(sub), sub.translate(_REVERSED), sub) for sub, count in counts.items()]
    heapq.heapify(heap)
    left = set(needles)
    plan: list[tuple[bytes, list[tuple[bytes, int]]]] = []
    while left and heap:
        negative, length, order, anchor = heapq.heappop(heap)
        if counts[anchor] != -negative:
            if counts[anchor]:
                heapq.heappush(heap, (-counts[anchor], length, order, anchor))
            continue
        covered_needles = [needle for needle in holders[anchor] if needle in left]
        covered = [(needle, offset) for needle in covered_needles
                   for offset in _offsets(needle, anchor)]
        plan.append((anchor, covered))
        for needle in covered_needles:
            left.discard(needle)
            for sub in subs[needle]:  # computed once: the engine builds this on every run
                counts[sub] -= 1
    return plan


_REVERSED = bytes(range(255, -1, -1))  # on ties the greatest substring: the heap's least


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
