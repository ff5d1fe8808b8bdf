"""`--verify` and `--only-live` through the real CLI (a subprocess) against the fake vendors."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakevendor import HTML_PAGE, Answer, FakeVendors, json_answer
from gitrepo import Repo
from keys import PREFIXES, make_key

RNG = random.Random(606)


def keyscan(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # os.environ holds the fixture's KEYSCAN_*_API_BASE: the subprocess talks to the fake only.
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_scan_verify_json_sets_every_findings_verification(
    fake_vendor: FakeVendors, tmp_path: Path
) -> None:
    live = make_key("posteverywhere", RNG)
    revoked = make_key("repeatposts", RNG)
    broke = make_key("powerpost", RNG)
    portal = make_key("autoposting", RNG)
    placeholder = PREFIXES["powerpost"][0] + "x" * 24
    fake_vendor.answer(live, json_answer(200))
    fake_vendor.answer(revoked, json_answer(401))
    fake_vendor.answer(broke, json_answer(402))
    fake_vendor.answer(portal, HTML_PAGE)
    for n in range(3):  # the live key in three files: still one request
        (tmp_path / f"settings{n}.py").write_text(f'KEY = "{live}"\n')
    (tmp_path / "more.env").write_text(
        f"RP={revoked}\nPP={broke}\nAP={portal}\nPLACEHOLDER={placeholder}\n"
    )

    result = keyscan(
        "scan", ".", "--verify", "--format", "json", "--include-placeholders", cwd=tmp_path
    )

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    got = {
        (f["path"], f["vendor"], f["verification"]["status"], f["verification"]["http_status"])
        for f in report["findings"]
    }
    assert got == {
        ("settings0.py", "posteverywhere", "live", 200),
        ("settings1.py", "posteverywhere", "live", 200),
        ("settings2.py", "posteverywhere", "live", 200),
        ("more.env", "repeatposts", "invalid", 401),
        ("more.env", "powerpost", "live", 402),
        ("more.env", "autoposting", "unknown", 200),
        ("more.env", "powerpost", "unverifiable", None),
    }
    assert sorted(r.key for r in fake_vendor.requests) == sorted([live, revoked, broke, portal])  # type: ignore[type-var]
    for secret in (live, revoked, broke, portal, placeholder):
        assert secret not in result.stdout + result.stderr


def test_only_live_reports_live_keys_and_says_what_it_left_out(
    fake_vendor: FakeVendors, tmp_path: Path
) -> None:
    keys = {make_key("repeatposts", RNG): json_answer(s) for s in (200, 401, 401, 500)}
    for secret, answer in keys.items():
        fake_vendor.answer(secret, answer)
    (tmp_path / "keys.txt").write_text("".join(f"k = {k}\n" for k in keys))

    result = keyscan("scan", ".", "--only-live", "--format", "json", cwd=tmp_path)

    assert result.returncode == 1
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["verification"]["status"] == "live" and finding["line"] == 1
    assert (
        "keyscan: warning: --only-live left out 2 invalid, 1 unknown: "
        "rerun with --verify to see them"
    ) in result.stderr


def test_only_live_with_nothing_live_exits_0(fake_vendor: FakeVendors, tmp_path: Path) -> None:
    secret = make_key("powerpost", RNG)
    fake_vendor.answer(secret, json_answer(401))
    (tmp_path / "a.txt").write_text(secret + "\n")
    result = keyscan("scan", ".", "--only-live", cwd=tmp_path)
    assert result.returncode == 0
    assert "--only-live left out 1 invalid" in result.stderr


def test_git_verify_sends_one_request_for_a_key_in_many_commits(
    fake_vendor: FakeVendors, tmp_path: Path
) -> None:
    secret = make_key("autoposting", RNG)
    fake_vendor.answer(secret, json_answer(200))
    repo = Repo(tmp_path / "repo")
    for n in range(12):
        repo.write(f"conf{n}.txt", f"token {secret}\n")
        repo.commit(f"commit {n}")

    result = keyscan("git", "--verify", "--format", "json", cwd=repo.path)

    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert len(findings) == 12
    assert {f["verification"]["status"] for f in findings} == {"live"}
    assert len(fake_vendor.requests) == 1


def test_a_hung_vendor_cannot_hang_the_run(fake_vendor: FakeVendors, tmp_path: Path) -> None:
    secrets = [make_key("posteverywhere", RNG) for _ in range(3)]
    for secret in secrets:
        fake_vendor.answer(secret, Answer(200, delay=8.0))
    (tmp_path / "a.txt").write_text("".join(f"{s}\n" for s in secrets))

    started = time.monotonic()
    result = keyscan(
        "scan", ".", "--verify", "--format", "json", cwd=tmp_path, KEYSCAN_VERIFY_TIMEOUT="1"
    )

    assert time.monotonic() - started < 6
    statuses = [f["verification"] for f in json.loads(result.stdout)["findings"]]
    assert [v["status"] for v in statuses] == ["unknown"] * 3
    assert all("within the timeout" in v["detail"] for v in statuses)


def test_a_disallowed_override_fails_before_scanning(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing\n")
    result = keyscan(
        "scan",
        ".",
        "--verify",
        cwd=tmp_path,
        KEYSCAN_AUTOPOSTING_API_BASE="http://collector.example.net/api-proxy",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "keyscan: error: KEYSCAN_AUTOPOSTING_API_BASE: plain http:// is allowed only for "
        "loopback hosts (127.0.0.1, ::1, localhost); fix or unset it\n"
    )


def test_ctrl_c_does_not_wait_out_a_backoff(fake_vendor: FakeVendors, tmp_path: Path) -> None:
    import signal

    secret = make_key("repeatposts", RNG)
    fake_vendor.answer(secret, json_answer(429, Retry_After="50"))
    (tmp_path / "a.txt").write_text(secret + "\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "keyscan", "scan", ".", "--verify"],
        cwd=tmp_path,
        env={**os.environ, "KEYSCAN_VERIFY_TIMEOUT": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job (`.ci/run &`) starts with SIGINT ignored, and the child
        # would inherit that: give keyscan the disposition a terminal's Ctrl-C meets.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not fake_vendor.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_vendor.requests, "keyscan never asked the vendor"
    time.sleep(0.2)  # now waiting out the 50 s Retry-After
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"Ctrl-C did not end keyscan within 30 s; its stderr: {err[-2000:]!r}")
    assert time.monotonic() - interrupted < 5
    assert process.returncode == 2
    assert err.strip().splitlines()[-1] == "keyscan: error: interrupted"
    assert secret not in err
