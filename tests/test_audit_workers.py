"""`keyscan audit --workers N`: a worker process killed mid-audit (SIGKILL, as the kernel's
OOM killer does) costs only a retry of the repository it held; a repository under which
its worker dies twice is one failed repository, not a loop. Real processes, a real
signal, repositories served by a slow fake host on 127.0.0.1 (each clone waits a second,
so a clone is running when the signal comes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakehosts import FakeHost, FakeRepo
from gitcli import ROOT
from test_audit_hosts import publish

REPOSITORIES = 6


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FakeHost]:
    served = FakeHost("github", tmp_path / "served", "unused")
    served.git_delay = 1.0
    yield served
    served.close()


def serve(host: FakeHost, tmp_path: Path) -> list[str]:
    rng = random.Random(1619)
    urls = []
    for index in range(REPOSITORIES):
        repo = FakeRepo("acme", f"r{index}")
        publish(host, repo, tmp_path, rng)
        urls.append(host.clone_url(repo))
    return urls


def start_audit(work: Path, urls: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1"}
    argv = [sys.executable, "-m", "keyscan", "audit", *urls, "--workers", "2",
            "--format", "json", "--cache", str(work / "mirrors")]
    return subprocess.Popen(argv, cwd=work, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def workers_cloning(client: int, url: str) -> set[int]:
    """The client's worker processes with a git process of theirs cloning `url` (not the
    workers themselves: forked, they show the client's argv, every URL in it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if url.encode() not in argv or not Path(argv[0].decode()).name.startswith("git"):
            continue
        pid: int | None = int(entry.name)
        while pid is not None and pid > 1:
            parent = parent_of(pid)
            if parent == client:
                found.add(pid)
                break
            pid = parent
    return found


def clones_of(host: FakeHost, url: str) -> int:
    path = url.removeprefix(host.url) + "/info/refs?service=git-upload-pack"
    return sum(1 for seen in host.git_requests() if seen.path == path)


class Cloners:
    """Which worker processes were seen cloning each URL, looked at every 20 ms while the
    audit runs (each clone takes the host's second at least). A worker's clone that the
    network broke off and that it tries again is still one worker; a repository the pool
    handed out again is two."""

    def __init__(self, audit: subprocess.Popen[str], urls: list[str]) -> None:
        self.seen: dict[str, set[int]] = {url: set() for url in urls}
        self._thread = threading.Thread(target=self._watch, args=(audit,), daemon=True)
        self._thread.start()

    def _watch(self, audit: subprocess.Popen[str]) -> None:
        while audit.poll() is None:
            for url, workers in self.seen.items():
                workers |= workers_cloning(audit.pid, url)
            time.sleep(0.02)

    def of(self, url: str) -> int:
        self._thread.join()
        return len(self.seen[url])


def recorded(work: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(work / "keyscan-inventory.sqlite") as db:
        return db.execute("SELECT r.name, count(f.id) FROM repositories r LEFT JOIN findings f "
                          "ON f.repository_id = r.id WHERE r.scanned_at IS NOT NULL "
                          "GROUP BY r.name ORDER BY r.name").fetchall()


def test_a_worker_killed_mid_clone_costs_a_retry_of_its_repository_only(
    host: FakeHost, tmp_path: Path
) -> None:
    urls = serve(host, tmp_path)
    victim = urls[0]
    work = tmp_path / "work"
    work.mkdir()
    audit = start_audit(work, urls)
    cloners = Cloners(audit, urls)
    deadline = time.monotonic() + 60
    while not (held := workers_cloning(audit.pid, victim)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert held, "no worker was seen cloning the first repository"
    worker = held.pop()
    cloners.seen[victim].add(worker)  # killed the moment it was seen, maybe before a look
    os.kill(worker, signal.SIGKILL)
    out, err = audit.communicate(timeout=120)

    assert audit.returncode == 1, err
    assert err == "", host.errors  # a retry, nothing to warn about
    report = json.loads(out)
    assert sorted(f["repository"] for f in report["findings"]) == sorted(urls)  # each once
    assert report["summary"]["failed_repositories"] == 0
    assert recorded(work) == sorted((url, 1) for url in urls)
    assert cloners.of(victim) == 2 and clones_of(host, victim) >= 2  # again, on a fresh worker
    assert [cloners.of(url) for url in urls[1:]] == [1] * (REPOSITORIES - 1), (  # undisturbed
        [clones_of(host, url) for url in urls], host.errors)


def test_a_repository_that_kills_its_worker_twice_is_one_failed_repository(
    host: FakeHost, tmp_path: Path
) -> None:
    urls = serve(host, tmp_path)
    doomed = urls[2]
    work = tmp_path / "work"
    work.mkdir()
    audit = start_audit(work, urls)
    killed: list[int] = []

    def kill_whoever_clones_it() -> None:  # the repository "runs its worker out of memory"
        while audit.poll() is None:
            for pid in workers_cloning(audit.pid, doomed) - set(killed):
                killed.append(pid)
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_whoever_clones_it, daemon=True)
    killer.start()
    out, err = audit.communicate(timeout=120)
    killer.join()

    assert audit.returncode == 1, err
    assert len(killed) == 2
    assert err.splitlines() == [
        f"keyscan: warning: {doomed}: its worker process died twice while scanning it "
        "(out of memory? killed?)"]
    report = json.loads(out)
    assert report["summary"]["failed_repositories"] == 1
    others = sorted(url for url in urls if url != doomed)
    assert sorted(f["repository"] for f in report["findings"]) == others
    assert recorded(work) == [(url, 1) for url in others]
    assert clones_of(host, doomed) >= 2  # and no third worker took it (`killed` above)
