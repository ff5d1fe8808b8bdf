"""What a live key opens (`verification.access`), read from the fake vendors' real-shaped
answers, and shown safely in every format: hostile names, never a person's e-mail."""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fakevendor import OK_BODIES, OWNER_EMAIL, FakeVendors, document_answer, json_answer
from keys import make_key
from keyscan.cli import main
from keyscan.verify.access import MAX_TEXT, safe_text
from test_ci import run_ci
from test_verify import finding, run

RNG = random.Random(1313)
FORMATS = ("text", "json", "sarif", "github")
# ANSI colours, a newline that would forge a report line and a workflow command, a bidi
# override, and 5,000 characters
HOSTILE = (
    "\x1b[31mAcme\x1b[0m\nFAKE.py:1:1: forged finding\r\n::error::forged\u202egpj.exe "
    + "A" * 5000
)


def pe_answer(organization: object = "Acme", **api_key: object) -> dict[str, object]:
    """PostEverywhere's /me answer with its organization (and key fields) replaced."""
    body = json.loads(json.dumps(OK_BODIES["posteverywhere"]))
    body["data"]["organization"]["name"] = organization
    body["data"]["api_key"].update(api_key)
    return body  # type: ignore[no-any-return]


# --- reading the answer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        (
            "posteverywhere",
            (
                ("organization", "Acme"),
                ("workspace", "Marketing"),
                ("key_name", "Production Backend"),
                ("scopes", ("read", "write")),
                ("last_used_at", "2026-11-30T17:04:51Z"),
            ),  # expires_at is null in the answer: left out, not claimed
        ),
        ("repeatposts", (("credits", 1180),)),
        ("powerpost", (("credits", 47),)),
        ("autoposting", (("organization", "org_acme_social"),)),
    ],
)
def test_each_vendors_answer_says_what_the_key_opens(
    fake_vendor: FakeVendors, vendor: str, expected: tuple[tuple[str, object], ...]
) -> None:
    secret = make_key(vendor, RNG)
    fake_vendor.answer(secret, json_answer(200))
    [out], _ = run([finding(secret, vendor)])
    assert out.verification is not None and out.verification.status == "live"
    assert out.verification.access == expected
    assert OWNER_EMAIL not in repr(out.verification)


def test_scopes_at_the_top_level_and_a_live_403_opening_nothing_known(
    fake_vendor: FakeVendors,
) -> None:
    top, forbidden = make_key("posteverywhere", RNG), make_key("posteverywhere", RNG)
    body = pe_answer()
    del body["data"]["api_key"]["scopes"]  # type: ignore[index]
    body["data"]["scopes"] = ["posts:read"]  # type: ignore[index]
    fake_vendor.answer(top, document_answer(200, body))
    fake_vendor.answer(forbidden, json_answer(403))
    out, _ = run([finding(top, "posteverywhere"), finding(forbidden, "posteverywhere")])
    assert out[0].verification and ("scopes", ("posts:read",)) in out[0].verification.access  # type: ignore[operator]
    assert out[1].verification and out[1].verification.status == "live"
    assert out[1].verification.access == ()  # live, but an error answer says nothing more


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Acme", "Acme"),
        ("  Acme \n", "Acme"),
        ("\x1b[2Jx", "\\x1b[2Jx"),
        ("a\u202eb\u2028c\ud800", "a\\u202eb\\u2028c\\ud800"),
        ("Dana's org (dana" + "@acme.example)", "Dana's org ([e-mail])"),
        ("mail: ops" + "@acme.example, bob" + "\x00@x.io", "mail: [e-mail], [e-mail]"),
        (42, "42"),
        (True, None),
        ("", None),
        ({"name": "x"}, None),
    ],
)
def test_strings_are_made_safe_to_print(value: object, shown: str | None) -> None:
    assert safe_text(value) == shown


def test_long_strings_are_cut_to_200_characters_without_splitting_an_escape() -> None:
    assert safe_text("B" * 5000) == "B" * (MAX_TEXT - 1) + "…"
    cut = safe_text("x" + "\x1b" * 100)
    assert cut is not None and len(cut) <= MAX_TEXT and cut.endswith("\\x1b…")
    assert len(safe_text(HOSTILE) or "") == MAX_TEXT


def test_the_key_itself_is_never_an_access_value(fake_vendor: FakeVendors) -> None:
    secret = make_key("posteverywhere", RNG)
    fake_vendor.answer(secret, document_answer(200, pe_answer(name=f"key {secret} (prod)")))
    [out], _ = run([finding(secret, "posteverywhere")])
    assert out.verification is not None
    assert ("key_name", "key [this key] (prod)") in out.verification.access  # type: ignore[operator]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"balance": "47"}, ()),  # a string is not a number: not claimed
        ({"balance": True}, ()),
        ({"balance": 12.0}, (("credits", 12),)),
        ({"balance": 0.5}, (("credits", 0.5),)),
    ],
)
def test_credits_only_from_numbers(
    fake_vendor: FakeVendors, document: object, expected: tuple[tuple[str, object], ...]
) -> None:
    secret = make_key("powerpost", RNG)
    fake_vendor.answer(secret, document_answer(200, document))
    [out], _ = run([finding(secret, "powerpost")])
    assert out.verification is not None and out.verification.status == "live"
    assert out.verification.access == expected


# --- shown in every format ------------------------------------------------------------------


def keyscan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd, capture_output=True, text=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip


def assert_safe(text: str, secret: str) -> None:
    """No e-mail, no key, no terminal escape, no line that the hostile name started."""
    assert OWNER_EMAIL not in text and "acme-social.example" not in text
    assert secret not in text
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text
    assert not re.search(r"^(FAKE\.py|::error::forged)", text, re.MULTILINE)
    assert "A" * (MAX_TEXT + 1) not in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_shows_what_the_key_opens_and_nothing_unsafe(
    fake_vendor: FakeVendors, tmp_path: Path, fmt: str
) -> None:
    friendly, hostile = make_key("posteverywhere", RNG), make_key("posteverywhere", RNG)
    fake_vendor.answer(friendly, json_answer(200))
    fake_vendor.answer(hostile, document_answer(200, pe_answer(HOSTILE, name=OWNER_EMAIL)))
    (tmp_path / "a.env").write_text(f"PE={friendly}\n")
    (tmp_path / "b.env").write_text(f"PE={hostile}\n")

    done = keyscan("scan", ".", "--verify", "--format", fmt, cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    assert_safe(done.stdout + done.stderr, friendly)
    assert_safe(done.stdout, hostile)
    opens = (
        "org Acme, workspace Marketing, key 'Production Backend', scopes read+write, "
        "last used 2026-11-30"
    )
    if fmt == "json":
        findings = {f["path"]: f for f in json.loads(done.stdout)["findings"]}
        access = findings["b.env"]["verification"]["access"]
        assert access["organization"].startswith("\\x1b[31mAcme\\x1b[0m\\nFAKE.py")
        assert len(access["organization"]) == MAX_TEXT and access["key_name"] == "[e-mail]"
        assert findings["a.env"]["verification"]["access"]["scopes"] == ["read", "write"]
    elif fmt == "text":
        assert f"  opens:    {opens}\n" in done.stdout
        assert "  opens:    org \\x1b[31mAcme\\x1b[0m\\nFAKE.py:1:1: forged" in done.stdout
    else:  # the finding's sentence: SARIF's result message, the annotation's text
        messages = done.stdout
        if fmt == "sarif":
            results = json.loads(done.stdout)["runs"][0]["results"]
            messages = "\n".join(result["message"]["text"] for result in results)
            assert_safe(messages, hostile)
        assert f"Opens: {opens}." in messages
        assert "Opens: org \\x1b[31mAcme\\x1b[0m\\nFAKE.py" in messages


def test_the_github_step_summary_shows_it_in_its_row(
    fake_vendor: FakeVendors, tmp_path: Path
) -> None:
    from gitrepo import Repo

    hostile = make_key("posteverywhere", RNG)
    fake_vendor.answer(hostile, document_answer(200, pe_answer(HOSTILE + " | <b>x</b>")))
    repo = Repo(tmp_path / "repo")
    repo.write("a.py", f"KEY = '{hostile}'\n")
    repo.commit()

    result = run_ci(tmp_path, repo.path, "--verify", event="workflow_dispatch", payload={})

    assert result.code == 1, result.err
    [row] = [line for line in result.summary.splitlines() if "a.py" in line]
    assert "**live**: opens org \\\\x1b\\[31mAcme" in row  # Markdown-escaped, one cell
    assert row.count(" | ") == 6 and "<b>" not in result.summary
    for text in (result.summary, result.out, result.err):
        assert_safe(text, hostile)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_verify_key_shows_it(
    fake_vendor: FakeVendors,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
) -> None:
    secret = make_key("posteverywhere", RNG)
    fake_vendor.answer(secret, document_answer(200, pe_answer(HOSTILE, name=OWNER_EMAIL)))
    monkeypatch.setattr("sys.stdin", io.StringIO(secret))
    with pytest.raises(SystemExit) as done:
        main(["verify-key", "--format", fmt])
    out, err = capsys.readouterr()
    assert done.value.code == 0, err
    assert_safe(out + err, secret)
    if fmt == "json":
        access = json.loads(out)["access"]
        assert access["workspace"] == "Marketing" and len(access["organization"]) == MAX_TEXT
    else:
        [line] = [line for line in out.splitlines() if line.startswith("opens:")]
        assert line.startswith("opens:  org \\x1b[31mAcme\\x1b[0m\\nFAKE.py")
        assert "key '[e-mail]', scopes read+write, last used 2026-11-30" in line


def test_verify_key_json_access_is_null_when_not_live(
    fake_vendor: FakeVendors, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = make_key("autoposting", RNG)
    fake_vendor.answer(secret, json_answer(401))
    monkeypatch.setattr("sys.stdin", io.StringIO(secret))
    with pytest.raises(SystemExit):
        main(["verify-key", "--format", "json"])
    assert json.loads(capsys.readouterr().out)["access"] is None
