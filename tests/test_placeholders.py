"""Placeholders are not keys; a random body never is a placeholder."""

from __future__ import annotations

import random
import string

import pytest

from keys import PREFIXES, make_key
from keyscan.filters.placeholders import is_placeholder

PE = PREFIXES["posteverywhere"][0]
RP = PREFIXES["repeatposts"][0]
PP = PREFIXES["powerpost"][0]
SK = PREFIXES["autoposting"][0]


@pytest.mark.parametrize(
    ("secret", "prefix"),
    [
        (PE + "0" * 32, PE),  # a run of one character
        (PE + "0123456789abcdef" * 2, PE),  # ascending, hex wrapping
        (PE + "fedcba9876543210" * 2, PE),  # descending
        (RP + "a1b2c3d4e5f6" * 3, RP),  # a short repeated unit
        (RP + "abcdefghijklmnopqrstuvwxyz", RP),
        (RP + "YOURAPIKEYHERE" + "0000", RP),  # words
        (PP + "EXAMPLEKEY1234567890", PP),
        (PP + "XXXXXXXXXXXXXXXXXXXXXXXX", PP),
        (SK + "your" + "_api_key_here_", SK),
        (SK + "REPLACEMEwithYOURkey", SK),
        ("your-powerpost-api-key-here", ""),  # a vendor-named setting's value
        ("xxxxxxxxxxxxxxxxxxxx", ""),
    ],
)
def test_placeholders(secret: str, prefix: str) -> None:
    assert is_placeholder(secret, prefix)


def test_thousands_of_random_keys_of_every_shape_are_never_placeholders() -> None:
    rng = random.Random(20240601)
    misses = []
    for vendor, prefixes in PREFIXES.items():
        for prefix in prefixes:
            for length in (16, 17, 24, 32, 48, 128):
                for _ in range(700):
                    key = make_key(vendor, rng, prefix=prefix, length=length)
                    if is_placeholder(key, prefix):
                        misses.append(key[: len(prefix) + 4])
    assert misses == []


def test_random_values_of_vendor_named_settings_are_never_placeholders() -> None:
    rng = random.Random(77)
    alphabets = [string.ascii_letters + string.digits, "0123456789abcdef", string.ascii_lowercase]
    for _ in range(5000):
        alphabet = rng.choice(alphabets)
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(16, 64)))
        assert not is_placeholder(value, ""), value[:4]


def test_words_inside_a_random_body_do_not_make_it_a_placeholder() -> None:
    rng = random.Random(5)
    body = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
    assert not is_placeholder(RP + "KEY" + body, RP)
    assert not is_placeholder(RP + body + "here", RP)
