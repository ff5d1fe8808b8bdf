"""`keyscan pre-push`: the commits a push sends, through a real `git push` and hook input."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from gitcli import ROOT, keyscan, scan_json
from gitrepo import Repo
from keys import make_key

ZERO = "0" * 40


@pytest.fixture
def rng() -> random.Random:
    return random.Random(11)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A clone-like setup: a work repository with `origin`, a real bare repository."""
    Repo(tmp_path / "origin.git", bare=True)
    repo = Repo(tmp_path / "work")
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    repo.write("README", "hello\n")
    repo.commit("start")
    repo.git("push", "-q", "origin", "main")
    return repo


def install_hook(repo: Repo) -> None:
    hook = repo.path / ".git" / "hooks" / "pre-push"
    hook.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m keyscan pre-push "$@"\n')
    hook.chmod(0o755)


def push(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    env = repo.env(PYTHONPATH=str(ROOT / "src"))
    return subprocess.run(["git", "push", "origin", *args], cwd=repo.path, env=env,
                          capture_output=True, text=True)


def line(local: str, remote: str, ref: str = "refs/heads/main") -> str:
    return f"{ref} {local} {ref} {remote}\n"


def test_git_push_of_a_leaking_commit_is_blocked_and_a_clean_one_passes(
    repo: Repo, rng: random.Random
) -> None:
    install_hook(repo)
    key = make_key("posteverywhere", rng)
    repo.write("deploy.sh", f"curl -H 'Authorization: Bearer {key}'\n")
    leak = repo.commit("deploy script")

    blocked = push(repo, "main")

    shown = blocked.stdout + blocked.stderr  # the hook's output, as the user sees it
    assert blocked.returncode != 0
    assert "deploy.sh:1" in shown
    assert key[-4:] in shown and key not in shown
    assert repo.git("ls-remote", "origin", "refs/heads/main").split()[0] != leak

    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.write("deploy.sh", "curl -H \"Authorization: Bearer $TOKEN\"\n")
    repo.commit("deploy script, key from the environment")
    assert push(repo, "main").returncode == 0


def test_a_key_already_on_the_remote_is_not_reported_again(repo: Repo, rng: random.Random
                                                           ) -> None:
    repo.write("old.cfg", f"key={make_key('repeatposts', rng)}\n")
    repo.commit()
    assert push(repo, "--no-verify", "main").returncode == 0
    install_hook(repo)
    repo.write("old.cfg", (repo.path / "old.cfg").read_text() + "other=1\n")
    repo.commit("edit another line")
    result = push(repo, "main")
    assert result.returncode == 0, result.stderr


def test_a_new_branch_scans_only_commits_no_remote_branch_has(repo: Repo, rng: random.Random
                                                              ) -> None:
    repo.write("shared.txt", f"{make_key('powerpost', rng)}\n")
    repo.commit()
    assert push(repo, "--no-verify", "main").returncode == 0
    repo.git("checkout", "-q", "-b", "topic")
    repo.write("topic.txt", f"x={make_key('autoposting', rng)}\n")
    topic = repo.commit()
    stdin = line(topic, ZERO, "refs/heads/topic")
    result = scan_json(repo.path, "origin", "url-ignored", command="pre-push", stdin=stdin)
    assert result.code == 1
    assert result.where() == [(topic, "topic.txt", 1, 3)]
    assert result.findings[0]["author_email"] == "alice@example.com"


def test_existing_branch_update_scans_local_not_remote(repo: Repo, rng: random.Random) -> None:
    remote = repo.git("rev-parse", "HEAD")
    repo.write("a.txt", f"{make_key('posteverywhere', rng)}\n")
    sha = repo.commit()
    result = scan_json(repo.path, command="pre-push", stdin=line(sha, remote))
    assert result.where() == [(sha, "a.txt", 1, 1)]
    same = scan_json(repo.path, command="pre-push", stdin=line(remote, remote))
    assert (same.code, same.findings) == (0, [])


def test_several_refs_in_one_push(repo: Repo, rng: random.Random) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "-q", "-b", "one")
    repo.write("one.txt", f"{make_key('repeatposts', rng)}\n")
    one = repo.commit()
    repo.git("checkout", "-q", "-b", "two", base)
    repo.write("two.txt", f"{make_key('powerpost', rng)}\n")
    two = repo.commit()
    stdin = line(one, ZERO, "refs/heads/one") + line(two, base, "refs/heads/two")
    result = scan_json(repo.path, "origin", command="pre-push", stdin=stdin)
    assert result.where() == sorted([(one, "one.txt", 1, 1), (two, "two.txt", 1, 1)])


def test_deleting_a_ref_or_empty_input_scans_nothing(repo: Repo) -> None:
    head = repo.git("rev-parse", "HEAD")
    deleted = f"(delete) {ZERO} refs/heads/gone {head}\n"
    for stdin in (deleted, ""):
        result = scan_json(repo.path, command="pre-push", stdin=stdin)
        assert (result.code, result.findings) == (0, [])


def test_under_pre_commit_the_environment_names_the_range(repo: Repo, rng: random.Random
                                                          ) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.write("env.txt", f"{make_key('autoposting', rng)}\n")
    sha = repo.commit()
    env = {"PRE_COMMIT_FROM_REF": base, "PRE_COMMIT_TO_REF": sha,
           "PRE_COMMIT_REMOTE_NAME": "origin"}
    result = scan_json(repo.path, command="pre-push", env=env, stdin="ignored garbage\n")
    assert result.where() == [(sha, "env.txt", 1, 1)]
    # A new branch: pre-commit may pass an empty or all-zeros "from".
    for start in ("", ZERO):
        result = scan_json(repo.path, command="pre-push",
                           env={**env, "PRE_COMMIT_FROM_REF": start})
        assert result.where() == [(sha, "env.txt", 1, 1)]


def test_outside_a_repository_is_exit_2(tmp_path: Path) -> None:
    result = keyscan("pre-push", cwd=tmp_path, stdin=line("1" * 40, ZERO))
    assert result.code == 2
    assert result.err.startswith("keyscan: error: not a git repository")


def test_malformed_input_is_exit_2(repo: Repo) -> None:
    result = keyscan("pre-push", cwd=repo.path, stdin="--all\n")
    assert result.code == 2
    assert result.err.startswith("keyscan: error: unexpected pre-push input line")


def git_processes(trace: Path) -> int:
    """How many git commands ran, from GIT_TRACE's log (one 'built-in' line each)."""
    return sum("trace: built-in: git" in line for line in trace.read_text().splitlines())


def test_a_push_of_many_refs_costs_one_walk_not_one_per_line(
    repo: Repo, rng: random.Random, tmp_path: Path
) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.write("tags.txt", f"{make_key('repeatposts', rng)}\n")
    leak = repo.commit("leak")
    counts = {}
    for refs in (3, 300):  # a mirror push or a push of tags: one stdin line per ref
        trace = tmp_path / f"trace-{refs}.log"
        stdin = "".join(
            line(leak if n % 2 else base, base if n % 3 else ZERO, f"refs/tags/t{n}")
            for n in range(refs)
        )
        result = scan_json(repo.path, "origin", command="pre-push", stdin=stdin,
                           env={"GIT_TRACE": str(trace)})
        assert result.where() == [(leak, "tags.txt", 1, 1)]
        counts[refs] = git_processes(trace)
    assert counts[300] == counts[3], counts  # the same git processes, whatever the lines
