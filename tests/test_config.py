"""`.keyscan.yaml`: what a valid config gives, and one clear error for each kind of mistake."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from keys import make_key
from keyscan.config import Config, load_config
from keyscan.errors import KeyscanError

SHA = hashlib.sha256(b"not a real key").hexdigest()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".keyscan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_config_is_an_empty_config(tmp_path: Path) -> None:
    assert load_config(None, explicit=False) == Config()
    assert load_config(tmp_path / ".keyscan.yaml", explicit=False) == Config()
    assert load_config(write(tmp_path, ""), explicit=True) == Config()
    assert load_config(write(tmp_path, "# only a comment\n"), explicit=False) == Config()


def test_a_full_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "disable: [autoposting-api-key]\n"
        "allow:\n"
        "  paths: ['tests/fixtures/**', '*.lock']\n"
        "  regexes: ['EXAMPLE$']\n"
        f"  secrets: ['sha256:{SHA.upper()}']\n",
    )
    config = load_config(path, explicit=False)
    assert config.disable == frozenset({"autoposting-api-key"})
    assert config.allow_paths == ("tests/fixtures/**", "*.lock")
    assert [regex.pattern for regex in config.allow_regexes] == ["EXAMPLE$"]
    assert config.allow_secrets == frozenset({SHA})  # normalised to lowercase


def test_empty_sections_are_allowed(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "allow:\ndisable:\n"), explicit=True) == Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "alow: {}\n",
            "unknown key 'alow' at top level (expected: baseline, rules, disable, allow)",
        ),
        ("allow: {path: [x]}\n", "unknown key 'path' under 'allow' (expected: paths, regexes"),
        ("verify_url: http://evil.example\n", "unknown key 'verify_url' at top level"),
        ("api_base: http://evil.example\n", "unknown key 'api_base' at top level"),
        ("allow: {api_base: x}\n", "unknown key 'api_base' under 'allow'"),
        ("- a\n- b\n", "the top level is a list, expected a mapping"),
        ("disable: autoposting-api-key\n", "'disable' must be a list of strings, not a string"),
        ("disable: [1]\n", "'disable' must hold non-empty strings, found 1"),
        ("disable: [posteverywhere-api-kee]\n", "did you mean 'posteverywhere-api-key'?"),
        ("allow: [x]\n", "'allow' must be a mapping of paths, regexes, secrets, not a list"),
        ("allow: {paths: '*.md'}\n", "'allow.paths' must be a list of strings"),
        ("allow: {paths: ['[abc']}\n", "bad glob '[abc' in allow.paths: unclosed '['"),
        ("allow: {regexes: ['ok', '(unclosed']}\n", "bad regex in allow.regexes (entry 2)"),
        ("allow: {secrets: ['sha256:abc']}\n", "allow.secrets entries must be \"sha256:<64 hex>\""),
        ("rules: {id: x}\n", "'rules' must be a list of rules, not a mapping"),
        ("allow: {paths: [a\n", "invalid YAML at line 2"),
        ("key: [unclosed\n", "invalid YAML"),
    ],
)
def test_mistakes_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(KeyscanError) as caught:
        load_config(path, explicit=False)
    error = str(caught.value)
    assert error.startswith(f"{path}: ")
    assert message in error
    assert "\n" not in error


def test_a_config_rule_cannot_choose_a_verifier(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules:\n  - {id: mine, vendor: powerpost, severity: high, pattern: '(x)',"
        " keywords: [x], verify: repeatposts}\n",
    )
    with pytest.raises(KeyscanError, match="unknown key 'verify' in rule 1"):
        load_config(path, explicit=True)


def test_extra_rules_are_parsed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules:\n"
        "  - id: internal-token\n"
        "    vendor: acme\n"
        "    severity: high\n"
        "    pattern: '\\b(acme_[a-z0-9]{20})\\b'\n"
        "    keywords: [acme_]\n",
    )
    (rule,) = load_config(path, explicit=True).rules
    assert (rule.id, rule.vendor, rule.severity) == ("internal-token", "acme", "high")
    assert rule.verify is None
    assert rule.pattern.search(b"x = acme_" + b"a1" * 10 + b"\n")


def test_a_bad_extra_rule_names_the_file(tmp_path: Path) -> None:
    rule = "{id: x, vendor: v, severity: high, pattern: '(', keywords: [x]}"
    path = write(tmp_path, f"rules:\n  - {rule}\n")
    with pytest.raises(KeyscanError, match=f"^{path}: rule 1"):
        load_config(path, explicit=True)


def test_a_secret_pasted_into_the_config_is_never_echoed(tmp_path: Path) -> None:
    key = make_key("posteverywhere", random.Random(7))
    for text in (
        f"allow: {{secrets: ['{key}']}}\n",
        f"{key}: true\n",
        f"allow: {{regexes: ['{key}(']}}\n",
        f"disable: [{key}, 1]\n",
    ):
        with pytest.raises(KeyscanError) as caught:
            load_config(write(tmp_path, text), explicit=True)
        assert key not in str(caught.value)
        assert key[-12:] not in str(caught.value)


def test_an_explicit_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(KeyscanError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", explicit=True)
    with pytest.raises(KeyscanError, match="is a folder"):
        load_config(tmp_path, explicit=True)


def test_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"allow: {paths: ['\xff']}\n")
    with pytest.raises(KeyscanError, match="not UTF-8"):
        load_config(path, explicit=True)
