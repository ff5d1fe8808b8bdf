"""`keyscan pre-commit FILE...` as the pre-commit framework runs it (see sources/precommit.py);
tests/test_precommit_framework.py runs the same through the real framework."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gitcli import Result, keyscan
from gitrepo import Repo
from keys import make_key


@pytest.fixture
def rng() -> random.Random:
    return random.Random(31)


@pytest.fixture
def repo(tmp_path: Path, rng: random.Random) -> Repo:
    """One commit whose `legacy.py` already holds a key; nothing staged."""
    repo = Repo(tmp_path / "work")
    repo.write("legacy.py", f"KEY = '{make_key('posteverywhere', rng)}'\n")
    repo.write("README.md", "hello\n")
    repo.commit("start")
    return repo


def hook(repo: Repo, *files: str, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> Result:
    return keyscan("pre-commit", "--format", "json", *files, cwd=cwd or repo.path, env=env)


def paths(result: Result) -> list[str]:
    assert result.code in (0, 1), result.err
    return sorted(f["path"] for f in result.findings)


def test_a_commit_checks_what_it_introduces_in_the_files_passed(
    repo: Repo, rng: random.Random
) -> None:
    with (repo.path / "legacy.py").open("a", encoding="utf-8") as out:
        out.write("x = 1\n")
    repo.write("new.py", f"K = '{make_key('powerpost', rng)}'\n")
    repo.write("excluded.py", f"K = '{make_key('powerpost', rng)}'\n")
    repo.git("add", "-A")
    # pre-commit passes the staged paths its filters keep (here: not excluded.py)
    assert paths(hook(repo, "legacy.py", "new.py")) == ["new.py"]
    assert paths(hook(repo)) == ["excluded.py", "new.py"]  # no files: the whole staged change


def test_files_not_all_staged_are_checked_whole_from_the_index(
    repo: Repo, rng: random.Random
) -> None:
    repo.write("README.md", f"see {make_key('autoposting', rng)}\n")
    repo.git("add", "-A")
    repo.write("README.md", "hello again\n")  # the work tree no longer has it: the index does
    # --all-files: every tracked file, README.md staged and legacy.py not
    assert paths(hook(repo, "README.md", "legacy.py")) == ["README.md", "legacy.py"]
    assert paths(hook(repo, "legacy.py")) == ["legacy.py"]  # --files legacy.py


def test_files_outside_the_index_are_read_from_the_work_tree_or_warned(
    repo: Repo, rng: random.Random
) -> None:
    repo.write("untracked.env", f"PP={make_key('powerpost', rng)}\n")
    result = hook(repo, "untracked.env", "gone.txt")
    assert paths(result) == ["untracked.env"]
    assert "gone.txt" in result.err and "skipped" in result.err
    assert result.report["summary"]["skipped_files"] == 1


def test_paths_given_from_a_subfolder_are_repository_relative(repo: Repo) -> None:
    (repo.path / "sub").mkdir()
    assert paths(hook(repo, "../legacy.py", cwd=repo.path / "sub")) == ["legacy.py"]


def test_the_range_from_pre_commits_variables(repo: Repo, rng: random.Random) -> None:
    start = repo.git("rev-parse", "HEAD")
    repo.write("deploy.sh", f"T={make_key('repeatposts', rng)}\n")
    leak = repo.commit("leak")
    env = {"PRE_COMMIT_FROM_REF": start, "PRE_COMMIT_TO_REF": "HEAD"}
    result = hook(repo, "deploy.sh", env=env)
    assert [(f["path"], f["commit"]) for f in result.findings] == [("deploy.sh", leak)]

    bad = hook(repo, env={**env, "PRE_COMMIT_FROM_REF": "no-such-ref"})
    assert bad.code == 2 and bad.err.count("\n") == 1
    assert bad.err.startswith("keyscan: error: unknown revision 'no-such-ref'")


def test_clean_run_is_silent_and_verbose_shows_the_summary(repo: Repo) -> None:
    quiet = keyscan("pre-commit", "README.md", cwd=repo.path)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    loud = keyscan("pre-commit", "-v", "README.md", cwd=repo.path)
    assert (loud.code, loud.out) == (0, "keyscan: no keys found in 1 file (6 bytes scanned).\n")
