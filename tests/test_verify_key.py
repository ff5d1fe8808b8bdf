"""`keyscan verify-key`: one key from stdin, verdict printed, exit 0 live / 1 invalid / 2 unsure."""

from __future__ import annotations

import io
import json
import random

import pytest

from fakevendor import VENDORS, FakeVendors, json_answer
from keys import PREFIXES, make_key
from keyscan.cli import main

RNG = random.Random(61)


def verify_key(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: str,
    *args: str,
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as done:
        main(["verify-key", *args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


@pytest.mark.parametrize("prefix", [p for heads in PREFIXES.values() for p in heads])
def test_the_vendor_is_detected_from_the_keys_shape(
    fake_vendor: FakeVendors,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prefix: str,
) -> None:
    vendor = next(v for v, heads in PREFIXES.items() if prefix in heads)
    secret = make_key(vendor, RNG, prefix=prefix)
    fake_vendor.answer(secret, json_answer(200))

    code, out, err = verify_key(monkeypatch, capsys, secret + "\n", "--format", "json")

    assert code == 0, err
    result = json.loads(out)
    assert result["vendor"] == vendor and result["status"] == "live"
    assert result["http_status"] == 200
    assert result["key"] == f"{prefix}…{secret[-4:]}"
    assert result["revoke"]
    [request] = fake_vendor.requests
    assert request.vendor == vendor and request.key == secret
    assert secret not in out + err


def test_text_output_of_a_live_key_says_where_to_revoke(
    fake_vendor: FakeVendors, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = make_key("posteverywhere", RNG)
    fake_vendor.answer(secret, json_answer(403))
    code, out, _ = verify_key(monkeypatch, capsys, secret)
    assert code == 0
    assert f"pe_live_…{secret[-4:]}" in out
    assert "PostEverywhere (posteverywhere)" in out
    assert "status: LIVE" in out and "http:   403" in out
    assert "revoke: Settings > Developer" in out
    assert secret not in out


@pytest.mark.parametrize(
    ("answer", "code", "status"),
    [(json_answer(401), 1, "invalid"), (json_answer(500), 2, "unknown")],
)
def test_exit_status_says_what_became_of_the_key(
    fake_vendor: FakeVendors,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: object,
    code: int,
    status: str,
) -> None:
    secret = make_key("repeatposts", RNG)
    fake_vendor.answer(secret, answer)  # type: ignore[arg-type]
    got, out, _ = verify_key(monkeypatch, capsys, secret, "--format", "json")
    assert (got, json.loads(out)["status"]) == (code, status)
    assert json.loads(out)["revoke"] is None


def test_a_key_on_the_command_line_is_refused_and_not_echoed(
    fake_vendor: FakeVendors, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = make_key("powerpost", RNG)
    code, out, err = verify_key(monkeypatch, capsys, "", secret)
    assert code == 2
    assert err.startswith("keyscan: error: keys on the command line land in shell history; pipe it")
    assert "| keyscan verify-key" in err
    assert secret not in out + err and secret[-8:] not in err
    assert fake_vendor.requests == []


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "no key on stdin"),
        ("  \n", "no key on stdin"),
        ("KEY1 KEY2\n", "stdin holds 2 words; pipe exactly one key"),
    ],
)
def test_stdin_must_hold_exactly_one_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, message: str
) -> None:
    code, _, err = verify_key(monkeypatch, capsys, stdin)
    assert code == 2 and message in err


def test_an_unrecognised_key_is_not_sent(
    fake_vendor: FakeVendors, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "".join(RNG.choice("abcdefXYZ0123") for _ in range(40))
    code, out, err = verify_key(monkeypatch, capsys, secret)
    assert code == 2
    assert "the key does not look like any vendor's key; nothing was sent" in err
    assert secret not in out + err
    assert fake_vendor.requests == []


def test_vendor_option_narrows_detection_but_never_sends_a_foreign_key(
    fake_vendor: FakeVendors, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine, foreign = make_key("autoposting", RNG), make_key("powerpost", RNG)
    fake_vendor.answer(mine, json_answer(401))
    code, out, _ = verify_key(monkeypatch, capsys, mine, "--vendor", "autoposting")
    assert code == 1 and "invalid" in out
    code, _, err = verify_key(monkeypatch, capsys, foreign, "--vendor", "autoposting")
    assert code == 2
    assert "does not look like an Autoposting key; nothing was sent" in err
    assert [(r.vendor, r.key) for r in fake_vendor.requests] == [("autoposting", mine)]


def test_an_unknown_vendor_option_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = verify_key(monkeypatch, capsys, "x", "--vendor", "twitter")
    assert code == 2
    assert f"unknown vendor 'twitter'; use one of: {', '.join(sorted(VENDORS))}" in err


def test_a_placeholder_is_not_sent(
    fake_vendor: FakeVendors, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    placeholder = PREFIXES["posteverywhere"][0] + "0" * 32
    code, out, _ = verify_key(monkeypatch, capsys, placeholder, "--format", "json")
    assert code == 2
    assert json.loads(out)["status"] == "unverifiable"
    assert json.loads(out)["detail"] == "placeholder"
    assert fake_vendor.requests == []


def test_a_disallowed_override_exits_2_before_reading_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEYSCAN_REPEATPOSTS_API_BASE", "http://api.example.com/v1")
    code, _, err = verify_key(monkeypatch, capsys, make_key("repeatposts", RNG))
    assert code == 2
    assert err.startswith("keyscan: error: KEYSCAN_REPEATPOSTS_API_BASE: plain http://")
    assert err.count("\n") == 1
