"""Where two versions of a text differ: what a scan of git's rebuilt deltas relies on."""

from __future__ import annotations

import random

from keyscan.edits import SLACK, changed_span


def test_changed_span_splits_the_new_text_into_old_prefix_edit_old_suffix() -> None:
    rng = random.Random(1)
    for _ in range(500):
        old = bytes(rng.choice(b"ab\n") for _ in range(rng.randrange(0, 2000)))
        new = bytearray(old)
        for _ in range(rng.randrange(0, 3)):
            at = rng.randrange(len(new) + 1)
            new[at : at + rng.randrange(5)] = bytes(rng.choice(b"abc") for _ in range(4))
        start, end = changed_span(old, bytes(new))
        assert start <= end
        assert new[:start] == old[:start]
        assert old.endswith(new[end:]) and start + len(new) - end <= len(old)
        exact = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                     min(len(old), len(new)))
        assert exact - SLACK <= start <= exact
