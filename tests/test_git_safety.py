"""History is read as the remote receives it, and a scanned repository runs nothing.

`git replace` and grafts can show git a history without the commit that added a key,
while a push sends the original objects; a repository's config can name programs git
runs (fsmonitor, hooks, filters, textconv, ssh, askpass, credential helpers, upload-pack).
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from gitcli import Result, keyscan
from gitrepo import Repo
from keys import make_key
from test_ci import Result as CiResult
from test_ci import run_ci

ZERO = "0" * 40


@pytest.fixture
def key() -> str:
    return make_key("repeatposts", random.Random(5))


def hidden_by_replace(tmp_path: Path, key: str) -> tuple[Repo, str]:
    """main: base -> leak (adds the key) -> later (removes it); `leak` replaced by a twin
    without it."""
    repo = Repo(tmp_path / "repo")
    repo.write("app.py", "x = 1\n")
    repo.commit("base")
    repo.write("config.py", f"KEY = '{key}'\n")
    leak = repo.commit("leak")
    repo.git("rm", "-q", "config.py")
    repo.commit("later")
    twin_tree = repo.git("rev-parse", "HEAD~2^{tree}")
    twin = repo.git("commit-tree", twin_tree, "-p", "HEAD~2", "-m", "leak")
    repo.git("replace", leak, twin)
    # what git shows now: no config.py anywhere (so a scan honouring replacements is clean)
    assert "config.py" not in repo.git("log", "--name-only", "--format=")
    return repo, leak


def test_git_sees_the_replaced_commit(tmp_path: Path, key: str) -> None:
    repo, leak = hidden_by_replace(tmp_path, key)
    result = keyscan("git", "--format", "json", cwd=repo.path)
    assert result.code == 1, result.err
    assert [(f["commit"], f["path"]) for f in result.findings] == [(leak, "config.py")]


def test_pre_push_sees_the_replaced_commit(tmp_path: Path, key: str) -> None:
    repo, leak = hidden_by_replace(tmp_path, key)
    head = repo.git("rev-parse", "HEAD")
    result = keyscan("pre-push", "--format", "json", "origin", "file:///nowhere", cwd=repo.path,
                     stdin=f"refs/heads/main {head} refs/heads/main {ZERO}\n")
    assert result.code == 1, result.err
    assert [f["commit"] for f in result.findings] == [leak]


def test_ci_sees_the_replaced_commit(tmp_path: Path, key: str) -> None:
    repo, leak = hidden_by_replace(tmp_path, key)
    base = repo.git("rev-parse", "HEAD~2")
    payload = {"ref": "refs/heads/main", "before": base, "after": repo.git("rev-parse", "HEAD")}
    result = run_ci(tmp_path, repo.path, "--format", "json", event="push", payload=payload)
    assert result.code == 1, result.err
    assert leak in result.out


def test_staged_compares_with_the_real_head(tmp_path: Path, key: str) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("app.py", "x = 1\n")
    head = repo.commit("base")
    repo.write("config.py", f"KEY = '{key}'\n")
    repo.git("add", "config.py")
    # HEAD replaced by a commit whose tree is the index: nothing looks staged any more
    twin = repo.git("commit-tree", repo.git("write-tree"), "-m", "base")
    repo.git("replace", head, twin)
    assert repo.git("diff", "--cached", "--name-only") == ""
    result = keyscan("staged", "--format", "json", cwd=repo.path)
    assert result.code == 1, result.err
    assert [f["path"] for f in result.findings] == ["config.py"]


def test_grafts_do_not_hide_history(tmp_path: Path, key: str) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("app.py", "x = 1\n")
    base = repo.commit("base")
    repo.write("config.py", f"KEY = '{key}'\n")
    leak = repo.commit("leak")
    repo.git("rm", "-q", "config.py")
    head = repo.commit("remove")
    (repo.path / ".git" / "info").mkdir(exist_ok=True)
    (repo.path / ".git" / "info" / "grafts").write_text(f"{head} {base}\n")
    assert leak not in repo.git("rev-list", "--all")  # git itself now skips it
    result = keyscan("git", "--format", "json", cwd=repo.path)
    assert result.code == 1, result.err
    assert [f["commit"] for f in result.findings] == [leak]


# --- a repository whose config would leave a marker if git ran anything it names ---------


def booby_trap(repo: Repo, marks: Path) -> None:
    """Every program a repository's config (and attributes) can make git run."""
    marks.mkdir()
    script = marks.parent / "mark.sh"
    script.write_text(f'#!/bin/sh\ntouch "{marks}/$1"\ncat >/dev/null 2>&1 <&- || true\n')
    script.chmod(0o755)
    hooks = marks.parent / "hooks"
    hooks.mkdir()
    for hook in ("reference-transaction", "post-checkout", "post-merge", "pre-auto-gc",
                 "post-rewrite", "post-index-change", "fsmonitor-watchman"):
        (hooks / hook).write_text(f'#!/bin/sh\ntouch "{marks}/hook-{hook}"\n')
        (hooks / hook).chmod(0o755)
    run = f"{script}"
    settings = {
        "core.fsmonitor": f"{hooks}/fsmonitor-watchman",
        "core.hooksPath": str(hooks),
        "core.sshCommand": f"{run} ssh",
        "core.askPass": f"{run} askpass",
        "core.gitProxy": f"{run} proxy",
        "core.alternateRefsCommand": f"{run} alternate-refs",
        "credential.helper": f"!{run} credential",
        "remote.origin.uploadpack": f"{run} upload-pack",
        "diff.evil.textconv": f"{run} textconv",
        "diff.evil.command": f"{run} diff-command",
        "diff.external": f"{run} external-diff",
        "filter.evil.clean": f"{run} clean",
        "filter.evil.smudge": f"{run} smudge",
        "filter.evil.process": f"{run} process",
        "filter.evil.required": "true",
        "gpg.program": f"{run} gpg",
        "log.showSignature": "true",
        "core.pager": f"{run} pager",
    }
    for name, value in settings.items():
        repo.git("config", name, value)
    info = repo.path / ".git" / "info"
    info.mkdir(exist_ok=True)
    (info / "attributes").write_text("* diff=evil filter=evil\n")


def trapped_repo(tmp_path: Path, key: str) -> tuple[Repo, Path, str]:
    """A shallow clone with one commit of its own and a staged key, then booby-trapped."""
    origin = Repo(tmp_path / "origin")
    origin.write("app.py", "x = 1\n")
    base = origin.commit("base")
    origin.write("old.py", "z = 3\n")
    origin.commit("more")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{origin.path}", str(clone)],
                   check=True, env=origin.env(), capture_output=True)
    repo = Repo.__new__(Repo)
    repo.path, repo.tick = clone, origin.tick
    repo.write("config.py", f"KEY = '{key}'\n")
    repo.commit("leak")
    repo.write("staged.py", f"OTHER = '{key}'\n")
    repo.git("add", "staged.py")
    marks = tmp_path / "marks"
    booby_trap(repo, marks)
    return repo, marks, base


def test_a_booby_trapped_repository_runs_nothing(tmp_path: Path, key: str) -> None:
    repo, marks, base = trapped_repo(tmp_path, key)
    head = repo.git("rev-parse", "HEAD")
    push = {"ref": "refs/heads/main", "before": base, "after": head}
    runs: dict[str, Result | CiResult] = {
        "staged": keyscan("staged", cwd=repo.path),
        "git": keyscan("git", cwd=repo.path),
        "range": keyscan("git", "--range", "HEAD~1..HEAD", cwd=repo.path),
        "pre-push": keyscan("pre-push", "origin", "file:///nowhere", cwd=repo.path,
                            stdin=f"refs/heads/main {head} refs/heads/x {ZERO}\n"),
        # shallow, and `before` is not in it: `keyscan ci` fetches from origin
        "ci": run_ci(tmp_path, repo.path, event="push", payload=push),
        "clone": keyscan("git", f"file://{repo.path}", cwd=tmp_path),
    }
    for name, result in runs.items():
        assert result.code == 1, (name, result.err)
    assert "fetching the full history" in runs["ci"].err
    assert sorted(path.name for path in marks.iterdir()) == []
