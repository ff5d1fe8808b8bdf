"""What `keyscan ci` decides to scan from a GitHub event (pure: env and payload in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keyscan.errors import KeyscanError
from keyscan.sources.ci_env import ZERO, detect, github_plan, plan_for

HEAD, BASE = "a" * 40, "b" * 40


def test_no_ci_is_the_whole_history() -> None:
    env = {"CI": "true", "GITLAB_CI": "true"}
    assert detect(env).provider is None
    assert plan_for(detect(env), env).scope == "history"


def test_github_is_detected_with_its_files() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": "/w", "GITHUB_STEP_SUMMARY": "/s"}
    ci = detect(env)
    assert (ci.provider, ci.workspace, ci.step_summary) == ("github", "/w", "/s")


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_pull_request_is_head_minus_base(event: str) -> None:
    payload = {"pull_request": {"number": 3, "head": {"sha": HEAD}, "base": {"sha": BASE}}}
    plan = github_plan(event, payload, sha="c" * 40)  # GITHUB_SHA is the merge commit: unused
    assert plan.revs == (HEAD, "^" + BASE)
    assert "pull request #3" in plan.describe


def test_push_is_before_to_after() -> None:
    plan = github_plan("push", {"ref": "refs/heads/main", "before": BASE, "after": HEAD}, None)
    assert (plan.scope, plan.revs, plan.branch) == ("range", (HEAD, "^" + BASE), "main")


def test_new_branch_push_names_the_branch_and_default() -> None:
    payload = {"ref": "refs/heads/topic/x", "before": ZERO, "after": HEAD,
               "repository": {"default_branch": "trunk"}}
    plan = github_plan("push", payload, None)
    assert (plan.scope, plan.head, plan.branch, plan.default_branch) == (
        "new-ref", HEAD, "topic/x", "trunk")


def test_deleted_branch_scans_nothing() -> None:
    sha256_zero = "0" * 64  # a SHA-256 repository's "no commit"
    assert github_plan("push", {"before": BASE, "after": sha256_zero}, None).scope == "nothing"
    assert github_plan("push", {"before": BASE, "after": ZERO, "deleted": True}, None).scope == (
        "nothing")


@pytest.mark.parametrize("event", ["workflow_dispatch", "schedule", "release", "issues"])
def test_other_events_scan_the_whole_history(event: str) -> None:
    assert github_plan(event, {}, HEAD).scope == "history"


def test_payload_values_that_are_not_commit_ids_are_not_revisions() -> None:
    # A branch name or title in the payload must never reach git as a revision or option.
    payload = {"pull_request": {"head": {"sha": "--output=/tmp/x"}, "base": {"sha": BASE}}}
    assert github_plan("pull_request", payload, None).scope == "history"


def test_event_file_is_read(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": BASE, "after": HEAD}), encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(event)}
    assert plan_for(detect(env), env).revs == (HEAD, "^" + BASE)
    event.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(KeyscanError, match="GITHUB_EVENT_PATH"):
        plan_for(detect(env), env)
