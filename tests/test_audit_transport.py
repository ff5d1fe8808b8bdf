"""`keyscan audit` over a network that fails now and then: a clone or fetch that the host
broke off (a reset connection, a 503) is tried again and costs nothing; one the host
refused (not found) is not tried again; one that keeps failing is the repository's one
warning. Repositories served by the fake host on 127.0.0.1, failures injected there.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakehosts import FakeHost, FakeRepo
from test_audit_hosts import audit, publish


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FakeHost]:
    served = FakeHost("github", tmp_path / "served", "unused")
    yield served
    served.close()


def served(host: FakeHost, tmp_path: Path, *names: str) -> dict[str, str]:
    """The clone URL of each repository `names`, each with one planted key."""
    rng = random.Random(1621)
    urls = {}
    for name in names:
        repo = FakeRepo("acme", name)
        publish(host, repo, tmp_path, rng)
        urls[name] = host.clone_url(repo)
    return urls


def requests_of(host: FakeHost, name: str) -> int:
    wanted = f"/acme/{name}.git/info/refs?service=git-upload-pack"
    return sum(1 for seen in host.git_requests() if seen.path == wanted)


def test_a_clone_and_a_fetch_broken_off_are_tried_again_and_cost_nothing(
    host: FakeHost, tmp_path: Path
) -> None:
    urls = served(host, tmp_path, "api", "web")
    host.git_failures["/acme/api.git"] = ["reset", "503"]
    work = tmp_path / "work"
    work.mkdir()

    first = audit(work, *urls.values(), env={})

    assert first.code == 1 and first.err == ""
    assert {f["repository"] for f in first.findings} == set(urls.values())
    assert first.report["summary"]["failed_repositories"] == 0
    assert (requests_of(host, "api"), requests_of(host, "web")) == (3, 1)

    host.git_failures["/acme/web.git"] = ["reset"]  # the second audit fetches the mirror
    second = audit(work, *urls.values(), env={})

    assert second.code == 1 and second.err == ""
    assert second.report["summary"]["failed_repositories"] == 0
    assert requests_of(host, "web") == 3


def test_a_clone_the_host_refuses_is_not_tried_again(host: FakeHost, tmp_path: Path) -> None:
    urls = served(host, tmp_path, "gone", "api")
    host.git_failures["/acme/gone.git"] = ["404", "404", "404"]

    result = audit(tmp_path, *urls.values(), env={})

    assert result.code == 1
    assert {f["repository"] for f in result.findings} == {urls["api"]}
    assert result.report["summary"]["failed_repositories"] == 1
    warned = result.err.splitlines()
    assert len(warned) == 1 and urls["gone"] in warned[0] and "not found" in warned[0]
    assert requests_of(host, "gone") == 1


def test_a_clone_that_keeps_breaking_off_is_one_warning_after_three_tries(
    host: FakeHost, tmp_path: Path
) -> None:
    urls = served(host, tmp_path, "flaky")
    host.git_failures["/acme/flaky.git"] = ["503"] * 5

    result = audit(tmp_path, *urls.values(), env={}, expect=(2,))

    assert result.findings == []
    assert result.report["summary"]["failed_repositories"] == 1
    warned = result.err.splitlines()
    assert len(warned) == 1 and warned[0].startswith("keyscan: warning: ")
    assert urls["flaky"] in warned[0] and "503" in warned[0]
    assert requests_of(host, "flaky") == 3
