"""The inventory in a real PostgreSQL server (a throwaway one on 127.0.0.1): audits write
it, `keyscan inventory` reads it, and two audits write it at the same time.

Skipped only where no PostgreSQL server is installed, and never in CI (CI=true).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitcli import ROOT, keyscan
from gitrepo import BASE_ENV, Repo
from keys import make_key
from pgserver import PostgresServer, Unavailable


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    try:
        started = PostgresServer()
    except Unavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {error}")
        pytest.skip(f"no PostgreSQL server here: {error}")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def database(server: PostgresServer) -> str:
    return server.create_database(f"t{uuid.uuid4().hex[:12]}")


def org(root: Path, count: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    names = []
    for index in range(count):
        repo = Repo(root / f"r{index}")
        repo.write("app.py", f"K = '{make_key('posteverywhere', rng)}'\n")
        repo.commit("key")
        names.append(f"r{index}")
    return names


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


def test_audits_write_and_inventory_reads_postgres(tmp_path: Path, database: str) -> None:
    names = org(tmp_path, 3)

    first = keyscan("audit", *names, "--inventory", database, "--format", "json", cwd=tmp_path)
    second = keyscan("audit", *names, "--inventory", database, "--format", "json", cwd=tmp_path)
    listed = keyscan("inventory", "--inventory", database, "--format", "json", cwd=tmp_path)

    assert first.code == 1, first.err
    assert {f["repository"] for f in first.findings} == set(names)
    assert all(f["new"] for f in first.findings)
    assert second.code == 1 and second.report["summary"]["files"] == 0
    assert not any(f["new"] for f in second.findings)
    assert listed.code == 1 and len(listed.findings) == 3
    assert query(database, "SELECT version FROM schema_version") == [(1,)]
    assert query(database, "SELECT count(*) FROM audits WHERE finished IS NOT NULL") == [(2,)]
    assert not (tmp_path / "keyscan-inventory.sqlite").exists()


def test_two_audits_write_one_postgres_inventory_at_once(tmp_path: Path, database: str) -> None:
    names = org(tmp_path, 8)
    env = {**os.environ, **BASE_ENV, "PYTHONPATH": str(ROOT / "src")}

    def start(repos: list[str]) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "keyscan", "audit", *repos, "--inventory", database,
                "--format", "json", "--workers", "2", "--cache", str(tmp_path / "cache")]
        return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # overlapping halves, in opposite orders: both write r2..r5 at about the same time
    one, two = start(names[:6]), start(list(reversed(names[2:])))
    outs = [proc.communicate(timeout=300) for proc in (one, two)]

    for proc, (_, err) in zip((one, two), outs, strict=True):
        assert proc.returncode == 1, err
        assert "Traceback" not in err
    reports = [json.loads(out) for out, _ in outs]
    assert {f["repository"] for f in reports[0]["findings"]} == set(names[:6])
    assert {f["repository"] for f in reports[1]["findings"]} == set(names[2:])
    assert query(database, "SELECT count(*), count(DISTINCT name) FROM repositories") == [(8, 8)]
    assert query(database, "SELECT count(*), count(DISTINCT (repository_id, fingerprint)) "
                           "FROM findings") == [(8, 8)]
    blobs = query(database, "SELECT count(*), count(DISTINCT oid) FROM blobs")
    assert blobs[0][0] == blobs[0][1] == 8
    firsts = {f["repository"]: f["first_seen"] for r in reports for f in r["findings"]}
    for report in reports:  # both audits agree on when each key was first seen
        for finding in report["findings"]:
            assert finding["first_seen"] == firsts[finding["repository"]]
