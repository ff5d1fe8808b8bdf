"""The hooks as a user installs them: the real `pre-commit` framework, this repository at a commit.

pre-commit builds a virtualenv for the hook repository and pip-installs keyscan
into it (PyPI is needed for the build backend and dependencies). That takes a
while, so the whole session shares one PRE_COMMIT_HOME.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepo import Repo
from keys import make_key

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "https://github.com/YOUR-ORG/keyscan"  # README: "Where you host keyscan"
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
    """A project that uses both hooks, installed with `pre-commit install`: the README's
    `.pre-commit-config.yaml`, filled in as it says (where keyscan is hosted, a rev)."""
    path, rev = hook_repo
    repo = Repo(tmp_path / "consumer")
    repo.write(".pre-commit-config.yaml", readme_config(repo_url=str(path), rev=rev))
    env = repo.env(PRE_COMMIT_HOME=str(pre_commit_home))
    for hook_type in ("pre-commit", "pre-push"):
        run([sys.executable, "-m", "pre_commit", "install", "--hook-type", hook_type], repo, env)
    repo.write("README.md", "a project\n")
    repo.git("add", "-A")
    first = run(["git", "commit", "-m", "start"], repo, env, check=False)  # builds the hook env
    assert first.returncode == 0, first.stdout + first.stderr
    yield repo, env


def readme_config(repo_url: str, rev: str) -> str:
    """The README's pre-commit example, with its one placeholder and its tag filled in."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("## As a pre-commit and pre-push hook")[2]
    example = section.partition("```yaml\n")[2].partition("```")[0]
    assert example.count(PLACEHOLDER) == 1 and "rev: v0.1.0" in example, example
    return example.replace(PLACEHOLDER, repo_url).replace("rev: v0.1.0", f"rev: {rev}")


def test_readme_and_hooks_doc_name_where_keyscan_is_hosted_one_way() -> None:
    for doc in ("README.md", "docs/HOOKS.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert "OWNER" not in text
        repos = re.findall(r"repo: (\S+)", text)
        uses = re.findall(r"uses: (\S+/keyscan)@", text)
        installs = re.findall(r"git\+(\S+)@", text)
        assert repos and set(repos) == {PLACEHOLDER}, repos
        assert set(uses) <= {PLACEHOLDER.removeprefix("https://github.com/")}, uses
        assert set(installs) <= {PLACEHOLDER}, installs


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


def pre_commit_run(repo: Repo, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pre_commit", "run", *args], repo, env, check=False)


def committed_key(repo: Repo, env: dict[str, str], path: str, vendor: str, seed: int) -> str:
    """A key committed past the hook (--no-verify), as in a repository that had one before."""
    key = make_key(vendor, random.Random(seed))
    repo.write(path, f"KEY = '{key}'\n")
    repo.git("add", "-A")
    run(["git", "commit", "-q", "--no-verify", "-m", f"add {path}"], repo, env)
    return key


def assert_blocked(done: subprocess.CompletedProcess[str], place: str, key: str) -> None:
    shown = done.stdout + done.stderr
    assert done.returncode == 1, shown
    assert place in shown
    assert f"…{key[-4:]}" in shown  # redacted, as always
    assert key not in shown


@pytest.mark.network  # pip-installs keyscan from the package index
def test_all_files_fails_on_a_key_committed_earlier(consumer: tuple[Repo, dict[str, str]]) -> None:
    repo, env = consumer
    key = committed_key(repo, env, "settings/prod.py", "repeatposts", 21)
    repo.write("notes.txt", "unrelated\n")
    repo.git("add", "notes.txt")  # something staged, as on a developer's machine

    assert_blocked(pre_commit_run(repo, env, "--all-files"), "settings/prod.py:1", key)

    repo.write("settings/prod.py", "import os\nKEY = os.environ['RP_KEY']\n")  # fixed
    repo.git("add", "-A")
    passed = pre_commit_run(repo, env, "--all-files")
    assert passed.returncode == 0, passed.stdout + passed.stderr


@pytest.mark.network  # pip-installs keyscan from the package index
def test_files_checks_the_whole_content_of_the_files_named(
    consumer: tuple[Repo, dict[str, str]],
) -> None:
    repo, env = consumer
    key = committed_key(repo, env, "app/keys.py", "autoposting", 22)
    repo.write("app/other.py", "x = 1\n")
    repo.git("add", "-A")
    run(["git", "commit", "-q", "--no-verify", "-m", "other"], repo, env)

    assert_blocked(pre_commit_run(repo, env, "--files", "app/keys.py"), "app/keys.py:1", key)
    clean = pre_commit_run(repo, env, "--files", "app/other.py", "README.md")
    assert clean.returncode == 0, clean.stdout + clean.stderr


@pytest.mark.network  # pip-installs keyscan from the package index
def test_from_ref_to_ref_checks_what_the_range_introduces(
    consumer: tuple[Repo, dict[str, str]],
) -> None:
    repo, env = consumer
    old_key = committed_key(repo, env, "old.py", "posteverywhere", 23)
    start = repo.git("rev-parse", "HEAD")
    key = committed_key(repo, env, "deploy/run.sh", "powerpost", 24)
    repo.git("rm", "-q", "deploy/run.sh")  # deleted again: the range's net diff has no file
    run(["git", "commit", "-q", "--no-verify", "-m", "remove it"], repo, env)
    end = repo.git("rev-parse", "HEAD")

    blocked = pre_commit_run(repo, env, "--from-ref", start, "--to-ref", end)
    assert_blocked(blocked, "deploy/run.sh:1", key)
    assert f"…{old_key[-4:]}" not in blocked.stdout  # before the range: not its finding

    repo.write("clean.py", "x = 1\n")
    repo.git("add", "-A")
    run(["git", "commit", "-q", "--no-verify", "-m", "clean"], repo, env)
    later = pre_commit_run(repo, env, "--from-ref", end, "--to-ref", "HEAD")
    assert later.returncode == 0, later.stdout + later.stderr


@pytest.mark.network  # pip-installs keyscan from the package index
def test_a_commit_still_checks_only_what_it_introduces(
    consumer: tuple[Repo, dict[str, str]],
) -> None:
    repo, env = consumer
    committed_key(repo, env, "legacy.py", "posteverywhere", 25)
    with (repo.path / "legacy.py").open("a", encoding="utf-8") as out:
        out.write("x = 2\n")  # an edit beside a key that is already committed
    repo.git("add", "-A")
    commit = run(["git", "commit", "-m", "edit legacy"], repo, env, check=False)
    assert commit.returncode == 0, commit.stdout + commit.stderr
    staged_run = pre_commit_run(repo, env)  # bare `pre-commit run`: the staged files, as a commit
    assert staged_run.returncode == 0, staged_run.stdout + staged_run.stderr


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
