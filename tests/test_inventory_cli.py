"""`keyscan inventory`: reports from a real inventory (SQLite file) written by real audits."""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
from pathlib import Path

import pytest

from gitcli import keyscan
from gitrepo import Repo
from keys import make_key


def org(tmp_path: Path) -> dict[str, str]:
    """Three repositories audited; returns repository -> its key's sha256 (one key each)."""
    import hashlib

    rng = random.Random(7)
    keys = {}
    for name, vendor in (("api", "posteverywhere"), ("web", "powerpost"),
                         ("tools", "posteverywhere")):
        repo = Repo(tmp_path / name)
        key = make_key(vendor, rng)
        repo.write("settings.py", f"KEY = '{key}'\n")
        repo.commit("key")
        keys[name] = hashlib.sha256(key.encode()).hexdigest()
    done = keyscan("audit", "api", "web", "tools", cwd=tmp_path)
    assert done.code == 1, done.err
    return keys


def inventory(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = keyscan("inventory", *args, cwd=tmp_path)
    return result.code, result.out, result.err


@pytest.fixture
def audited(tmp_path: Path) -> dict[str, str]:
    return org(tmp_path)


def test_json_lists_every_finding_with_its_marks_newest_first(
    tmp_path: Path, audited: dict[str, str]
) -> None:
    db = tmp_path / "keyscan-inventory.sqlite"
    with sqlite3.connect(db) as conn:  # make 'tools' look older: first seen last month
        conn.execute("UPDATE findings SET first_seen = '2026-01-05T10:00:00+00:00' WHERE "
                     "repository_id = (SELECT id FROM repositories WHERE name = 'tools')")

    code, out, _ = inventory(tmp_path, "--format", "json")

    findings = json.loads(out)["findings"]
    assert code == 1
    assert {f["repository"]: f["secret_sha256"] for f in findings} == audited
    assert findings[-1]["repository"] == "tools"  # the oldest last
    assert [f["first_seen"] for f in findings] == sorted(
        (f["first_seen"] for f in findings), reverse=True)
    for finding in findings:
        assert finding["verification"] is None
        assert finding["refs"] == ["refs/heads/main"]
        assert finding["last_seen"] and finding["path"] == "settings.py"


def test_filters_by_repository_vendor_status_and_date(
    tmp_path: Path, audited: dict[str, str]
) -> None:
    def names(*args: str) -> tuple[int, list[str]]:
        code, out, _ = inventory(tmp_path, "--format", "json", *args)
        return code, sorted(f["repository"] for f in json.loads(out)["findings"])

    assert names("--repository", "t*") == (1, ["tools"])
    assert names("--vendor", "powerpost") == (1, ["web"])
    assert names("--status", "unverified") == (1, ["api", "tools", "web"])
    assert names("--status", "live") == (0, [])
    assert names("--new-since", "2020-01-01") == (1, ["api", "tools", "web"])
    assert names("--new-since", "2999-01-01T00:00:00Z") == (0, [])


def test_csv_has_a_row_per_finding_and_defuses_formulas(
    tmp_path: Path, audited: dict[str, str]
) -> None:
    with sqlite3.connect(tmp_path / "keyscan-inventory.sqlite") as conn:
        conn.execute("UPDATE findings SET path = '=HYPERLINK(\"http://x\")' WHERE "
                     "repository_id = (SELECT id FROM repositories WHERE name = 'web')")

    code, out, _ = inventory(tmp_path, "--format", "csv")

    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1 and len(rows) == 3
    assert {row["repository"]: row["secret_sha256"] for row in rows} == audited
    assert {row["status"] for row in rows} == {"unverified"}
    web = next(row for row in rows if row["repository"] == "web")
    assert web["path"].startswith("'=")


def test_text_and_sarif(tmp_path: Path, audited: dict[str, str]) -> None:
    code, text, _ = inventory(tmp_path)
    sarif_code, sarif, _ = inventory(tmp_path, "--format", "sarif")

    assert code == 1 and text.rstrip().endswith("3 findings in the inventory (3 repositories).")
    assert "repo:     api" in text
    assert sarif_code == 1 and len(json.loads(sarif)["runs"][0]["results"]) == 3


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = inventory(tmp_path)
    bad_date = inventory(tmp_path, "--new-since", "last tuesday")
    bad_url = inventory(tmp_path, "--inventory", "mysql://db/x")

    for code, out, err in (missing, bad_date, bad_url):
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith("keyscan: error: ")
    assert "run 'keyscan audit' first" in missing[2]
    assert not (tmp_path / "keyscan-inventory.sqlite").exists()  # reading never creates one
