"""`keyscan audit`: many repositories, an inventory in a real SQLite file, as a user runs it."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from fakevendor import FakeVendors
from gitcli import Result, keyscan
from gitrepo import Repo
from keys import make_key


@pytest.fixture
def rng() -> random.Random:
    return random.Random(16)


def audit(cwd: Path, *args: str, expect: tuple[int, ...] = (0, 1)) -> Result:
    result = keyscan("audit", "--format", "json", "--cache", str(cwd / "mirrors"), *args,
                     cwd=cwd)
    assert result.code in expect, result.err
    return result


def project(path: Path, rng: random.Random, keys: int = 1) -> tuple[Repo, list[str]]:
    repo = Repo(path)
    planted = [make_key("posteverywhere", rng) for _ in range(keys)]
    repo.write("README.md", "hello\n")
    repo.commit("start")
    for index, key in enumerate(planted):
        repo.write(f"conf/{index}.py", f"TOKEN = '{key}'\n")
        repo.commit(f"key {index}")
    return repo, planted


def by_repo(result: Result) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in result.findings:
        found.setdefault(finding["repository"], set()).add(finding["path"])
    return found


def test_audits_each_repository_and_remembers_what_it_saw(
    tmp_path: Path, rng: random.Random
) -> None:
    project(tmp_path / "one", rng, keys=2)
    project(tmp_path / "two", rng, keys=1)

    first = audit(tmp_path, "one", "two")

    assert first.code == 1
    assert by_repo(first) == {"one": {"conf/0.py", "conf/1.py"}, "two": {"conf/0.py"}}
    for finding in first.findings:
        assert finding["new"] is True
        assert finding["first_seen"] == finding["last_seen"]
        assert finding["refs"] == ["refs/heads/main"]
        assert len(finding["commit"]) == 40
    assert first.report["summary"]["failed_repositories"] == 0
    assert (tmp_path / "keyscan-inventory.sqlite").is_file()

    second = audit(tmp_path, "one", "two")

    assert second.code == 1
    assert by_repo(second) == by_repo(first)
    assert second.report["summary"]["files"] == 0  # unchanged: no blob scanned
    assert all(f["new"] is False for f in second.findings)
    firsts = {(f["repository"], f["path"]): f["first_seen"] for f in first.findings}
    for finding in second.findings:
        assert finding["first_seen"] == firsts[finding["repository"], finding["path"]]
        assert finding["last_seen"] >= finding["first_seen"]


def test_a_changed_repository_costs_only_its_new_blobs_and_new_only_shows_them(
    tmp_path: Path, rng: random.Random
) -> None:
    repo, _ = project(tmp_path / "one", rng)
    project(tmp_path / "two", rng)
    audit(tmp_path, "one", "two")
    repo.write("conf/late.py", f"LATE = '{make_key('posteverywhere', rng)}'\n")
    repo.commit("late key")

    every = audit(tmp_path, "one", "two")
    result = audit(tmp_path, "one", "two", "--new-only")

    assert every.report["summary"]["files"] == 1  # the one new blob
    assert {(f["repository"], f["path"], f["new"]) for f in every.findings} == {
        ("one", "conf/0.py", False), ("one", "conf/late.py", True), ("two", "conf/0.py", False)}
    assert result.findings == []  # the audit before it already saw the late key
    assert result.code == 0


def test_a_fork_costs_only_its_own_blobs_and_lists_inherited_keys(
    tmp_path: Path, rng: random.Random
) -> None:
    origin, _ = project(tmp_path / "origin", rng, keys=2)
    fork = Repo(tmp_path / "fork-work")
    fork.git("pull", "-q", str(origin.path), "main")
    fork.write("conf/fork.py", f"F = '{make_key('posteverywhere', rng)}'\n")
    fork.commit("fork's own key")
    fork_url = (tmp_path / "fork.git").as_uri()
    fork.git("clone", "-q", "--bare", str(fork.path), str(tmp_path / "fork.git"))
    audit(tmp_path, "origin")

    result = audit(tmp_path, fork_url)

    assert by_repo(result) == {fork_url: {"conf/0.py", "conf/1.py", "conf/fork.py"}}
    assert result.report["summary"]["files"] == 1  # only the fork's own blob
    assert (tmp_path / "mirrors").is_dir() and any((tmp_path / "mirrors").glob("fork-*.git"))


def test_a_mirror_is_fetched_again_next_time(tmp_path: Path, rng: random.Random) -> None:
    work, _ = project(tmp_path / "work", rng)
    bare = tmp_path / "origin.git"
    work.git("clone", "-q", "--bare", str(work.path), str(bare))
    audit(tmp_path, bare.as_uri())
    work.write("late.py", f"L = '{make_key('posteverywhere', rng)}'\n")
    work.commit("late")
    work.git("push", "-q", str(bare), "main")

    result = audit(tmp_path, bare.as_uri())

    assert {(f["path"], f["new"]) for f in result.findings} == {
        ("conf/0.py", False), ("late.py", True)}
    assert len(list((tmp_path / "mirrors").glob("*.git"))) == 1


def test_a_repository_that_cannot_be_read_is_one_warning_and_the_rest_go_on(
    tmp_path: Path, rng: random.Random
) -> None:
    project(tmp_path / "good", rng)
    (tmp_path / "plain").mkdir()

    result = audit(tmp_path, "good", "plain", "file:///nowhere/at/all.git")
    nothing = audit(tmp_path, "plain", expect=(2,))

    assert result.code == 1
    assert by_repo(result) == {"good": {"conf/0.py"}}
    assert result.report["summary"]["failed_repositories"] == 2
    warnings = [line for line in result.err.splitlines() if line.startswith("keyscan: warning:")]
    assert len(warnings) == 2
    assert any("plain: not a git repository" in line for line in warnings)
    assert any("file:///nowhere/at/all.git: could not clone" in line for line in warnings)
    assert nothing.findings == [] and nothing.report["summary"]["failed_repositories"] == 1


def test_repositories_from_a_file_with_comments(tmp_path: Path, rng: random.Random) -> None:
    project(tmp_path / "one", rng)
    project(tmp_path / "two", rng)
    listing = tmp_path / "repos.txt"
    listing.write_text("# our repositories\none\n\n  two   # the second\n# done\n")

    result = audit(tmp_path, "--repos-from", str(listing))

    assert set(by_repo(result)) == {"one", "two"}


def test_no_repository_given_is_a_usage_error(tmp_path: Path) -> None:
    result = keyscan("audit", cwd=tmp_path)
    missing = keyscan("audit", "--repos-from", "absent.txt", cwd=tmp_path)

    assert result.code == 2
    assert result.err.strip() == ("keyscan: error: no repositories to audit: give paths or "
                                  "URLs, --repos-from FILE, --github-org, --github-user or "
                                  "--gitlab-group")
    assert missing.code == 2 and "absent.txt" in missing.err and "Traceback" not in missing.err


def test_the_inventory_never_holds_a_whole_secret(tmp_path: Path, rng: random.Random) -> None:
    _, keys = project(tmp_path / "one", rng, keys=3)
    audit(tmp_path, "one", "--workers", "1")

    files = list(tmp_path.glob("keyscan-inventory.sqlite*"))
    stored = b"".join(path.read_bytes() for path in files)
    with sqlite3.connect(tmp_path / "keyscan-inventory.sqlite") as db:
        dump = "\n".join(db.iterdump())
        redacted = {row[0] for row in db.execute("SELECT secret_redacted FROM findings")}
    for key in keys:
        assert key.encode() not in stored
        assert key not in dump
        assert key[len("pe_live_"):].encode() not in stored
    assert redacted == {"pe" + "_live_…" + key[-4:] for key in keys}


def test_the_inventory_is_a_file_the_user_names(tmp_path: Path, rng: random.Random) -> None:
    project(tmp_path / "one", rng)
    target = tmp_path / "db" / "org.sqlite"
    target.parent.mkdir()

    audit(tmp_path, "one", "--inventory", str(target))
    bad = keyscan("audit", "one", "--inventory", str(tmp_path / "nowhere" / "x.sqlite"),
                  cwd=tmp_path)

    assert target.is_file() and not (tmp_path / "keyscan-inventory.sqlite").exists()
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        assert db.execute("SELECT name FROM repositories").fetchall() == [("one",)]
    assert bad.code == 2 and bad.err.count("\n") == 1 and "does not exist" in bad.err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_audit_leaves_its_inventory_whole_in_one_file(
    tmp_path: Path, rng: random.Random, workers: str
) -> None:
    project(tmp_path / "one", rng)
    project(tmp_path / "two", rng)
    folder = tmp_path / "db"
    folder.mkdir()

    audit(tmp_path, "one", "two", "--workers", workers, "--inventory", str(folder / "org.sqlite"))

    # Every connection closed, the writer last: SQLite folded its WAL back into the file.
    assert sorted(path.name for path in folder.iterdir()) == ["org.sqlite"]


def test_parallel_workers_give_the_same_findings(tmp_path: Path, rng: random.Random) -> None:
    names = []
    for index in range(5):
        project(tmp_path / f"r{index}", rng, keys=index % 3)
        names.append(f"r{index}")
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "db").mkdir()

    pooled = audit(tmp_path, *names, "--workers", "3",
                   "--inventory", str(tmp_path / "alone" / "db" / "a.sqlite"))
    single = audit(tmp_path, *names, "--workers", "1")

    def rows(result: Result) -> list[tuple[str, str, str]]:
        return sorted((f["repository"], f["path"], f["secret_sha256"]) for f in result.findings)

    assert rows(pooled) == rows(single) and len(rows(single)) == 0 + 1 + 2 + 0 + 1


def test_scan_and_git_never_import_the_database_library(tmp_path: Path, rng: random.Random) -> None:
    import subprocess
    import sys

    project(tmp_path / "one", rng)
    code = (
        "import sys\n"
        "from keyscan.cli import main\n"
        "for argv in (['git', 'one'], ['scan', 'one']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg')]\n"
        "sys.stderr.write(repr(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={**__import__("os").environ,
                                          "PYTHONPATH": str(Path(__file__).parents[1] / "src")})

    assert done.stderr.endswith("[]"), done.stderr[-300:]


def test_verify_rechecks_every_audit_and_the_inventory_keeps_each_answer(
    tmp_path: Path, rng: random.Random, fake_vendor: FakeVendors
) -> None:
    from fakevendor import json_answer

    _, (key,) = project(tmp_path / "one", rng)
    project(tmp_path / "two", rng, keys=0)
    fake_vendor.answer(key, json_answer(200), json_answer(401))

    first = audit(tmp_path, "one", "two", "--verify")
    second = audit(tmp_path, "one", "two", "--verify")
    listed = keyscan("inventory", "--status", "invalid", "--format", "json", cwd=tmp_path)
    live = keyscan("inventory", "--status", "live", cwd=tmp_path)

    assert [(f["verification"]["status"], f["verification"]["http_status"])
            for f in first.findings] == [("live", 200)]
    assert [f["verification"]["status"] for f in second.findings] == ["invalid"]
    assert len(fake_vendor.requests_for(key)) == 2  # asked again on the second audit
    assert [f["repository"] for f in listed.report["findings"]] == ["one"]
    assert live.code == 0
    with sqlite3.connect(tmp_path / "keyscan-inventory.sqlite") as db:
        rows = db.execute("SELECT status, http_status, checked_at FROM verifications "
                          "ORDER BY id").fetchall()
    assert [(status, http) for status, http, _ in rows] == [("live", 200), ("invalid", 401)]
    assert all(stamp.endswith("+00:00") for _, _, stamp in rows)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("keyscan-inventory.sqlite*"))
    assert key.encode() not in stored


def test_show_secrets_reads_keys_back_from_the_repositories(
    tmp_path: Path, rng: random.Random
) -> None:
    _, (key,) = project(tmp_path / "one", rng)
    audit(tmp_path, "one")

    shown = audit(tmp_path, "one", "--show-secrets")
    hidden = audit(tmp_path, "one")

    assert [f["secret"] for f in shown.findings] == [key]
    assert [f["new"] for f in shown.findings] == [False]
    assert key not in hidden.out


def test_a_killed_audit_resumes_with_nothing_lost_or_reported_twice(
    tmp_path: Path, rng: random.Random
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from gitcli import ROOT
    from gitrepo import BASE_ENV

    names = []
    for index in range(14):
        repo, _ = project(tmp_path / f"r{index:02d}", rng, keys=1)
        for step in range(6):  # some history, so that each repository takes a while
            repo.write(f"notes/{step}.txt", "text\n" * (step + 1) * 200)
            repo.commit(f"step {step}")
        names.append(f"r{index:02d}")
    db = tmp_path / "keyscan-inventory.sqlite"
    argv = [sys.executable, "-m", "keyscan", "audit", *names, "--workers", "1", "--format",
            "json", "--cache", str(tmp_path / "mirrors")]
    env = {**os.environ, **BASE_ENV, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)

    def recorded() -> int:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                return int(conn.execute("SELECT count(*) FROM repositories "
                                        "WHERE scanned_at IS NOT NULL").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # not created yet

    deadline = time.monotonic() + 120
    while recorded() < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = recorded()
    assert 3 <= done_before < len(names), "the audit was not killed mid-run"
    with sqlite3.connect(db) as conn:  # every repository written is written whole
        rows = conn.execute(
            "SELECT r.name, count(f.id) FROM repositories r LEFT JOIN findings f "
            "ON f.repository_id = r.id WHERE r.scanned_at IS NOT NULL GROUP BY r.name").fetchall()
        assert all(count == 1 for _, count in rows)
        assert conn.execute("SELECT count(*) FROM audits WHERE finished IS NULL").fetchone() == (1,)

    resumed = audit(tmp_path, *names, "--workers", "1")

    keys = [(f["repository"], f["path"]) for f in resumed.findings]
    assert sorted(keys) == sorted({(name, "conf/0.py") for name in names})  # each once
    assert all(f["new"] for f in resumed.findings)  # the same audit, resumed
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), count(finished) FROM audits").fetchone() == (1, 1)
        assert conn.execute("SELECT count(*) FROM findings").fetchone() == (len(names),)
    again = audit(tmp_path, *names, "--workers", "1", "--new-only")
    assert again.findings == [] and again.report["summary"]["files"] == 0


def test_progress_on_a_terminal_and_quiet_when_piped(tmp_path: Path, rng: random.Random) -> None:
    import contextlib
    import os
    import pty
    import socket
    import subprocess
    import sys
    import threading
    import time

    from gitcli import ROOT
    from gitrepo import BASE_ENV

    names = []
    for index in range(3):
        repo, _ = project(tmp_path / f"r{index}", rng)
        for step in range(5):
            repo.write(f"n{step}.txt", "x\n" * 500 * (step + 1))
            repo.commit()
        names.append(f"r{index}")
    slow = socket.socket()  # a host that takes a second to fail: the progress line shows
    slow.bind(("127.0.0.1", 0))
    slow.listen(4)

    def stall() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = slow.accept()
                time.sleep(1.0)
                conn.close()

    threading.Thread(target=stall, daemon=True).start()
    url = f"http://127.0.0.1:{slow.getsockname()[1]}/slow.git"
    env = {**os.environ, **BASE_ENV, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, "-m", "keyscan", "audit", url, *names, "--workers", "1",
            "--format", "json", "--output", str(tmp_path / "out.json"),
            "--cache", str(tmp_path / "mirrors")]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the audit ended
            break
        if not chunk:
            break
        seen += chunk
    proc.wait()
    os.close(leader)
    slow.close()
    piped = audit(tmp_path, *names, "--workers", "1")

    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 1
    assert "keyscan audit: " in text and "/4 repositories" in text, text
    assert "findings; last: r" in text
    assert text.endswith("\r\x1b[K")  # the line is cleared at the end
    assert piped.err == ""
