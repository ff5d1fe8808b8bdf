"""`keyscan ci`: real repositories, simulated GitHub Actions runs, checked as a user sees them."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitrepo import BASE_ENV, Repo
from keys import make_key

ZERO = "0" * 40
ANNOTATION = re.compile(r"^::error (?P<props>[^:]*)::(?P<message>.*)$", re.MULTILINE)


@dataclass
class Result:
    code: int
    out: str
    err: str
    summary: str  # what was appended to $GITHUB_STEP_SUMMARY ("" if nothing)

    def annotated_files(self, text: str | None = None) -> list[str]:
        found = ANNOTATION.finditer(self.out if text is None else text)
        return sorted(m.group("props").split("file=")[1].split(",")[0] for m in found)

    def assert_no_secret(self, *keys: str) -> None:
        for key in keys:
            outputs = {"stdout": self.out, "stderr": self.err, "summary": self.summary}
            for where, text in outputs.items():
                assert key not in text, f"a whole secret in {where}"


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)


def key(rng: random.Random) -> str:
    return make_key("posteverywhere", rng)


def run_ci(
    tmp: Path,
    cwd: Path,
    *args: str,
    event: str | None = None,
    payload: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Result:
    """`python -m keyscan ci` in `cwd`; with `event`, as in a GitHub Actions job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env.update(BASE_ENV)
    summary = tmp / "step-summary.md"
    summary.unlink(missing_ok=True)
    if event is not None:
        event_file = tmp / "event.json"
        event_file.write_text(json.dumps(payload or {}), encoding="utf-8")
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_EVENT_NAME=event,
            GITHUB_EVENT_PATH=str(event_file),
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_WORKSPACE=str(cwd),
        )
    env.update(extra_env or {})
    done = subprocess.run(
        [sys.executable, "-m", "keyscan", "ci", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )
    text = summary.read_text(encoding="utf-8") if summary.exists() else ""
    return Result(done.returncode, done.stdout, done.stderr, text)


def json_paths(out: str) -> list[str]:
    return sorted(f["path"] for f in json.loads(out)["findings"])


# --- pull requests -----------------------------------------------------------------------


def pull_request_repo(tmp_path: Path, rng: random.Random) -> tuple[Repo, dict[str, Any], list[str]]:
    """main has a key before and after the branch point; the PR's two commits add two more."""
    keys = [key(rng) for _ in range(4)]
    repo = Repo(tmp_path / "repo")
    repo.write("old.py", f"TOKEN = '{keys[0]}'\n")
    fork = repo.commit("old key on main")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("app/new.py", f"\nTOKEN = '{keys[1]}'\n")
    repo.commit("first PR commit")
    repo.write("settings.cfg", f"[api]\ntoken = {keys[2]}\n")
    head = repo.commit("second PR commit")
    repo.git("checkout", "-q", "main")
    repo.write("later.py", f"TOKEN = '{keys[3]}'\n")
    base = repo.commit("main moves on")
    assert fork != base
    payload = {"number": 12, "pull_request": {
        "number": 12, "head": {"sha": head, "ref": "feature"}, "base": {"sha": base, "ref": "main"},
    }}
    return repo, payload, keys


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_pull_request_reports_only_its_commits(
    tmp_path: Path, rng: random.Random, event: str
) -> None:
    repo, payload, keys = pull_request_repo(tmp_path, rng)

    result = run_ci(tmp_path, repo.path, event=event, payload=payload)

    assert result.code == 1, result.err
    assert result.annotated_files() == ["app/new.py", "settings.cfg"]
    assert "old.py" not in result.out and "later.py" not in result.out
    result.assert_no_secret(*keys)
    # the step summary: a table row per finding, redacted, naming where to revoke
    lines = result.summary.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "Vendor" not in line]
    assert len(rows) == 2
    assert "2 secrets found" in result.summary and "pull request #12" in result.summary
    assert keys[1][-4:] in result.summary and keys[2][-4:] in result.summary
    assert "Revoke" in result.summary


def test_pull_request_json_stays_parseable_with_annotations_on_stderr(
    tmp_path: Path, rng: random.Random
) -> None:
    repo, payload, keys = pull_request_repo(tmp_path, rng)
    sarif = tmp_path / "out" / "keyscan.sarif"
    sarif.parent.mkdir()

    result = run_ci(tmp_path, repo.path, "--format", "json", "--sarif-file", str(sarif),
                    event="pull_request", payload=payload)

    assert result.code == 1, result.err
    assert json_paths(result.out) == ["app/new.py", "settings.cfg"]
    assert all(f["commit"] for f in json.loads(result.out)["findings"])
    assert result.annotated_files(result.err) == ["app/new.py", "settings.cfg"]
    log = json.loads(sarif.read_text(encoding="utf-8"))
    assert sum(len(run["results"]) for run in log["runs"]) == 2
    result.assert_no_secret(*keys)
    assert not any(key in sarif.read_text(encoding="utf-8") for key in keys)


def test_sarif_to_a_file_still_annotates_stdout(tmp_path: Path, rng: random.Random) -> None:
    repo, payload, _ = pull_request_repo(tmp_path, rng)
    out = tmp_path / "keyscan.sarif"

    result = run_ci(tmp_path, repo.path, "--format", "sarif", "--output", str(out),
                    event="pull_request", payload=payload)

    assert result.code == 1, result.err
    assert result.annotated_files() == ["app/new.py", "settings.cfg"]
    assert json.loads(out.read_text(encoding="utf-8"))["version"] == "2.1.0"


def test_github_format_is_not_printed_twice(tmp_path: Path, rng: random.Random) -> None:
    repo, payload, _ = pull_request_repo(tmp_path, rng)

    result = run_ci(
        tmp_path, repo.path, "--format", "github", event="pull_request", payload=payload
    )

    assert result.code == 1, result.err
    assert result.annotated_files() == ["app/new.py", "settings.cfg"]


def test_clean_pull_request(tmp_path: Path, rng: random.Random) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("old.py", f"TOKEN = '{key(rng)}'\n")
    base = repo.commit()
    repo.write("readme.md", "no keys here\n")
    head = repo.commit()
    payload = {"pull_request": {"head": {"sha": head}, "base": {"sha": base}}}

    result = run_ci(tmp_path, repo.path, event="pull_request", payload=payload)

    assert result.code == 0, result.err
    assert "::error" not in result.out
    assert "No secrets found." in result.summary


# --- pushes --------------------------------------------------------------------------------


def test_push_reports_before_to_after(tmp_path: Path, rng: random.Random) -> None:
    keys = [key(rng) for _ in range(3)]
    repo = Repo(tmp_path / "repo")
    repo.write("a.py", f"A = '{keys[0]}'\n")
    repo.commit()
    repo.write("b.py", f"B = '{keys[1]}'\n")
    before = repo.commit()
    repo.write("c.py", f"C = '{keys[2]}'\n")
    repo.commit()
    repo.write("d.txt", "nothing\n")
    after = repo.commit()
    payload = {"ref": "refs/heads/main", "before": before, "after": after,
               "repository": {"default_branch": "main"}}

    result = run_ci(tmp_path, repo.path, event="push", payload=payload)

    assert result.code == 1, result.err
    assert result.annotated_files() == ["c.py"]
    result.assert_no_secret(*keys)


def new_branch_clone(tmp_path: Path, rng: random.Random) -> tuple[Path, str, list[str]]:
    """An origin with main and `other`; a clone pushes `feature`, forked from `other`."""
    keys = [key(rng) for _ in range(3)]
    origin = Repo(tmp_path / "origin.git", bare=True)
    dev = Repo(tmp_path / "dev")
    dev.write("main.py", f"M = '{keys[0]}'\n")
    dev.commit()
    dev.git("checkout", "-q", "-b", "other")
    dev.write("other.py", f"O = '{keys[1]}'\n")
    dev.commit()
    dev.git("checkout", "-q", "-b", "feature")
    dev.write("feature.py", f"F = '{keys[2]}'\n")
    after = dev.commit()
    dev.git("remote", "add", "origin", str(origin.path))
    dev.git("push", "-q", "origin", "main", "other", "feature")
    clone = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", "--branch", "feature", str(origin.path), str(clone)],
                   check=True, env=dev.env())
    return clone, after, keys


def test_new_branch_push_reports_commits_on_no_other_branch(
    tmp_path: Path, rng: random.Random
) -> None:
    checkout, after, keys = new_branch_clone(tmp_path, rng)
    # In the checkout, origin/feature (the pushed branch) points at `after` itself.
    tracking = subprocess.run(["git", "rev-parse", "origin/feature"], cwd=checkout,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert tracking == after
    payload = {"ref": "refs/heads/feature", "before": ZERO, "after": after, "created": True,
               "repository": {"default_branch": "main"}}

    result = run_ci(tmp_path, checkout, event="push", payload=payload)

    assert result.code == 1, result.err
    assert result.annotated_files() == ["feature.py"]
    result.assert_no_secret(*keys)


def test_branch_deletion_scans_nothing(tmp_path: Path, rng: random.Random) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("a.py", f"A = '{key(rng)}'\n")
    before = repo.commit()
    payload = {"ref": "refs/heads/gone", "before": before, "after": ZERO, "deleted": True}

    result = run_ci(tmp_path, repo.path, event="push", payload=payload)

    assert result.code == 0, result.err
    assert "No secrets found." in result.summary


# --- whole history -------------------------------------------------------------------------


def history_repo(tmp_path: Path, rng: random.Random) -> tuple[Repo, str]:
    """A key added and deleted again: only a history scan finds it."""
    secret = key(rng)
    repo = Repo(tmp_path / "repo")
    repo.write("a.py", f"A = '{secret}'\n")
    repo.commit()
    repo.write("a.py", "A = os.environ['A']\n")
    repo.commit()
    return repo, secret


@pytest.mark.parametrize("event", [None, "workflow_dispatch", "schedule"])
def test_whole_history_without_a_change_event(
    tmp_path: Path, rng: random.Random, event: str | None
) -> None:
    repo, secret = history_repo(tmp_path, rng)

    result = run_ci(tmp_path, repo.path, "--format", "json", event=event, payload={})

    assert result.code == 1, result.err
    assert json_paths(result.out) == ["a.py"]
    result.assert_no_secret(secret)
    if event is None:
        assert "::error" not in result.out + result.err and result.summary == ""
    else:
        assert "whole history" in result.summary


def test_range_override_for_other_cis(tmp_path: Path, rng: random.Random) -> None:
    keys = [key(rng) for _ in range(2)]
    repo = Repo(tmp_path / "repo")
    repo.write("a.py", f"A = '{keys[0]}'\n")
    base = repo.commit()
    repo.write("b.py", f"B = '{keys[1]}'\n")
    head = repo.commit()
    gitlab = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_DIFF_BASE_SHA": base, "CI_COMMIT_SHA": head}

    result = run_ci(tmp_path, repo.path, "--format", "json", "--range", f"{base}..{head}",
                    extra_env=gitlab)

    assert result.code == 1, result.err
    assert json_paths(result.out) == ["b.py"]


def test_workspace_is_the_default_repo(tmp_path: Path, rng: random.Random) -> None:
    repo, _ = history_repo(tmp_path, rng)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = run_ci(tmp_path, elsewhere, "--format", "json", event="workflow_dispatch",
                    extra_env={"GITHUB_WORKSPACE": str(repo.path)})

    assert result.code == 1, result.err
    assert json_paths(result.out) == ["a.py"]


def test_bad_event_payload_is_exit_2(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit()
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")

    result = run_ci(tmp_path, repo.path, event="push",
                    extra_env={"GITHUB_EVENT_PATH": str(tmp_path / "broken.json")})

    assert result.code == 2
    assert result.err.count("\n") == 1 and "GITHUB_EVENT_PATH" in result.err


# --- shallow checkouts ---------------------------------------------------------------------


def shallow_clone(tmp_path: Path, rng: random.Random) -> tuple[Path, str, str, list[str]]:
    keys = [key(rng) for _ in range(3)]
    origin = Repo(tmp_path / "origin")
    for name, secret in zip("abc", keys, strict=True):
        origin.write(f"{name}.py", f"K = '{secret}'\n")
        origin.commit()
    before = origin.git("rev-parse", "HEAD~1")
    after = origin.git("rev-parse", "HEAD")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{origin.path}", str(clone)],
                   check=True, env=origin.env())
    return clone, before, after, keys


def is_shallow(path: Path) -> bool:
    done = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=path,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip() == "true"


def test_shallow_checkout_is_fetched(tmp_path: Path, rng: random.Random) -> None:
    clone, before, after, keys = shallow_clone(tmp_path, rng)
    payload = {"ref": "refs/heads/main", "before": before, "after": after}

    result = run_ci(tmp_path, clone, "--format", "json", event="push", payload=payload)

    assert result.code == 1, result.err
    assert json_paths(result.out) == ["c.py"]
    assert not is_shallow(clone)
    result.assert_no_secret(*keys)


def test_a_range_end_is_never_an_option_to_git_fetch(tmp_path: Path, rng: random.Random) -> None:
    # A shallow clone with a remote: keyscan fetches the ends of --range it lacks. An end
    # such as `--upload-pack=CMD` must be refused, not handed to `git fetch` to run.
    clone, _, _, _ = shallow_clone(tmp_path, rng)
    marker = tmp_path / "ran"
    evil = "HEAD..--upload-pack=touch${IFS}" + f"{marker};git-upload-pack"  # one word

    result = run_ci(tmp_path, clone, "--range", evil, event="push", payload={})

    assert result.code == 2
    assert len(result.err.splitlines()) == 1 and "looks like an option" in result.err
    assert not marker.exists()


@pytest.mark.parametrize("event", ["push", "workflow_dispatch"])
def test_shallow_checkout_without_remote_is_exit_2(
    tmp_path: Path, rng: random.Random, event: str
) -> None:
    clone, before, after, keys = shallow_clone(tmp_path, rng)
    subprocess.run(["git", "remote", "remove", "origin"], cwd=clone, check=True)
    payload = {"ref": "refs/heads/main", "before": before, "after": after}

    result = run_ci(tmp_path, clone, event=event, payload=payload)

    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert "is shallow and lacks" in lines[0] and "fetch-depth: 0" in lines[0]
    if event == "push":
        assert before[:12] in lines[0]
    result.assert_no_secret(*keys)


def test_config_at_the_work_tree_top_applies(tmp_path: Path, rng: random.Random) -> None:
    repo, payload, _ = pull_request_repo(tmp_path, rng)
    (repo.path / ".keyscan.yaml").write_text("allow:\n  paths: ['*.cfg']\n", encoding="utf-8")

    result = run_ci(tmp_path, repo.path, event="pull_request", payload=payload)

    assert result.code == 1, result.err
    assert result.annotated_files() == ["app/new.py"]


def test_force_push_whose_old_tip_is_gone(tmp_path: Path, rng: random.Random) -> None:
    keys = [key(rng) for _ in range(2)]
    repo = Repo(tmp_path / "repo")
    repo.write("a.py", f"A = '{keys[0]}'\n")
    repo.commit()
    repo.write("b.py", f"B = '{keys[1]}'\n")
    after = repo.commit()
    payload = {"ref": "refs/heads/main", "before": "e" * 40, "after": after, "forced": True}

    result = run_ci(tmp_path, repo.path, "--format", "json", event="push", payload=payload)

    assert result.code == 1, result.err
    assert json_paths(result.out) == ["a.py", "b.py"]  # no other branch: all of main is new
    assert "eeeeeeeeeeee is gone" in result.err


def test_unwritable_sarif_file_fails_before_scanning(tmp_path: Path, rng: random.Random) -> None:
    repo, _ = history_repo(tmp_path, rng)

    result = run_ci(tmp_path, repo.path, "--sarif-file", str(tmp_path / "no" / "x.sarif"))

    assert result.code == 2
    assert result.out == "" and len(result.err.splitlines()) == 1
    assert "does not exist" in result.err


def test_new_branch_push_from_a_depth_1_checkout(tmp_path: Path, rng: random.Random) -> None:
    _, after, keys = new_branch_clone(tmp_path, rng)
    shallow = tmp_path / "shallow"
    origin = f"file://{tmp_path / 'origin.git'}"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "feature", origin,
                    str(shallow)], check=True)
    payload = {"ref": "refs/heads/feature", "before": ZERO, "after": after,
               "repository": {"default_branch": "main"}}

    result = run_ci(tmp_path, shallow, event="push", payload=payload)

    assert result.code == 1, result.err
    assert result.annotated_files() == ["feature.py"]
    assert not is_shallow(shallow)
    result.assert_no_secret(*keys)


def test_pull_request_target_fetches_a_head_the_checkout_lacks(
    tmp_path: Path, rng: random.Random
) -> None:
    # pull_request_target checks out the base branch: the fork's commits are only
    # on the base repository's refs/pull/N/head, so keyscan fetches the head by id.
    secret = key(rng)
    origin = Repo(tmp_path / "origin.git", bare=True)
    dev = Repo(tmp_path / "dev")
    dev.write("a.txt", "base\n")
    base = dev.commit()
    dev.write("fork.py", f"F = '{secret}'\n")
    head = dev.commit()
    dev.git("remote", "add", "origin", str(origin.path))
    dev.git("push", "-q", "origin", f"{base}:refs/heads/main", f"{head}:refs/pull/1/head")
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", f"file://{origin.path}", str(checkout)], check=True)
    lacks = subprocess.run(["git", "cat-file", "-e", head], cwd=checkout)
    assert lacks.returncode != 0
    payload = {"pull_request": {"head": {"sha": head}, "base": {"sha": base}}}

    result = run_ci(tmp_path, checkout, event="pull_request_target", payload=payload)

    assert result.code == 1, result.err
    assert result.annotated_files() == ["fork.py"]
    result.assert_no_secret(secret)


def test_pull_request_base_that_cannot_be_fetched_is_exit_2(
    tmp_path: Path, rng: random.Random
) -> None:
    repo, payload, _ = pull_request_repo(tmp_path, rng)
    payload["pull_request"]["base"]["sha"] = "e" * 40

    result = run_ci(tmp_path, repo.path, event="pull_request", payload=payload)

    assert result.code == 2
    assert result.err.splitlines() == [
        "keyscan: error: the checkout lacks eeeeeeeeeeee: set `fetch-depth: 0` on actions/checkout"
    ]
