"""hosts/: listing GitHub organisations and users and GitLab groups, against fake APIs on
127.0.0.1, and the token reaching git only through git's environment config.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakehosts import FakeHost, FakeRepo
from gitrepo import BASE_ENV, Repo
from keyscan.errors import KeyscanError
from keyscan.hosts import HostOptions, Listing, Settings, check_queries, list_repositories
from keyscan.hosts.api import rate_limit_wait
from keyscan.hosts.gitauth import GitAccess, git_environment
from keyscan.sources import git
from keyscan.verify.clock import FakeClock


def make_token() -> str:
    return "tok" + secrets.token_hex(16)


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeHost]:
    host = FakeHost("github", tmp_path / "served", make_token())
    yield host
    host.close()


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[FakeHost]:
    host = FakeHost("gitlab", tmp_path / "served", make_token())
    yield host
    host.close()


def serve(host: FakeHost, repo: FakeRepo, work: Path) -> None:
    """A real bare repository behind `repo`'s clone URL, with one commit."""
    source = Repo(work / f"src-{repo.owner.replace('/', '-')}-{repo.name}")
    source.write("README", f"{repo.name}\n")
    source.commit("first")
    target = host.bare_path(repo)
    target.parent.mkdir(parents=True, exist_ok=True)
    source.git("clone", "-q", "--bare", str(source.path), str(target))


def listed(host: FakeHost, *, token: bool = True, options: HostOptions | None = None,
           clock: FakeClock | None = None, max_wait: float = 3600.0,
           org: str = "acme", kind: str = "org") -> tuple[Listing, list[str]]:
    warnings: list[str] = []
    env = {"GITHUB_TOKEN" if host.kind == "github" else "GITLAB_TOKEN": host.token} if token else {}
    if host.kind == "github":
        queries = check_queries(**{f"github_{kind}s": [org]})
        options = options or HostOptions(github_api_url=host.api_url)
    else:
        queries = check_queries(gitlab_groups=[org])
        options = options or HostOptions(gitlab_api_url=host.url)
    settings = Settings(max_wait=max_wait, clock=clock or FakeClock(wall=time.time()))
    return list_repositories(queries, options, settings, env, warnings.append), warnings


def names(listing: Listing) -> list[str]:
    return sorted(r.name for r in listing.repositories)


def add_org(host: FakeHost, owner: str = "acme") -> None:
    for repo in [FakeRepo(owner, "api"), FakeRepo(owner, "web"), FakeRepo(owner, "infra"),
                 FakeRepo(owner, "secret-sauce", private=True),
                 FakeRepo(owner, "forked-lib", fork=True),
                 FakeRepo(owner, "old", archived=True)]:
        host.add(repo)


def test_github_org_pages_private_repos_and_flags(github: FakeHost) -> None:
    add_org(github)
    listing, warnings = listed(github)
    assert names(listing) == ["acme/api", "acme/infra", "acme/secret-sauce", "acme/web"]
    assert (listing.forks_left_out, listing.archived_left_out, warnings) == (1, 1, [])
    pages = [r for r in github.api_requests() if "/orgs/acme/repos" in r.path]
    assert len(pages) == 3  # 6 repositories, 2 a page: every Link followed
    assert all(r.headers["authorization"] == f"Bearer {github.token}" for r in pages)
    urls = {r.name: r.url for r in listing.repositories}
    assert urls["acme/api"] == f"{github.url}/acme/api.git"
    assert all(r.access is not None and r.access.variable == "GITHUB_TOKEN"
               for r in listing.repositories)

    everything = HostOptions(github_api_url=github.api_url, include_forks=True,
                             include_archived=True)
    listing, _ = listed(github, options=everything)
    assert len(listing.repositories) == 6
    assert [r.name for r in listing.repositories if r.fork] == ["acme/forked-lib"]


def test_github_without_token_lists_public_repositories_only(github: FakeHost) -> None:
    add_org(github)
    listing, _ = listed(github, token=False)
    assert names(listing) == ["acme/api", "acme/infra", "acme/web"]
    assert not any("authorization" in r.headers for r in github.requests)


def test_github_user_with_own_token_sees_private_repositories(github: FakeHost) -> None:
    add_org(github, owner="octo")
    listing, _ = listed(github, org="octo", kind="user")
    assert "octo/secret-sauce" in names(listing)
    assert any(r.path.startswith("/api/v3/user/repos") for r in github.requests)
    listing, _ = listed(github, org="octo", kind="user", token=False)
    assert names(listing) == ["octo/api", "octo/infra", "octo/web"]


def test_gitlab_group_includes_subgroups(gitlab: FakeHost) -> None:
    add_org(gitlab, owner="acme")
    gitlab.add(FakeRepo("acme/platform", "deploy"))
    gitlab.add(FakeRepo("acme/platform/deep", "tools", private=True))
    gitlab.add(FakeRepo("other", "unrelated"))
    listing, warnings = listed(gitlab)
    assert names(listing) == ["acme/api", "acme/infra", "acme/platform/deep/tools",
                              "acme/platform/deploy", "acme/secret-sauce", "acme/web"]
    assert warnings == [] and listing.forks_left_out == 1
    first = gitlab.api_requests()[0]
    assert first.path.startswith("/api/v4/groups/acme/projects?")
    assert "include_subgroups=true" in first.path
    assert first.headers["authorization"] == f"Bearer {gitlab.token}"
    access = listing.repositories[0].access
    assert access == GitAccess(gitlab.url, "GITLAB_TOKEN", "oauth2")

    listing, _ = listed(gitlab, options=HostOptions(gitlab_api_url=gitlab.api_url,
                                                    include_archived=True))
    assert "acme/old" in names(listing) and "acme/forked-lib" not in names(listing)
    listing, _ = listed(gitlab, org="acme/platform")
    assert names(listing) == ["acme/platform/deep/tools", "acme/platform/deploy"]


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_rate_limited_answer_is_waited_out(kind: str, tmp_path: Path) -> None:
    host = FakeHost(kind, tmp_path, make_token(), rate_limited=1, reset_in=30)
    try:
        add_org(host)
        clock = FakeClock(wall=time.time())
        statuses: list[str] = []
        settings = Settings(clock=clock, status=statuses.append)
        query = check_queries(**({"github_orgs": ["acme"]} if kind == "github"
                                 else {"gitlab_groups": ["acme"]}))
        options = HostOptions(github_api_url=host.api_url, gitlab_api_url=host.url)
        env = {"GITHUB_TOKEN": host.token, "GITLAB_TOKEN": host.token}
        listing = list_repositories(query, options, settings, env, print)
        assert len(listing.repositories) == 4
        assert 29 <= sum(clock.sleeps) <= 33
        assert any(s.startswith("waiting 3") and "rate limit" in s for s in statuses)
        assert "waiting 1 s for 127.0.0.1's rate limit" in statuses  # counted down
    finally:
        host.close()


def test_rate_limit_past_the_bound_is_one_clear_error(github: FakeHost) -> None:
    add_org(github)
    github.rate_limited, github.reset_in = 1, 4000
    with pytest.raises(KeyscanError) as raised:
        listed(github, max_wait=600)
    message = str(raised.value)
    assert "past the --rate-limit-wait of 600 s" in message and github.token not in message


def test_rate_limit_headers() -> None:
    now = 1_800_000_000.0
    assert rate_limit_wait(403, {"x-ratelimit-remaining": "0",
                                 "x-ratelimit-reset": str(int(now) + 60)}, now) == 61
    assert rate_limit_wait(429, {"retry-after": "7"}, now) == 7
    assert rate_limit_wait(403, {"retry-after": "Thu, 15 Jan 2027 08:00:10 GMT"},
                           1_800_000_000.0) is not None
    assert rate_limit_wait(403, {"x-ratelimit-remaining": "12"}, now) is None  # no access
    assert rate_limit_wait(429, {}, now) == 60
    assert rate_limit_wait(500, {"retry-after": "7"}, now) is None


def test_unknown_org_is_a_warning_and_others_go_on(github: FakeHost) -> None:
    add_org(github)
    warnings: list[str] = []
    queries = check_queries(github_orgs=["acme", "nobody"])
    settings = Settings(clock=FakeClock())
    listing = list_repositories(queries, HostOptions(github_api_url=github.api_url), settings,
                                {}, warnings.append)
    assert len(listing.repositories) == 3 and listing.failed == 1
    assert warnings == ["could not list GitHub organisation nobody: not found at 127.0.0.1 "
                        "(a user? use --github-user)"]


def test_refused_token_ends_the_run_without_showing_it(github: FakeHost) -> None:
    add_org(github)
    wrong = make_token()
    settings = Settings(clock=FakeClock())
    with pytest.raises(KeyscanError) as raised:
        list_repositories(check_queries(github_orgs=["acme"]),
                          HostOptions(github_api_url=github.api_url), settings,
                          {"GITHUB_TOKEN": wrong}, print)
    assert "refused the token (HTTP 401)" in str(raised.value)
    assert wrong not in str(raised.value)


def test_bad_names_and_urls_fail_before_any_request() -> None:
    with pytest.raises(KeyscanError, match="--github-org takes"):
        check_queries(github_orgs=["../etc"])
    with pytest.raises(KeyscanError, match="--gitlab-group takes"):
        check_queries(gitlab_groups=["a b"])
    with pytest.raises(KeyscanError, match="must be https://"):
        list_repositories(check_queries(github_orgs=["acme"]),
                          HostOptions(github_api_url="http://github.example.com"),
                          Settings(clock=FakeClock()), {}, print)


def test_a_link_to_another_host_is_not_followed_with_the_token(tmp_path: Path) -> None:
    other = FakeHost("github", tmp_path / "other", make_token())
    host = FakeHost("github", tmp_path / "served", make_token())
    try:
        add_org(host)
        host.url = other.url  # its Link headers now name the other server
        warnings: list[str] = []
        listing = list_repositories(check_queries(github_orgs=["acme"]),
                                    HostOptions(github_api_url=host.api_url),
                                    Settings(clock=FakeClock()), {"GITHUB_TOKEN": host.token},
                                    warnings.append)
        assert listing.failed == 1 and "next page is on another host" in warnings[0]
        assert other.requests == []
    finally:
        host.close()
        other.close()


def test_clone_urls_drop_credentials_and_odd_ones_are_warned(github: FakeHost) -> None:
    github.add(FakeRepo("acme", "api"))
    github.clone_origin = github.url.replace("http://", "http://someone:pw@")
    listing, _ = listed(github)
    assert listing.repositories[0].url == f"{github.url}/acme/api.git"
    github.clone_origin = "http://example.com"  # plain http off loopback: never with a token
    listing, warnings = listed(github)
    assert listing.repositories == [] and listing.failed == 1
    assert "acme/api without an https clone URL" in warnings[0]


# --- the token reaches git through git's environment, and nothing else ---------------


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git` first on PATH that logs every argv, then runs the real git."""
    folder = tmp_path / "shim"
    folder.mkdir()
    log = tmp_path / "argv.log"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True,
                          check=True).stdout.strip()
    script = folder / "git"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def git_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **BASE_ENV, **extra}


def all_bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_private_clone_gets_the_token_through_git_environment_only(
    github: FakeHost, tmp_path: Path, shim: Path
) -> None:
    private = github.add(FakeRepo("acme", "secret-sauce", private=True))
    public = github.add(FakeRepo("acme", "api"))
    for repo in (private, public):
        serve(github, repo, tmp_path)
    listing, _ = listed(github)
    by_name = {r.name: r for r in listing.repositories}
    secret_repo = by_name["acme/secret-sauce"]
    env = git_env({"GITHUB_TOKEN": github.token})

    mirror = tmp_path / "cache" / "secret.git"
    git.clone_mirror(secret_repo.url, mirror, progress=False,
                     env=git_environment(secret_repo.url, secret_repo.access, env))
    assert git.list_refs(git.open_repo(str(mirror)))  # the history arrived
    expected = base64.b64encode(f"x-access-token:{github.token}".encode()).decode()
    fetches = github.git_requests()
    assert fetches and all(r.headers.get("authorization") == f"Basic {expected}"
                           for r in fetches)

    # Without the token, git is refused (it never prompts) and says so without a secret.
    with pytest.raises(KeyscanError) as refused:
        git.clone_mirror(secret_repo.url, tmp_path / "cache" / "again.git", progress=False,
                         env=git_environment(secret_repo.url, secret_repo.access, git_env({})))
    assert "could not clone" in str(refused.value)

    for secret in (github.token.encode(), expected.encode()):
        assert secret not in all_bytes_under(tmp_path / "cache")
        assert secret not in shim.read_bytes()  # no argv held it
    assert str(secret_repo.url) in (mirror / "config").read_text()


def test_token_is_not_sent_to_git_on_another_host(tmp_path: Path) -> None:
    elsewhere = FakeHost("github", tmp_path / "elsewhere", make_token())
    host = FakeHost("github", tmp_path / "served", make_token())
    try:
        repo = host.add(FakeRepo("acme", "api"))
        elsewhere.add(repo)
        serve(elsewhere, repo, tmp_path)
        host.clone_origin = elsewhere.url  # the API names clones on another server
        listing, _ = listed(host)
        found = listing.repositories[0]
        assert found.access is None  # never the token for a URL off its host
        env = git_environment(found.url, found.access, git_env({"GITHUB_TOKEN": host.token}))
        git.clone_mirror(found.url, tmp_path / "m.git", progress=False, env=env)
        assert elsewhere.git_requests()
        assert not any("authorization" in r.headers for r in elsewhere.git_requests())
        # Even an access naming the wrong origin is not applied to this URL.
        wrong = GitAccess(host.url, "GITHUB_TOKEN", "x")
        assert "GIT_CONFIG_COUNT" not in git_environment(found.url, wrong,
                                                         {"GITHUB_TOKEN": host.token})
    finally:
        host.close()
        elsewhere.close()


def test_git_environment_keeps_existing_config_entries() -> None:
    access = GitAccess("https://github.com", "GITHUB_TOKEN", "x-access-token")
    env = git_environment("https://github.com/acme/api.git", access, {
        "GITHUB_TOKEN": "t0ken", "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.fsmonitor", "GIT_CONFIG_VALUE_0": "false"})
    assert env["GIT_CONFIG_COUNT"] == "3" and env["GIT_CONFIG_KEY_0"] == "core.fsmonitor"
    assert env["GIT_CONFIG_KEY_1"] == "http.https://github.com/.extraHeader"
    assert env["GIT_CONFIG_KEY_2"] == "http.https://github.com/.followRedirects"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "GIT_CONFIG_COUNT" not in git_environment("https://github.com/a/b.git", access, {})
    assert "GIT_CONFIG_COUNT" not in git_environment(
        "https://github.com.evil.example/a/b.git", access, {"GITHUB_TOKEN": "t0ken"})
