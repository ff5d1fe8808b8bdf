"""A whole text is first checked for a sign of a key in one pass (`Engine.quiet`, with
`Gates.may_hit` for the encoded prefixes), and a text it calls quiet is searched no
further: in `keyscan scan`, in archives' members, in every blob of a history. So
quiet must never be said of a text in which the search finds a key, wherever a
line of wrapped base64 breaks the encoded prefix."""

from __future__ import annotations

import base64
import random

import pytest

from keys import PREFIXES, make_key
from keyscan.engine import Engine
from keyscan.model import Fragment
from keyscan.rules import load_builtin

ENGINE = Engine(load_builtin().rules)
# Source code full of long identifiers (runs, as base64 counts them), and no key.
CODE = b"".join(b"    def test_the_%d_thing_with_a_long_name_for_it(self) -> None: pass\n" % n
                for n in range(50))


def test_code_full_of_long_identifiers_is_quiet_and_holds_nothing() -> None:
    assert ENGINE.quiet(CODE)
    assert ENGINE.scan(Fragment(CODE, "code.py")) == []


@pytest.mark.parametrize("vendor", sorted(PREFIXES))
@pytest.mark.parametrize("newline,indent", [("\n", ""), ("\r\n", ""), ("\n", "    ")])
def test_a_line_break_anywhere_in_an_encoded_prefix_is_no_quiet(
    vendor: str, newline: str, indent: str
) -> None:
    rng = random.Random(vendor)
    key = make_key(vendor, rng)
    width = 40
    for lead in range(0, 3 * width // 4 + 3):  # the key's base64 starts at every column
        encoded = base64.b64encode(b" " * lead + key.encode()).decode()
        lines = [encoded[at : at + width] for at in range(0, len(encoded), width)]
        text = CODE + (f"blob: |{newline}" + "".join(
            f"{indent}{line}{newline}" for line in lines)).encode()
        found = {f.secret for f in ENGINE.scan(Fragment(text, "wrapped.yaml"))}
        assert key in found, (lead, lines)
        assert not ENGINE.quiet(text), (lead, lines)
