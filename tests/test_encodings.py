"""Keys hidden in every encoding (issue 14): found at the encoded text, `encoding` naming
the encodings outermost first; random encoded data without keys stays silent."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest

from encoders import HIDINGS, Hiding, broken_base64, percent_separators, quoted, utf16
from keys import all_keys, make_key
from keyscan.engine import Engine
from keyscan.model import Finding, Fragment
from keyscan.rules import load_builtin

ENGINE = Engine(load_builtin().rules)


def scan(data: bytes | str) -> list[Finding]:
    raw = data.encode() if isinstance(data, str) else data
    return sorted(ENGINE.scan(Fragment(raw, "f")), key=lambda f: (f.line, f.column))


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@pytest.mark.parametrize("hiding", HIDINGS, ids=[h.name for h in HIDINGS])
def test_every_key_shape_is_found_in_every_hiding(hiding: Hiding) -> None:
    for prefix, key in all_keys(random.Random(hiding.name)).items():
        text = "# header\n" + hiding.hide(key)
        findings = scan(utf16(hiding, text))
        assert [(f.secret, f.encoding or "") for f in findings] == [(key, hiding.encoding)], prefix


@pytest.mark.parametrize(
    ("hiding", "first"),
    [
        ("percent, separators", "rp%5Flive"),
        ("escape \\u", "rp\\u005f"),
        ("escape \\x", "\\x72\\x70"),
        ("html &#95;", "rp&#95;"),
        ("hex", "72705f6c697665"),
        ("HEX", "72705F6C697665"),
    ],
)
def test_an_escaped_key_is_reported_where_its_encoding_starts(hiding: str, first: str) -> None:
    key = make_key("repeatposts", random.Random(1))
    (found,) = [h for h in HIDINGS if h.name == hiding]
    text = "é = 1\n" + found.hide(key)
    (finding,) = scan(text)
    assert (finding.line, finding.column) == position(text, text.index(first))


def test_wrapped_base64_points_at_the_4_char_group_on_its_own_line() -> None:
    key = make_key("powerpost", random.Random(2))
    encoded = base64.b64encode(("x" * 59 + " " + key).encode()).decode()  # byte 60: group 20
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    text = "secret: |\r\n" + "".join(f"    {line}\r\n" for line in lines)
    (finding,) = scan(text)
    assert (finding.secret, finding.encoding) == (key, "base64")
    assert (finding.line, finding.column) == (3, 5 + 80 - 64)  # 80th character: line 2's 16th


def test_a_key_cut_by_a_line_end_is_not_reported_cut_short() -> None:
    rng = random.Random(3)
    for pad in range(12):  # every place the line end can fall in the key's text
        key = make_key("repeatposts", rng, length=40)
        encoded = base64.b64encode(("y" * (30 + pad) + "=" + key).encode()).decode()
        text = "\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64)) + "\n"
        assert [f.secret for f in scan(text)] == [key], pad


def test_base64_broken_up_by_percent_encoding_json_escapes_or_entities() -> None:
    key = make_key("autoposting", random.Random(4), prefix="ap" + "_live_")
    encoded, group = broken_base64(key)
    escaped = {
        "percent/base64": quoted(encoded),
        "escape/base64": json.dumps({"blob": encoded}).replace("/", "\\/"),  # as PHP writes it
        "html/base64": encoded.replace("/", "&#x2F;").replace("+", "&#43;"),
    }
    for encoding, text in escaped.items():
        (finding,) = scan(f"x = '{text}'\n")
        assert (finding.secret, finding.encoding) == (key, encoding)
    # Where only the base64 around the key was escaped, it is base64, found as it is.
    (finding,) = scan(quoted(encoded[:group]) + encoded[group:])
    assert (finding.secret, finding.encoding) == (key, "base64")


def test_a_plain_key_next_to_escaped_text_is_one_plain_finding() -> None:
    rng = random.Random(5)
    plain, hidden = make_key("posteverywhere", rng), make_key("repeatposts", rng)
    text = f"a={percent_separators(hidden)}&b={plain}&c=%20"
    findings = scan(text)
    assert [(f.secret, f.encoding) for f in findings] == [(hidden, "percent"), (plain, None)]


def test_placeholders_stay_placeholders_after_decoding() -> None:
    from keyscan.filters.placeholders import is_placeholder

    fake = "pe" + "_live_" + "0" * 32
    for hiding in HIDINGS:
        findings = scan(utf16(hiding, hiding.hide(fake)))
        assert len(findings) == 1, hiding.name
        assert is_placeholder(findings[0].secret, findings[0].prefix), hiding.name


def test_keyscan_allow_on_the_encoded_line_suppresses_it() -> None:
    key = make_key("powerpost", random.Random(6))
    text = f"u = '/x?k={percent_separators(key)}'  # keyscan:allow\n"
    assert ENGINE.scan_counted(Fragment(text.encode(), "f")) == ([], 1)


def test_random_encoded_data_without_keys_is_silent() -> None:
    rng = random.Random(7)
    blobs = [bytes(rng.getrandbits(8) for _ in range(200_000)) for _ in range(2)]
    texts = [
        base64.b64encode(blobs[0]),
        base64.encodebytes(blobs[1]),  # wrapped at 76
        blobs[0].hex().encode(),
        blobs[1].hex().upper().encode(),
        "\n".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)).encode(),
        quoted("".join(chr(rng.randrange(32, 0x2FF)) for _ in range(50_000))).encode(),
        "".join(f"&#{rng.randrange(32, 0x2FF)};" for _ in range(20_000)).encode(),
        "".join(f"\\u{rng.randrange(0x2FF):04x}" for _ in range(20_000)).encode(),
        b"x=%5F%5f%2D%2d&" * 5000 + b"_\x00-\x00" * 5000,
    ]
    for text in texts:
        assert scan(text) == [], text[:40]


def test_named_credentials_in_percent_encoded_forms_are_found_with_a_prefix_only() -> None:
    # The vendors' setting names are keywords, not prefixes: decoding is triggered by
    # prefixes, and a key in a vendor-named field is found by its own prefix.
    key = make_key("powerpost", random.Random(8))
    text = "POWERPOST_API_KEY%3D" + percent_separators(key)
    assert [(f.rule_id, f.encoding) for f in scan(text)] == [("powerpost-api-key", "percent")]


def test_utf16_without_a_bom_is_scanned_in_characters_and_binary_is_not_utf16() -> None:
    key = make_key("repeatposts", random.Random(9))
    text = f"Größe = 1\n  clé = «{key}»\n"
    for codec in ("utf-16-le", "utf-16-be"):
        (finding,) = scan(text.encode(codec))
        assert (finding.line, finding.column, finding.secret) == (2, 10, key)
    words = b"".join(n.to_bytes(4, "little") for n in range(3000))  # int32s: zeros at both
    assert [f.secret for f in scan(words + key.encode())] == [key]  # scanned as bytes
    # Binary that begins like UTF-16 (a resource table) and holds a key as bytes later:
    wide = "strings table ".encode("utf-16-le") * 300 + b"\x00\x01" + key.encode() + b"\n"
    assert [f.secret for f in scan(wide)] == [key]
