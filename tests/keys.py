"""Test keys, made at run time from a seeded RNG: the repository holds no key-shaped string.

Prefixes are built by concatenation so that no line of this file looks like a key.
"""

from __future__ import annotations

import random
import string

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"

# vendor -> the prefixes its keys start with (split so no line is key-shaped)
PREFIXES: dict[str, tuple[str, ...]] = {
    "posteverywhere": ("pe" + "_live_",),
    "repeatposts": ("rp" + "_live_", "rp" + "_test_"),
    "powerpost": ("pp" + "_live_sk_", "pp" + "_test_sk_"),
    "autoposting": ("sk" + "-social-", "ap" + "_live_"),
}


def make_key(
    vendor: str, rng: random.Random, *, prefix: str | None = None, length: int = 32
) -> str:
    """A random, well-formed key of `vendor` (the first prefix unless `prefix` is given)."""
    head = prefix if prefix is not None else PREFIXES[vendor][0]
    if head == PREFIXES["posteverywhere"][0]:
        return head + "".join(rng.choice(HEX) for _ in range(32))
    return head + "".join(rng.choice(ALNUM) for _ in range(length))


def all_keys(rng: random.Random) -> dict[str, str]:
    """One key of every prefix: {prefix: key}."""
    return {
        head: make_key(vendor, rng, prefix=head)
        for vendor, heads in PREFIXES.items()
        for head in heads
    }
