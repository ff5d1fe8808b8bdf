"""One file per vendor: a fifth vendor is one file in rules/, and everything follows from it.

The end-to-end test copies keyscan's source next to a rules folder holding the four
shipped files and one more, and runs the real CLI from there: the new vendor's keys
are found, listed, verified at its endpoint with its header, and reported with its
name, where to revoke and what the key opens. Nothing else in keyscan was edited.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakevendor import FakeVendors, document_answer
from keys import ALNUM
from keyscan.errors import KeyscanError
from keyscan.model import Vendor
from keyscan.rules import load_builtin, load_folder
from keyscan.verify.endpoints import load_endpoints
from keyscan.verify.spec import endpoint_from

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "acme" + "_live_"
ACME = """\
vendor:
  id: acme
  name: Acme Social
  revoke: "Settings > Keys > Revoke"
  verify:
    base: https://api.acme-social.example/v2
    path: /whoami
    header: X-Acme-Key
    live: [200]
    invalid: [401, 403]
    expect: [team]
    access:
      organization: [team.name]
      scopes: [permissions]
rules:
  - id: acme-api-key
    description: Acme Social API key
    severity: critical
    pattern: '(?<![A-Za-z0-9_])(acme_live_[A-Za-z0-9]{24})(?![A-Za-z0-9_])'
    keywords: [acme_live_]
    prefixes: [acme_live_]
    verify: acme
    examples: ['ACME_KEY=acme_live_{alnum:24}']
    negative_examples: ['acme_live_{alnum:10}']
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """keyscan's source and its rules folder, plus rules/acme.yaml."""
    shutil.copytree(ROOT / "src" / "keyscan", tmp_path / "src" / "keyscan",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "rules" / "acme.yaml").write_text(ACME, encoding="utf-8")
    return tmp_path


def acme_key(rng: random.Random) -> str:
    return PREFIX + "".join(rng.choice(ALNUM) for _ in range(24))


def keyscan(
    checkout: Path, *args: str, cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, **env, "PYTHONPATH": str(checkout / "src")},
    )  # fmt: skip


def test_a_fifth_vendor_is_one_file(checkout: Path, tmp_path: Path) -> None:
    fake = FakeVendors()
    fake.add_vendor("acme", "/v2/whoami", "X-Acme-Key", "", "/v2")
    rng = random.Random(55)
    live, revoked = acme_key(rng), acme_key(rng)
    fake.answer(live, document_answer(200, {"team": {"name": "Rocket Co"},
                                             "permissions": ["publish"]}))  # fmt: skip
    fake.answer(revoked, document_answer(403, {"error": "revoked"}))
    work = tmp_path / "work"
    work.mkdir()
    (work / "deploy.env").write_text(f"ACME_KEY={live}\nOLD_KEY={revoked}\n")
    env = {"KEYSCAN_ACME_API_BASE": fake.base("acme"), "KEYSCAN_CACHE_DIR": str(tmp_path / "c")}
    try:
        listed = keyscan(checkout, "rules", cwd=work, env=env)
        checked = keyscan(checkout, "rules", "check", cwd=work, env=env)
        text = keyscan(checkout, "scan", ".", "--verify", cwd=work, env=env)
        report = keyscan(checkout, "scan", ".", "--verify", "--format", "json", cwd=work, env=env)
        one = keyscan(checkout, "verify-key", "--vendor", "acme", cwd=work, env=env, stdin=live)
    finally:
        fake.close()

    assert "acme-api-key" in listed.stdout and listed.stdout.count("acme") >= 2
    assert [line.split()[-1] for line in listed.stdout.splitlines() if "acme-api" in line] == [
        "yes"
    ]
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert text.returncode == 1, text.stderr
    assert "Acme Social API key (acme-api-key, critical)" in text.stdout
    assert "  opens:    org Rocket Co, scopes publish\n" in text.stdout
    assert "  revoke:   Acme Social: Settings > Keys > Revoke" in text.stdout
    verdicts = {
        f["line"]: (f["vendor"], f["verification"]["status"], f["verification"]["access"])
        for f in json.loads(report.stdout)["findings"]
    }
    assert verdicts == {
        1: ("acme", "live", {"organization": "Rocket Co", "scopes": ["publish"]}),
        2: ("acme", "invalid", None),
    }
    assert one.returncode == 0 and "opens:  org Rocket Co, scopes publish" in one.stdout
    sent = [(r.method, r.path, r.headers.get("x-acme-key")) for r in fake.requests]
    # two scans (one request per key each) and verify-key
    assert sorted(sent) == sorted([("GET", "/v2/whoami", live)] * 3
                                  + [("GET", "/v2/whoami", revoked)] * 2)  # fmt: skip
    for secret in (live, revoked):
        assert secret not in text.stdout + report.stdout + one.stdout + one.stderr


def test_the_loader_reads_any_folder_of_vendor_files(checkout: Path) -> None:
    ruleset = load_folder(checkout / "rules")
    assert set(ruleset.vendors) == set(load_builtin().vendors) | {"acme"}
    endpoints = load_endpoints({}, ruleset.vendors)
    assert endpoints["acme"].url == "https://api.acme-social.example/v2/whoami"
    assert "acme" not in load_endpoints({})  # only the shipped files say where keys go


def test_a_vendor_file_is_named_after_its_vendor(checkout: Path) -> None:
    (checkout / "rules" / "acme.yaml").rename(checkout / "rules" / "zeta.yaml")
    with pytest.raises(KeyscanError, match=r"rules/zeta.yaml: a vendor's file is named"):
        load_folder(checkout / "rules")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"base": "http://api.acme-social.example/v2"}, "base must be an https:// URL"),
        ({"base": "https://api.acme-social.example/v2/"}, "base must be an https:// URL"),
        ({"path": "whoami"}, "path must start with '/'"),
        ({"header": "X Acme"}, "header must be a header name"),
        ({"live": [200], "invalid": [200]}, "must be disjoint"),
        ({"live": ["200"]}, "live must be a list of HTTP statuses"),
        ({"unsure": {200: "why"}}, "must be disjoint"),
        ({"limits": [[30]]}, "limits must be a list of [requests, seconds] pairs"),
        ({"envelope": {"key": "data"}}, "envelope must be"),
        ({"access": {"owner_email": ["user.email"]}}, "access has an unknown field 'owner_email'"),
        ({"access": {"organization": ["team name"]}}, "access organization must be a list"),
        ({"follow_redirects": True}, "unknown key 'follow_redirects'"),
    ],
)
def test_a_malformed_verify_section_names_the_problem(
    change: dict[str, object], problem: str
) -> None:
    spec: dict[str, object] = {
        "base": "https://api.acme-social.example/v2",
        "path": "/whoami",
        "header": "X-Acme-Key",
        "live": [200],
        "invalid": [401],
    }
    spec.update(change)
    with pytest.raises(KeyscanError) as error:
        endpoint_from(Vendor("acme", "Acme", "Settings", spec))
    assert str(error.value).startswith("rules/acme.yaml: vendor verify ")
    assert problem in str(error.value)


def test_rules_check_rejects_a_malformed_verify_section(tmp_path: Path) -> None:
    from keyscan.cli import main

    broken = tmp_path / "acme.yaml"
    broken.write_text(ACME.replace("path: /whoami", "path: whoami"), encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["rules", "check", str(broken)])
    assert done.value.code == 2


def test_a_config_cannot_give_a_vendor_a_verify_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keyscan.cli import main

    (tmp_path / ".keyscan.yaml").write_text(
        "vendor: {id: acme, name: A, revoke: x, verify: {base: 'https://evil.example'}}\n"
    )
    (tmp_path / "a.txt").write_text("nothing\n")
    with pytest.raises(SystemExit) as done:
        main(["scan", str(tmp_path), "--verify"])
    assert done.value.code == 2
    assert "unknown key 'vendor'" in capsys.readouterr().err
