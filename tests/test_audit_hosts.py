"""`keyscan audit --github-org / --github-user / --gitlab-group` as a user runs it: fake
hosts on 127.0.0.1 whose clone URLs are real bare repositories behind git's smart HTTP,
private ones refused to git without the token.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakehosts import FakeHost, FakeRepo
from gitcli import Result, keyscan
from gitrepo import Repo
from keys import make_key


@pytest.fixture
def rng() -> random.Random:
    return random.Random(17)


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeHost]:
    host = FakeHost("github", tmp_path / "served", "tok" + secrets.token_hex(16))
    yield host
    host.close()


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[FakeHost]:
    host = FakeHost("gitlab", tmp_path / "served", "tok" + secrets.token_hex(16))
    yield host
    host.close()


def publish(host: FakeHost, repo: FakeRepo, work: Path, rng: random.Random) -> str:
    """`repo` served by `host` as a real bare repository with one planted key; the key."""
    key = make_key("posteverywhere", rng)
    source = Repo(work / "src" / repo.owner.replace("/", "-") / repo.name)
    source.write("README.md", f"{repo.name}\n")
    source.commit("start")
    source.write("settings.py", f"TOKEN = '{key}'\n")
    source.commit("configure")
    target = host.bare_path(host.add(repo))
    target.parent.mkdir(parents=True, exist_ok=True)
    source.git("clone", "-q", "--bare", str(source.path), str(target))
    return key


@pytest.fixture
def shim(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with a `git` first that logs every argv, then runs the real git."""
    folder = tmp_path / "shim"
    folder.mkdir()
    log = tmp_path / "argv.log"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (folder / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    (folder / "git").chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}, log


def audit(cwd: Path, *args: str, env: dict[str, str], expect: tuple[int, ...] = (0, 1)
          ) -> Result:
    result = keyscan("audit", "--format", "json", "--cache", str(cwd / "mirrors"), *args,
                     cwd=cwd, env=env)
    assert result.code in expect, result.err
    return result


def files_under(*folders: Path) -> bytes:
    return b"".join(p.read_bytes() for folder in folders for p in folder.rglob("*")
                    if p.is_file())


def test_github_org_audit_clones_private_repositories_with_the_token_kept_out_of_sight(
    github: FakeHost, tmp_path: Path, rng: random.Random, shim: tuple[dict[str, str], Path]
) -> None:
    keys = {name: publish(github, FakeRepo("acme", name, private=name == "vault"),
                          tmp_path, rng) for name in ("api", "web", "vault")}
    publish(github, FakeRepo("acme", "fork-of-lib", fork=True), tmp_path, rng)
    publish(github, FakeRepo("acme", "old", archived=True), tmp_path, rng)
    path_env, argv_log = shim
    env = {**path_env, "GITHUB_TOKEN": github.token}
    work = tmp_path / "work"
    work.mkdir()

    result = audit(work, "--github-org", "acme", "--github-api-url", github.api_url, env=env)

    assert result.code == 1
    found = {f["repository"]: f["secret_sha256"] for f in result.findings}
    assert set(found) == {f"{github.url}/acme/{name}.git" for name in keys}  # no fork, no old
    assert result.report["summary"]["failed_repositories"] == 0
    private_fetches = [r for r in github.git_requests() if "/acme/vault.git/" in r.path]
    assert private_fetches and all("authorization" in r.headers for r in private_fetches)
    token = github.token.encode()
    assert token not in result.out.encode() and token not in result.err.encode()
    assert token not in files_under(work)  # inventory, mirrors (their config), anything
    assert token not in argv_log.read_bytes()  # no git argv held it
    assert b"extraHeader" not in argv_log.read_bytes()  # not even as -c

    # Forks and archived repositories when asked; a second audit fetches the mirrors.
    again = audit(work, "--github-org", "acme", "--github-api-url", github.api_url,
                  "--include-forks", "--include-archived", env=env)
    assert len({f["repository"] for f in again.findings}) == 5
    assert token not in files_under(work)


def test_without_the_token_private_repositories_are_neither_listed_nor_cloned(
    github: FakeHost, tmp_path: Path, rng: random.Random
) -> None:
    publish(github, FakeRepo("acme", "api"), tmp_path, rng)
    publish(github, FakeRepo("acme", "vault", private=True), tmp_path, rng)
    env = {"GITHUB_TOKEN": ""}
    result = audit(tmp_path, "--github-org", "acme", "--github-api-url", github.api_url,
                   env=env)
    assert {f["repository"] for f in result.findings} == {f"{github.url}/acme/api.git"}
    assert not any("authorization" in r.headers for r in github.requests)


def test_a_private_clone_refused_is_one_warning_that_names_the_missing_token(
    github: FakeHost, tmp_path: Path, rng: random.Random
) -> None:
    github.token_for_git = "another"  # the API lists it, git is refused: a token without scope
    publish(github, FakeRepo("acme", "vault", private=True), tmp_path, rng)
    publish(github, FakeRepo("acme", "api"), tmp_path, rng)
    result = audit(tmp_path, "--github-org", "acme", "--github-api-url", github.api_url,
                   env={"GITHUB_TOKEN": github.token})
    assert result.code == 1 and result.report["summary"]["failed_repositories"] == 1
    lines = [line for line in result.err.splitlines() if "vault" in line]
    assert len(lines) == 1 and lines[0].startswith("keyscan: warning: ")
    assert github.token not in result.err


def test_gitlab_group_audit_includes_subgroups(
    gitlab: FakeHost, tmp_path: Path, rng: random.Random
) -> None:
    publish(gitlab, FakeRepo("acme", "api"), tmp_path, rng)
    publish(gitlab, FakeRepo("acme/platform", "deploy", private=True), tmp_path, rng)
    publish(gitlab, FakeRepo("other", "unrelated"), tmp_path, rng)
    result = audit(tmp_path, "--gitlab-group", "acme", "--gitlab-api-url", gitlab.url,
                   env={"GITLAB_TOKEN": gitlab.token})
    assert {f["repository"] for f in result.findings} == {
        f"{gitlab.url}/acme/api.git", f"{gitlab.url}/acme/platform/deploy.git"}
    assert gitlab.token.encode() not in files_under(tmp_path / "mirrors")


def test_a_rate_limited_listing_waits_and_goes_on(
    github: FakeHost, tmp_path: Path, rng: random.Random
) -> None:
    publish(github, FakeRepo("acme", "api"), tmp_path, rng)
    github.rate_limited, github.reset_in = 1, 1
    result = audit(tmp_path, "--github-org", "acme", "--github-api-url", github.api_url,
                   env={"GITHUB_TOKEN": github.token})
    assert len(result.findings) == 1 and result.err == ""
    github.rate_limited = 1
    over = audit(tmp_path, "--github-org", "acme", "--github-api-url", github.api_url,
                 "--rate-limit-wait", "0", env={"GITHUB_TOKEN": github.token}, expect=(2,))
    assert over.err.startswith("keyscan: error: GitHub asks to wait ")
    assert "--rate-limit-wait" in over.err and over.err.count("\n") == 1


def test_an_unknown_org_is_one_warning_and_a_failed_listing(
    github: FakeHost, tmp_path: Path, rng: random.Random
) -> None:
    publish(github, FakeRepo("acme", "api"), tmp_path, rng)
    result = audit(tmp_path, "--github-org", "acme", "--github-org", "nobody",
                   "--github-api-url", github.api_url, env={"GITHUB_TOKEN": github.token})
    assert result.code == 1 and len(result.findings) == 1
    assert result.report["summary"]["failed_repositories"] == 1
    assert result.err == ("keyscan: warning: could not list GitHub organisation nobody: "
                          "not found at 127.0.0.1 (a user? use --github-user)\n")
    alone = audit(tmp_path, "--github-org", "nobody", "--github-api-url", github.api_url,
                  env={}, expect=(2,))
    assert "could not list" in alone.err


def test_bad_host_options_fail_before_any_request(github: FakeHost, tmp_path: Path) -> None:
    bad = audit(tmp_path, "--github-org", "a/b", "--github-api-url", github.api_url,
                env={}, expect=(2,))
    assert bad.err.startswith("keyscan: error: --github-org takes")
    plain = audit(tmp_path, "--gitlab-group", "acme", "--gitlab-api-url", "http://gitlab.example",
                  env={}, expect=(2,))
    assert "must be https://" in plain.err
    assert github.requests == []
