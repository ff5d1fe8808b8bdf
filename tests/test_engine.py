"""The engine as a source sees it: bytes in, findings (rule, line, column, secret) out."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest

from encoders import HIDINGS, utf16
from keys import PREFIXES, all_keys, make_key
from keyscan.engine import Engine
from keyscan.model import Commit, Finding, Fragment
from keyscan.rules import load_builtin

ENGINE = Engine(load_builtin().rules)
PE = PREFIXES["posteverywhere"][0]
RULE_OF_PREFIX = {
    PREFIXES["posteverywhere"][0]: "posteverywhere-api-key",
    PREFIXES["repeatposts"][0]: "repeatposts-api-key",
    PREFIXES["repeatposts"][1]: "repeatposts-test-key",
    PREFIXES["powerpost"][0]: "powerpost-api-key",
    PREFIXES["powerpost"][1]: "powerpost-test-key",
    PREFIXES["autoposting"][0]: "autoposting-api-key",
    PREFIXES["autoposting"][1]: "autoposting-live-key",
}


def scan(data: bytes | str, path: str = "config/settings.py") -> list[Finding]:
    raw = data.encode() if isinstance(data, str) else data
    return sorted(ENGINE.scan(Fragment(raw, path)), key=lambda f: (f.line, f.column))


def where(finding: Finding) -> tuple[str, int, int]:
    return finding.rule_id, finding.line, finding.column


@pytest.mark.parametrize("prefix", sorted(RULE_OF_PREFIX))
def test_each_key_shape_is_found_with_rule_vendor_place_and_hash(prefix: str) -> None:
    key = all_keys(random.Random(7))[prefix]
    (finding,) = scan(f"import os\n\nAPI = '{key}'  # prod\n")
    assert where(finding) == (RULE_OF_PREFIX[prefix], 3, 8)
    assert finding.vendor == RULE_OF_PREFIX[prefix].split("-")[0]
    assert finding.path == "config/settings.py"
    assert finding.secret == key
    assert finding.secret_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert finding.prefix == prefix
    assert finding.redacted() == f"{prefix}…{key[-4:]}"
    assert finding.encoding is None


def test_commit_of_the_fragment_is_carried_to_the_finding() -> None:
    commit = Commit("a" * 40, "Alice", "alice@example.com", "2024-01-01T00:00:00+00:00")
    key = make_key("posteverywhere", random.Random(1))
    (finding,) = ENGINE.scan(Fragment(key.encode(), "a.txt", commit))
    assert finding.commit == commit


def test_whole_tokens_only() -> None:
    rng = random.Random(2)
    key = make_key("posteverywhere", rng)
    body = key[len(PE) :]
    assert scan("x" + key) == []  # glued prefix
    assert scan(key + "a") == []  # a 33rd hex digit
    assert scan(PE + "ABCDEF" + body[6:]) == []  # uppercase hex
    rp = make_key("repeatposts", rng, length=200)
    assert scan(rp) == []  # longer than the 128 characters a random body may have
    assert [f.secret for f in scan(f"({key}),")] == [key]


def test_two_keys_on_one_line_are_two_findings_and_columns_count_characters() -> None:
    rng = random.Random(3)
    first, second = make_key("powerpost", rng), make_key("autoposting", rng)
    line = f"é€ = ['{first}', \"{second}\"]\n"
    findings = scan("# header\n" + line)
    assert [(f.line, f.column, f.secret) for f in findings] == [
        (2, 8, first),
        (2, 12 + len(first), second),
    ]


def test_vendor_named_settings_are_found_whatever_the_value_format() -> None:
    rng = random.Random(4)
    value = "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGH23456789") for _ in range(30))
    texts = [
        f"POWERPOST_API_KEY={value}",
        f'{{"repeatposts_token": "{value}"}}',
        f"powerPost.apiKey: {value}",
        f'export AUTOPOSTING_SECRET="{value}"',
        f'post_everywhere_key := "{value}"',
    ]
    for text in texts:
        (finding,) = scan(text)
        assert finding.rule_id.endswith("-named-credential"), text
        assert finding.secret == value
        assert finding.prefix == ""
        assert finding.redacted() == f"…{value[-4:]}"


@pytest.mark.parametrize(
    "text",
    [
        "POWERPOST_API_KEY=${POWERPOST_API_KEY}",
        "POWERPOST_API_KEY=$POWERPOST_API_KEY",
        'powerpost_key = os.environ["POWERPOST_KEY"]',
        "const key = process.env.POWERPOST_API_KEY",
        "POWERPOST_API_KEY=<your-key>",
        'POWERPOST_API_KEY: "{{ secrets.POWERPOST_API_KEY }}"',
        "powerpost_key = '%(powerpost_key)s'",
        "powerpost_api_key = POWERPOST_API_KEY_VALUE",
        "POWERPOST_API_KEY=aaaaaaaaaaaaaaaa1111",  # low entropy
        "powerpost_url = https://powerpost.ai/api/v1/account/credits/x2",  # not a credential name
    ],
)
def test_references_and_non_secrets_in_vendor_settings_are_not_findings(text: str) -> None:
    assert scan(text) == []


def test_the_specific_rule_reports_a_key_in_a_vendor_named_setting() -> None:
    key = make_key("powerpost", random.Random(5))
    findings = scan(f"POWERPOST_API_KEY={key}\n")
    assert [(f.rule_id, f.secret) for f in findings] == [("powerpost-api-key", key)]


def k8s_secret(name: str, data: dict[str, str], kind: str = "Opaque") -> str:
    lines = ["apiVersion: v1", "kind: Secret", f"type: {kind}", "metadata:", f"  name: {name}"]
    lines.append("data:")
    lines += [
        f"  {key}: {base64.b64encode(value.encode()).decode()}" for key, value in data.items()
    ]
    return "\n".join(lines) + "\n"


def test_key_in_a_kubernetes_secret_is_found_at_the_encoded_text() -> None:
    rng = random.Random(6)
    key, other = make_key("repeatposts", rng), make_key("powerpost", rng)
    manifest = k8s_secret("app", {"user": "svc", "api-key": key, "env": f"PP={other}\n"})
    finding, second = scan(manifest, "deploy/secret.yaml")
    assert (finding.line, finding.column) == (8, len("  api-key: ") + 1)
    assert finding.encoding == "base64"
    assert finding.secret == key
    assert finding.rule_id == "repeatposts-api-key"
    # "PP=" is 3 bytes: the key starts in the second 4-char group
    assert (second.line, second.column, second.secret) == (9, len("  env: ") + 1 + 4, other)


def test_key_in_a_dockerconfigjson_is_found_through_two_layers_of_base64() -> None:
    key = make_key("autoposting", random.Random(8))
    auth = base64.b64encode(f"robot:{key}".encode()).decode()
    config = json.dumps({"auths": {"registry.example.com": {"auth": auth}}})
    manifest = k8s_secret("pull", {".dockerconfigjson": config}, "kubernetes.io/dockerconfigjson")
    (finding,) = scan(manifest, "deploy/pull.yaml")
    assert finding.secret == key
    assert finding.encoding == "base64/base64"
    assert finding.line == 7
    assert finding.column > len("  .dockerconfigjson: ")
    # the plain config.json holds the key base64-encoded once
    (plain,) = scan(config, "config.json")
    assert (plain.secret, plain.encoding) == (key, "base64")
    assert plain.column == config.index(auth) + 1 + 8  # "robot:" is 6 bytes: 2 whole groups


@pytest.mark.parametrize("user", ["u", "us", "usr", "robot-user"])
def test_key_in_a_basic_auth_header_points_at_its_4_char_group(user: str) -> None:
    key = make_key("posteverywhere", random.Random(9))
    encoded = base64.b64encode(f"{user}:{key}".encode()).decode()
    text = f"GET /api HTTP/1.1\nAuthorization: Basic {encoded}\n"
    (finding,) = scan(text, "request.http")
    start = len("Authorization: Basic ") + 1
    assert (finding.line, finding.column) == (2, start + (len(user) + 1) // 3 * 4)
    assert finding.encoding == "base64"
    assert finding.secret == key


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_files_with_a_bom_are_scanned_in_characters(codec: str) -> None:
    key = make_key("powerpost", random.Random(10))
    text = f"Größe = 1\n  clé = «{key}»\n"
    data = text.encode(codec) if codec == "utf-16" else b"\xfe\xff" + text.encode(codec)
    (finding,) = scan(data, "settings.ini")
    assert (finding.line, finding.column, finding.secret) == (2, 10, key)


def test_a_key_at_the_end_of_a_one_megabyte_line() -> None:
    key = make_key("repeatposts", random.Random(11))
    minified = "var a=" + "x=1;" * 250_000 + f'k="{key}";' + "y=2;" * 100
    (finding,) = scan(minified, "app.min.js")
    assert (finding.line, finding.column) == (1, minified.index(key) + 1)


def test_binary_data_is_scanned_as_bytes() -> None:
    key = make_key("posteverywhere", random.Random(12))
    blob = b"\x00\xff\xfeSQLite format 3\x00" + bytes(range(256)) + key.encode() + b"\x00\x01"
    (finding,) = scan(blob, "db.sqlite")
    assert finding.secret == key


def test_keyscan_allow_on_the_line_drops_the_match_and_counts_it() -> None:
    rng = random.Random(13)
    allowed, kept = make_key("posteverywhere", rng), make_key("posteverywhere", rng)
    text = f"a = '{allowed}'  # keyscan:allow\nb = '{kept}'\n"
    findings, suppressed = ENGINE.scan_counted(Fragment(text.encode(), "x.py"))
    assert [f.secret for f in findings] == [kept]
    assert suppressed == 1


def test_placeholders_are_found_by_the_engine_and_left_to_the_filter() -> None:
    from keyscan.filters.placeholders import is_placeholder

    placeholder = PE + "0" * 32
    (finding,) = scan(placeholder)
    assert is_placeholder(finding.secret, finding.prefix)


def test_many_keywords_without_keys_cost_no_findings_and_hide_no_key() -> None:
    flood = "POST /powerpost/ HTTP/1.1\n" * 20_000 + "post_everywhere = None\n"
    assert scan(flood) == []
    key = make_key("powerpost", random.Random(216))
    (finding,) = scan(flood + f"POWERPOST_KEY = '{key}'\n")  # after 20,000 keyword hits
    assert (finding.rule_id, finding.secret, finding.line) == ("powerpost-api-key", key, 20_002)


def test_many_keys_on_one_long_line_each_get_their_own_column() -> None:
    rng = random.Random(14)
    keys = [make_key("repeatposts", rng) for _ in range(500)]
    line = "const k = [" + ", ".join(f'"{key}"' for key in keys) + "];"
    text = "// é\n" + line + "\n"
    findings = scan(text, "bundle.js")
    assert [(f.line, f.column) for f in findings] == [(2, line.index(k) + 1) for k in keys]


def test_a_utf8_byte_order_mark_is_not_counted_as_a_column() -> None:
    key = make_key("posteverywhere", random.Random(15))
    (finding,) = scan(b"\xef\xbb\xbfk=" + key.encode())
    assert (finding.line, finding.column) == (1, 3)


@pytest.mark.parametrize("shift", [-12, -3, -1, 0, 1])
def test_keys_across_the_edge_of_a_lowercased_chunk_are_found_once(shift: int) -> None:
    from keyscan import engine

    rng = random.Random(16)
    key, named = make_key("repeatposts", rng), make_key("powerpost", rng)[11:]
    head = "x" * (engine.CHUNK + shift) + " "  # the key starts near the 1st chunk's edge
    filler = "y" * (2 * engine.CHUNK + shift - len(head) - len(key) - 2)
    text = head + key + "\n" + filler + " PowerPost_Key=" + named  # the name: the 2nd edge
    assert text.index("PowerPost") == 2 * engine.CHUNK + shift
    findings = scan(text)
    assert [(f.line, f.secret) for f in findings] == [(1, key), (2, named)]


def test_vendor_settings_are_found_in_text_full_of_the_word_post() -> None:
    # a blogging app says "post" everywhere; past many hits the engine changes strategy
    rng = random.Random(17)
    first, last = (
        "".join(rng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGH23456789") for _ in range(24))
        for _ in range(2)
    )
    filler = "for post in posts: repost(post, POST)\n" * 2000
    text = f"powerpost_token = '{first}'\n" + filler + f"repeatposts_key: {last}\n"
    assert [(f.rule_id, f.line) for f in scan(text)] == [
        ("powerpost-named-credential", 1),
        ("repeatposts-named-credential", 2002),
    ]


def _keyword_texts() -> list[str]:
    """Texts whose findings hang on finding keywords: mixed case, overlapping vendor
    names, look-alikes that only Latin-1 case folding would take for a keyword, a flood
    of near misses, a keyword across a lowercased chunk's edge."""
    from keyscan import engine

    rng = random.Random(18)
    token = "".join(rng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGH23456789") for _ in range(24))
    keys = {vendor: make_key(vendor, rng) for vendor in PREFIXES}
    return [
        f"PowerPostEverywhere_Token = '{token}'\nREPEATPOST_key: {keys['repeatposts']}\n",
        f"x = '{keys['powerpost'].upper()[:3]}{keys['powerpost'][3:]}' # {keys['autoposting']}\n",
        f"p\u00d6werpost_token = '{token}'\nrepeat\u00c9post = 1\nposteverywhere_key={token}\n",
        "for post in posts: repost(post, POST)\n" * 1500 + f"auto_posting_secret: {token}\n",
        "x" * (engine.CHUNK - 4) + f" PowerPost_Key={token}\n{keys['posteverywhere']}\n",
        "POST /powerpost/ HTTP/1.1\n" * (engine.MANY_PLACES + 1)  # past the RE2 pass's use
        + f"data: {base64.b64encode(keys['repeatposts'].encode()).decode()}\n"
        + f"POWERPOST_KEY = '{keys['powerpost']}'\n",
        "POST /powerpost/ HTTP/1.1\n" * (engine.MANY_PLACES - 3)  # just short of it
        + f"data: {base64.b64encode(keys['repeatposts'].encode()).decode()}\n",
    ]


@pytest.mark.parametrize("index", range(7))
def test_an_engine_with_its_rescan_patterns_built_finds_what_a_new_one_finds(index: int) -> None:
    """A warmed engine (a history's workers, a big folder) finds keywords through one RE2
    pass; a new one (the hook) through its literal index: the same findings."""
    text = _keyword_texts()[index].encode()
    warm = Engine(load_builtin().rules)
    warm.warm()
    cold = [(*where(f), f.secret) for f in scan(text)]
    warmed = sorted(((*where(f), f.secret) for f in warm.scan(Fragment(text, "x.py"))),
                    key=lambda w: (w[1], w[2]))
    assert cold, "each text holds at least one finding"
    assert warmed == cold


@pytest.mark.parametrize("name", [hiding.name for hiding in HIDINGS])
def test_an_engine_with_its_rescan_patterns_built_decodes_what_a_new_one_decodes(
        name: str) -> None:
    """A warmed engine asks its gates first whether any encoded prefix is in a text, a new
    one whether the text has runs long enough for a key: the same findings, encoded."""
    hiding = next(hiding for hiding in HIDINGS if hiding.name == name)
    key = make_key("posteverywhere", random.Random(19))
    text = utf16(hiding, hiding.hide(key) + "and some code = 1\n")
    warm = Engine(load_builtin().rules)
    warm.warm()

    def found(engine: Engine) -> list[tuple[str, int, int, str | None]]:
        return sorted((*where(f), f.encoding) for f in engine.scan(Fragment(text, "x.txt")))

    cold = found(Engine(load_builtin().rules))
    assert [(rule, encoding) for rule, _, _, encoding in cold] == [
        ("posteverywhere-api-key", hiding.encoding or None)]
    assert found(warm) == cold
