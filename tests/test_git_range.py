"""`keyscan git --range`: what the commits of a rev-list range introduce."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gitcli import keyscan, scan_json
from gitrepo import Repo
from keys import make_key


@pytest.fixture
def rng() -> random.Random:
    return random.Random(8)


@pytest.fixture
def history(tmp_path: Path, rng: random.Random) -> tuple[Repo, dict[str, str]]:
    """main: base (old key) -> feature commits (new key; old key file edited)."""
    repo = Repo(tmp_path / "work")
    repo.write("old.txt", f"first line\n{make_key('posteverywhere', rng)}\n")
    ids = {"base": repo.commit("base")}
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("old.txt", (repo.path / "old.txt").read_text() + "an edited line\n")
    ids["edit"] = repo.commit("edit a file that already held a key")
    repo.write("new.txt", f"token: {make_key('repeatposts', rng)}\n")
    ids["new"] = repo.commit("add a key")
    return repo, ids


@pytest.mark.parametrize("spec", ["main..feature", "feature ^main", "^main feature"])
def test_range_reports_only_keys_its_commits_introduce(history: tuple[Repo, dict[str, str]],
                                                        spec: str) -> None:
    repo, ids = history
    result = scan_json(repo.path, "--range", spec)
    assert result.code == 1
    assert result.where() == [(ids["new"], "new.txt", 1, 8)]
    assert result.findings[0]["author_name"] == "Alice Author"
    assert result.report["summary"]["commits"] == 2


def test_a_single_revision_is_that_commit_and_its_ancestors(
    history: tuple[Repo, dict[str, str]]
) -> None:
    repo, ids = history
    assert scan_json(repo.path, "--range", "main").where() == [(ids["base"], "old.txt", 2, 1)]
    assert scan_json(repo.path, f"--range={ids['edit']}").where() == [
        (ids["base"], "old.txt", 2, 1)]


def test_an_empty_range_reports_nothing(history: tuple[Repo, dict[str, str]]) -> None:
    repo, _ = history
    result = scan_json(repo.path, "--range", "feature..main")
    assert (result.code, result.findings) == (0, [])


def test_a_key_removed_and_added_again_in_the_range_is_reported_once_at_its_first_commit(
    tmp_path: Path, rng: random.Random
) -> None:
    repo = Repo(tmp_path / "r")
    key = make_key("powerpost", rng)
    repo.write("a.txt", "a\n")
    base = repo.commit()
    repo.write("a.txt", f"{key}\n")
    first = repo.commit()
    repo.write("a.txt", "a\n")
    repo.commit()
    repo.write("a.txt", f"again\n{key}\n")
    repo.commit()
    assert scan_json(repo.path, "--range", f"{base}..HEAD").where() == [(first, "a.txt", 1, 1)]


def test_a_merge_in_the_range_does_not_reintroduce_a_branch_key(
    tmp_path: Path, rng: random.Random
) -> None:
    repo = Repo(tmp_path / "r")
    repo.write("a.txt", "a\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "topic")
    repo.write("t.txt", f"{make_key('autoposting', rng)}\n")
    repo.commit()
    repo.git("checkout", "-q", "main")
    repo.write("a.txt", "b\n")
    repo.commit()
    repo.tick += 60
    repo.git("merge", "-q", "--no-ff", "--no-edit", "topic")
    # The merge and main's own commit are in the range; the topic commit is not.
    result = scan_json(repo.path, "--range", "topic..main")
    assert (result.code, result.findings) == (0, [])


def test_unknown_revision_is_exit_2_naming_it(history: tuple[Repo, dict[str, str]]) -> None:
    repo, _ = history
    result = keyscan("git", "--range", "main..nosuchbranch", cwd=repo.path)
    assert result.code == 2
    assert result.err.startswith("keyscan: error: unknown revision 'nosuchbranch'")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("args", [["--range=--output=x"], ["--range", "--all"],
                                  ["--range", "main --not feature"],
                                  ["--range", "main..--output=x"], ["--range", "^--output=x"],
                                  ["--range", "--output=x...main"]])
def test_a_range_that_looks_like_an_option_is_refused(history: tuple[Repo, dict[str, str]],
                                                      args: list[str]) -> None:
    repo, _ = history
    result = keyscan("git", *args, "--output", "report.json", cwd=repo.path)
    assert result.code == 2
    assert result.err.startswith("keyscan: error: bad revision range '")
    assert result.err.count("\n") == 1
    assert not (repo.path / "x").exists()
    assert not (repo.path / "report.json").exists()
