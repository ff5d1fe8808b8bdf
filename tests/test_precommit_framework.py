"""The hooks as a user installs them: the real `pre-commit` framework, this repository at a commit.

pre-commit builds a virtualenv for the hook repository and pip-installs keyscan
into it (PyPI is needed for the build backend and dependencies). That takes a
while, so the whole session shares one PRE_COMMIT_HOME.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepo import Repo
from keys import make_key

ROOT = Path(__file__).resolve().parents[1]
# What pip needs to build keyscan, plus the hook manifest; nothing of the working copy's caches.
SHIPPED = ("pyproject.toml", "README.md", "LICENSE", ".pre-commit-hooks.yaml", "src", "rules")

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A one-commit git copy of this project: what `repo:`/`rev:` point at, whatever the
    state of the real checkout's history."""
    copy = tmp_path_factory.mktemp("keyscan-hook-repo")
    for name in SHIPPED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    repo = Repo(copy)
    return copy, repo.commit("keyscan under test")


@pytest.fixture
def consumer(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path
) -> Iterator[tuple[Repo, dict[str, str]]]:
    """A project that uses both hooks, installed with `pre-commit install`."""
    path, rev = hook_repo
    repo = Repo(tmp_path / "consumer")
    repo.write(
        ".pre-commit-config.yaml",
        f"repos:\n  - repo: {path}\n    rev: {rev}\n"
        "    hooks:\n      - id: keyscan\n      - id: keyscan-pre-push\n",
    )
    env = repo.env(PRE_COMMIT_HOME=str(pre_commit_home))
    for hook_type in ("pre-commit", "pre-push"):
        run([sys.executable, "-m", "pre_commit", "install", "--hook-type", hook_type], repo, env)
    repo.write("README.md", "a project\n")
    repo.git("add", "-A")
    first = run(["git", "commit", "-m", "start"], repo, env, check=False)  # builds the hook env
    assert first.returncode == 0, first.stdout + first.stderr
    yield repo, env


def run(
    args: list[str], repo: Repo, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=repo.path, env=env, capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def commit_all(message: str, repo: Repo, env: dict[str, str]) -> None:
    """Commit through the installed hooks (Repo.commit would not pass PRE_COMMIT_HOME)."""
    repo.git("add", "-A")
    run(["git", "commit", "-q", "-m", message], repo, env)


@pytest.mark.network  # pip-installs keyscan from the package index
def test_leaking_commit_is_blocked_and_clean_commit_passes(
    consumer: tuple[Repo, dict[str, str]],
) -> None:
    repo, env = consumer
    key = make_key("posteverywhere", random.Random(7))
    repo.write("app/config.py", f"TOKEN = '{key}'\n")
    repo.git("add", "-A")

    blocked = run(["git", "commit", "-m", "leak"], repo, env, check=False)

    shown = blocked.stdout + blocked.stderr
    assert blocked.returncode == 1, shown
    assert "app/config.py:1" in shown
    assert f"{key[:8]}…{key[-4:]}" in shown
    assert key not in shown
    assert repo.git("rev-list", "--count", "HEAD") == "1"  # nothing was committed

    repo.write("app/config.py", "import os\nTOKEN = os.environ['PE_TOKEN']\n")
    repo.git("add", "-A")
    passed = run(["git", "commit", "-m", "read it from the environment"], repo, env, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert repo.git("rev-list", "--count", "HEAD") == "2"


@pytest.mark.network  # pip-installs keyscan from the package index
def test_leaking_push_is_blocked_and_clean_push_passes(
    consumer: tuple[Repo, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = consumer
    remote = Repo(tmp_path / "remote.git", bare=True)
    repo.git("remote", "add", "origin", str(remote.path))
    run(["git", "push", "-q", "origin", "main"], repo, env)

    key = make_key("powerpost", random.Random(8))
    repo.write("deploy.env", f"POWERPOST_KEY={key}\n")
    repo.git("add", "-A")
    # --no-verify skips the pre-commit hook only: the push is the last line of defence.
    run(["git", "commit", "-q", "--no-verify", "-m", "leak"], repo, env)
    # Deleted again in the same push: its net diff is empty, the hook must run all the same.
    repo.git("rm", "-q", "deploy.env")
    commit_all("remove it", repo, env)

    blocked = run(["git", "push", "origin", "main"], repo, env, check=False)
    shown = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, shown
    assert "deploy.env:1" in shown
    assert key not in shown
    assert remote.git("rev-list", "--count", "main") == "1"

    repo.git("reset", "-q", "--hard", "HEAD~2")
    repo.write("deploy.env", "POWERPOST_KEY=${POWERPOST_KEY}\n")
    commit_all("clean", repo, env)
    passed = run(["git", "push", "origin", "main"], repo, env, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert remote.git("rev-list", "--count", "main") == "2"


def test_manifest_is_valid_for_pre_commit() -> None:
    manifest = str(ROOT / ".pre-commit-hooks.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", manifest],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
