"""`keyscan git` begins git's blob listing before click loads (`sources/early.py`): a guess
from the raw arguments, which the command uses only for the repository it then opens."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gitrepo import Repo
from keys import make_key
from keyscan.commands.git import command as git_command
from keyscan.sources import early

ROOT = Path(__file__).resolve().parents[1]


def test_the_options_it_skips_are_the_git_commands_options_with_a_value() -> None:
    with_value = {name for param in git_command.params
                  if isinstance(param, click.Option) and not param.is_flag
                  for name in param.opts if name != "--range"}
    assert set(early.VALUE_OPTIONS) == with_value


@pytest.mark.parametrize("args,target", [
    ([], (None,)),
    (["."], (".",)),
    (["--format", "json", "--output", "out.json"], (None,)),
    (["--format=json", "repo"], ("repo",)),
    (["--exhaustive", "repo", "--config", "c.yaml"], ("repo",)),
    (["--", "-odd-name"], ("-odd-name",)),
    (["--range", "main..topic"], None),
    (["--range=main..topic", "repo"], None),
    (["--help"], None),
    (["one", "two"], None),
])
def test_the_repository_argument_is_guessed_only_where_it_is_certain(
    args: list[str], target: tuple[str | None] | None
) -> None:
    assert early._repository_argument(args) == target


def test_what_was_begun_is_taken_for_the_same_argument_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "a")
    repo.write("a.txt", "hello\n")
    repo.commit("one")
    monkeypatch.chdir(repo.path)

    early.begin(["--format", "json"])
    taken = early.take(None)
    assert taken is not None
    opened, started = taken
    assert opened.work_tree == repo.path.resolve()
    assert started.listing is not None and len(started.listing.blobs()) == 1
    started.close()

    early.begin([])
    assert early.take(str(tmp_path)) is None  # another argument: stopped, not used
    assert early.take(None) is None  # and given once


def test_a_guess_that_is_no_repository_begins_nothing(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    early.begin([])
    assert early.take(None) is None


def test_keyscan_git_reports_the_repository_it_was_given_whatever_the_current_one(
    tmp_path: Path,
) -> None:
    here, there = Repo(tmp_path / "here"), Repo(tmp_path / "there")
    rng = random.Random(3)
    here_key, there_key = make_key("repeatposts", rng), make_key("powerpost", rng)
    here.write("here.env", f"KEY={here_key}\n")
    here.commit("here")
    there.write("there.env", f"KEY={there_key}\n")
    there.commit("there")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    for args in (["--show-secrets", str(there.path)], ["--format", "json", str(there.path),
                                                       "--show-secrets"]):
        done = subprocess.run([sys.executable, "-m", "keyscan", "git", "--format", "json",
                               *args], cwd=here.path, env=env, capture_output=True, text=True)
        assert done.returncode == 1, done.stderr
        secrets = {f["secret"] for f in json.loads(done.stdout)["findings"]}
        assert secrets == {there_key}
