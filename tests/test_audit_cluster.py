"""`keyscan audit --scheduler`: a real Dask scheduler and two workers on 127.0.0.1 clone and
scan a fake GitHub organisation's repositories; the client alone writes the inventory.
A worker killed mid-task costs a retry elsewhere; a scheduler killed is one error, and
the same command resumes.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daskcluster import DaskCluster, require_dask
from fakehosts import FakeHost, FakeRepo
from gitcli import ROOT
from test_audit_hosts import files_under, publish

REPOSITORIES = 6


@pytest.fixture
def org(tmp_path: Path) -> Iterator[tuple[FakeHost, dict[str, str]]]:
    """A fake GitHub organisation of six repositories (one private), a key planted in each;
    every clone or fetch takes a second (a slow host: tasks last long enough to be hit)."""
    require_dask()
    host = FakeHost("github", tmp_path / "served", "tok" + secrets.token_hex(16))
    rng = random.Random(1717)
    keys = {f"{host.url}/acme/r{i}.git": publish(host, FakeRepo("acme", f"r{i}", private=i == 0),
                                                 tmp_path, rng)
            for i in range(REPOSITORIES)}
    host.git_delay = 1.0
    yield host, keys
    host.close()


@pytest.fixture
def cluster(tmp_path: Path, org: tuple[FakeHost, dict[str, str]]) -> Iterator[DaskCluster]:
    host, _ = org
    running = DaskCluster(tmp_path / "dask", workers=2,
                          env={"GITHUB_TOKEN": host.token})  # the workers' own token
    yield running
    running.close()


def start_audit(work: Path, host: FakeHost, address: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GITHUB_TOKEN": host.token,
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    argv = [sys.executable, "-m", "keyscan", "audit", "--format", "json",
            "--github-org", "acme", "--github-api-url", host.api_url,
            "--scheduler", address, "--cache", str(work / "mirrors")]
    return subprocess.Popen(argv, cwd=work, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def scanned_repositories(work: Path) -> int:
    """Repositories the client has written, as another reader sees them. Only once the
    audit has made the inventory: connecting first would create an empty database of the
    test's own where the audit is about to set up its own."""
    inventory = work / "keyscan-inventory.sqlite"
    if not inventory.exists():
        return 0
    try:
        db = sqlite3.connect(inventory)
        try:
            return int(db.execute("select count(*) from repositories where scanned_at is not null"
                                  ).fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def wait_until(condition: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def check_once_each(report: dict[str, object], keys: dict[str, str], err: str,
                    host: FakeHost) -> None:
    findings = report["findings"]
    assert isinstance(findings, list)
    assert sorted(f["repository"] for f in findings) == sorted(keys), (  # each exactly once
        err, host.errors)


def test_a_worker_killed_mid_task_costs_a_retry_and_nothing_else(
    org: tuple[FakeHost, dict[str, str]], cluster: DaskCluster, tmp_path: Path
) -> None:
    host, keys = org
    work = tmp_path / "work"
    work.mkdir()
    audit = start_audit(work, host, cluster.address)
    busy: list[str] = []

    def a_worker_is_cloning() -> bool:
        running = [name for name, tasks in cluster.processing().items() if tasks]
        if running and host.git_requests():
            busy.append(running[0])
            return True
        return False

    wait_until(a_worker_is_cloning, "a worker to start a clone")
    cluster.kill_worker(busy[0])
    out, err = audit.communicate(timeout=300)

    assert audit.returncode == 1, err
    report = json.loads(out)
    check_once_each(report, keys, err, host)
    assert report["summary"]["failed_repositories"] == 0
    assert err == ""
    with sqlite3.connect(work / "keyscan-inventory.sqlite") as db:
        assert db.execute("select count(*) from repositories").fetchone()[0] == REPOSITORIES
        assert db.execute("select count(*) from findings").fetchone()[0] == REPOSITORIES
    token = host.token.encode()
    assert token not in out.encode() + err.encode() and token not in files_under(work)


def test_a_scheduler_gone_is_one_error_and_the_same_command_resumes(
    org: tuple[FakeHost, dict[str, str]], cluster: DaskCluster, tmp_path: Path
) -> None:
    host, keys = org
    # Slower still: after the first repository lands, the other five need two more rounds
    # of 3 s clones, so the kill always falls mid-audit (some repositories done, not all).
    host.git_delay = 3.0
    work = tmp_path / "work"
    work.mkdir()
    audit = start_audit(work, host, cluster.address)
    wait_until(lambda: scanned_repositories(work) >= 1, "a first repository in the inventory")
    cluster.kill_scheduler()
    out, err = audit.communicate(timeout=120)

    assert audit.returncode == 2 and out == "", err
    assert err == (f"keyscan: error: lost the Dask scheduler at {cluster.address}: every "
                   "repository finished so far is in the inventory; run the same command "
                   "again to resume\n")
    done_before = scanned_repositories(work)
    assert 1 <= done_before < REPOSITORIES

    # The cluster comes back at the same address (Dask's workers end with their
    # scheduler; Kubernetes or the batch system starts new ones).
    cluster.close()
    cluster.start_scheduler(port=cluster.port)
    cluster.add_worker()
    cluster.add_worker()
    cluster.wait_for_workers(2)
    fetches_before = len(host.git_requests())
    rerun = start_audit(work, host, cluster.address)
    out, err = rerun.communicate(timeout=300)

    assert rerun.returncode == 1, err
    report = json.loads(out)
    check_once_each(report, keys, err, host)
    assert all(f["new"] is True for f in report["findings"])  # one audit, resumed
    assert scanned_repositories(work) == REPOSITORIES
    assert len(host.git_requests()) > fetches_before
