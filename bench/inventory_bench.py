"""The inventory's write rate: how many repositories, blob rows and findings per second the
audit's client can record, in SQLite and in PostgreSQL.

    python bench/inventory_bench.py [--repos 200] [--blobs 2000] [--findings 5] [--no-postgres]

Each repository is one `Inventory.record` transaction (as the audit's client writes
it), with `--blobs` new blob ids and `--findings` findings. PostgreSQL is a throwaway
server on 127.0.0.1 (tests/pgserver.py; fsync off, as the tests run it: a production
server with fsync pays one WAL flush per repository on top). The machine is shared:
compare the rows within one run.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from keyscan.audit.task import RepoResult  # noqa: E402
from keyscan.inventory.store import Inventory  # noqa: E402
from keyscan.model import Commit, Finding  # noqa: E402


def oid(*parts: object) -> str:
    return hashlib.sha1("-".join(map(str, parts)).encode()).hexdigest()


def result(n: int, blobs: int, findings: int) -> tuple[RepoResult, list[Finding]]:
    name = f"https://git.example.com/acme/repo{n:05d}.git"
    commit = Commit(oid("c", n), "Bench", "b@example.com", "2026-01-01T00:00:00+00:00")
    found = [
        Finding("posteverywhere-api-key", "posteverywhere", "critical", "", f"conf/{k}.py", 1, 9,
                prefix="pe" + "_live_", commit=commit, refs=("refs/heads/main",),
                repository=name, secret_hash=hashlib.sha256(f"{n}-{k}".encode()).hexdigest())
        for k in range(findings)]
    scanned = [oid("b", n, k) for k in range(blobs)]
    res = RepoResult(name, tips={"refs/heads/main": commit.sha}, findings=found,
                     scanned=scanned, secrets={})
    return res, found


def run(url: str, repos: int, blobs: int, findings: int) -> tuple[float, float, float]:
    inventory = Inventory(url)
    try:
        audit = inventory.begin_audit(oid("audit", url, time.time()))
        start = time.perf_counter()
        for n in range(repos):
            res, found = result(n, blobs, findings)
            inventory.record(audit, res, found, "digest", "engine")
        seconds = time.perf_counter() - start
        inventory.finish_audit(audit)
    finally:
        inventory.close()
    return repos / seconds, repos * blobs / seconds, repos * findings / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--blobs", type=int, default=2000)
    parser.add_argument("--findings", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        rows.append(("SQLite (WAL, file)",
                     run(str(Path(scratch) / "inv.sqlite"), args.repos, args.blobs, args.findings)))
    if not args.no_postgres:
        from pgserver import PostgresServer

        server = PostgresServer()
        try:
            rows.append(("PostgreSQL 15 (loopback)",
                         run(server.url(), args.repos, args.blobs, args.findings)))
        finally:
            server.stop()
    print(f"{args.repos} repositories, {args.blobs} new blobs and {args.findings} findings each, "
          "one transaction per repository")
    print("| inventory | repositories/s | blob rows/s | findings/s |")
    print("|---|---|---|---|")
    for label, (per_repo, per_blob, per_finding) in rows:
        print(f"| {label} | {per_repo:.1f} | {per_blob:,.0f} | {per_finding:,.0f} |")


if __name__ == "__main__":
    main()
