"""The Markdown table `keyscan ci` appends to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import random

from keys import make_key
from keyscan.model import Commit, Finding, Report, Stats, Vendor
from keyscan.report.step_summary import render_step_summary

VENDORS = {"posteverywhere": Vendor("posteverywhere", "PostEverywhere", "Settings > API Keys")}


def report(*findings: Finding, show_secrets: bool = False) -> Report:
    return Report(findings=findings, stats=Stats(files=3, commits=2), rules={}, vendors=VENDORS,
                  version="0", show_secrets=show_secrets, mode="ci")


def finding(secret: str, path: str) -> Finding:
    commit = Commit(sha="f" * 40, author_name="A", author_email="a@x", date="2024-01-01")
    return Finding(rule_id="posteverywhere-api-key", vendor="posteverywhere", severity="critical",
                   secret=secret, path=path, line=4, column=9, prefix=secret[:8], commit=commit)


def test_clean_run_says_so() -> None:
    text = render_step_summary(report(), "the commits of pull request #1")
    assert "0 secrets found" in text and "No secrets found." in text
    assert "pull request #1" in text and "|" not in text


def test_a_row_per_finding_redacted_even_with_show_secrets() -> None:
    secret = make_key("posteverywhere", random.Random(1))
    text = render_step_summary(report(finding(secret, "a.py"), show_secrets=True), "x")
    assert secret not in text
    row = next(line for line in text.splitlines() if "a.py" in line)
    assert row.startswith("| PostEverywhere |") and secret[-4:] in row
    assert "Settings &gt; API Keys" in row and "ffffffffffff" in row and "| 4 |" in row


def test_odd_paths_cannot_break_the_table_or_inject_markup() -> None:
    secret = make_key("posteverywhere", random.Random(2))
    text = render_step_summary(report(finding(secret, "x|y\n<img src=z>`*.py")), "x")
    row = next(line for line in text.splitlines() if "x&#124;y" in line)
    assert row.count("|") == 7  # six cells
    assert "<img" not in text and "&lt;img" in text
