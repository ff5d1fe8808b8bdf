"""Where two versions of a text differ: one span, from the first to the last change.

Most blobs in a history are a small edit of another blob (git stores them as deltas
of it). When the older version was quiet (see `Engine.quiet`), the newer one is quiet
unless the span it changed, plus a margin, is not: outside that span both versions
hold the same bytes. Comparing costs a memcmp of the text; scanning it, many passes.
"""

from __future__ import annotations

SLACK = 128  # bytes of precision the binary searches stop at


def changed_span(old: bytes, new: bytes) -> tuple[int, int]:
    """(start, end) in `new`: new[:start] == old[:start] and new[end:] ends `old`, with
    the common prefix and suffix not overlapping in either text (end >= start). The
    span may start up to `SLACK` bytes early and end as late: callers check a margin
    around it anyway, and the last steps of the search would cost more than that."""
    limit = min(len(old), len(new))
    start = _common(old, new, limit, prefix=True)
    suffix = _common(old, new, limit - start, prefix=False)
    return start, len(new) - suffix


def _common(old: bytes, new: bytes, limit: int, prefix: bool) -> int:
    """Length of the common prefix (or suffix) of `old` and `new`, at most `limit`
    (less by up to `SLACK`).

    Binary search with zero-copy memcmp (`startswith`/`endswith` of a memoryview):
    each step compares only the still undecided part, so the whole costs about one
    comparison of the texts and ~log2(limit) calls.
    """
    view = memoryview(old)
    low, high = 0, limit  # the first `low` bytes agree; the first `high` do not all agree
    if prefix:
        if new.startswith(view[:limit]):
            return limit
        while high - low > SLACK:
            middle = (low + high) // 2
            if new.startswith(view[low:middle], low):
                low = middle
            else:
                high = middle
        return low
    old_end, new_end = len(old), len(new)
    if new.endswith(view[old_end - limit :]):
        return limit
    while high - low > SLACK:  # counted from the ends: bytes [end - middle, end - low)
        middle = (low + high) // 2
        if new.endswith(view[old_end - middle : old_end - low], 0, new_end - low):
            low = middle
        else:
            high = middle
    return low
