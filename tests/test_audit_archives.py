"""`keyscan audit` opens archives committed to a repository as `keyscan git` does: a zip,
jar or tarball in a blob is scanned member by member, findings at `outer!inner!member`,
within --max-archive-depth / --max-decompressed-bytes, and the inventory keeps them as
any other finding (a fork's copy of an archive is not scanned again).
"""

from __future__ import annotations

import io
import random
import sqlite3
import zipfile
from pathlib import Path

from gitcli import keyscan
from gitrepo import Repo
from keys import make_key
from test_audit import audit

JAR_PATH = "dist/app.zip!lib/client.jar!config/app.properties"


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def release(key: str) -> bytes:
    """dist/app.zip: a jar inside a zip, the key in the jar's properties (deflated: its
    bytes as they are hide it)."""
    jar = zipped({"config/app.properties": f"# settings\napi.key={key}\n".encode()})
    return zipped({"lib/client.jar": jar, "README.txt": b"release\n"})


def nested(levels: int, key: str) -> bytes:
    data = f"k = '{key}'\n".encode()
    for level in range(levels):
        data = zipped({f"level{level}.zip" if level else "secret.txt": data})
    return data


def test_keys_in_committed_archives_are_found_remembered_and_not_scanned_again_in_a_fork(
    tmp_path: Path,
) -> None:
    rng = random.Random(1616)
    origin = Repo(tmp_path / "origin")
    origin.write("README.md", "hello\n")
    origin.commit("start")
    origin.write("dist/app.zip", release(make_key("posteverywhere", rng)))
    sha = origin.commit("release 1.0")
    bare = tmp_path / "fork.git"
    origin.git("clone", "-q", "--bare", str(origin.path), str(bare))

    first = audit(tmp_path, "origin")
    again = audit(tmp_path, "origin")
    fork = audit(tmp_path, bare.as_uri())
    history = keyscan("git", "--format", "json", cwd=origin.path)

    assert [(f["path"], f["line"], f["column"], f["commit"], f["new"])
            for f in first.findings] == [(JAR_PATH, 2, 9, sha, True)]
    assert first.where() == history.where()  # as `keyscan git` reports it
    assert first.findings[0]["refs"] == ["refs/heads/main"]
    assert first.report["summary"]["files"] == 3  # README.md and the two members
    assert [(f["path"], f["new"]) for f in again.findings] == [(JAR_PATH, False)]
    assert again.report["summary"]["files"] == 0
    assert [(f["repository"], f["path"], f["line"]) for f in fork.findings] == [
        (bare.as_uri(), JAR_PATH, 2)]
    assert fork.report["summary"]["files"] == 0  # the fork's blobs: every one scanned before
    with sqlite3.connect(tmp_path / "keyscan-inventory.sqlite") as db:
        rows = db.execute("SELECT r.name, f.path, f.line, f.present, count(s.audit_id) "
                          "FROM findings f JOIN repositories r ON r.id = f.repository_id "
                          "LEFT JOIN sightings s ON s.finding_id = f.id "
                          "GROUP BY f.id ORDER BY r.name").fetchall()
    assert rows == [(bare.as_uri(), JAR_PATH, 2, 1, 1), ("origin", JAR_PATH, 2, 1, 2)]


def test_archive_limits_are_the_options_of_keyscan_git_and_a_new_limit_rescans(
    tmp_path: Path,
) -> None:
    rng = random.Random(1617)
    repo = Repo(tmp_path / "one")
    repo.write("deep.zip", nested(4, make_key("posteverywhere", rng)))  # the key at depth 4
    repo.write("dist/app.zip", release(make_key("posteverywhere", rng)))
    repo.commit("archives")

    shallow = audit(tmp_path, "one", "--max-archive-depth", "3")
    closed = audit(tmp_path, "one", "--max-archive-depth", "0")
    opened = audit(tmp_path, "one")
    git_shallow = keyscan("git", "--format", "json", "--max-archive-depth", "3", cwd=repo.path)

    assert [f["path"] for f in shallow.findings] == [JAR_PATH]
    assert [f["path"] for f in shallow.findings] == [f["path"] for f in git_shallow.findings]
    assert shallow.report["summary"]["skipped_files"] == 1
    warnings = [line for line in shallow.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("keyscan: warning: one: ")
    assert "an archive nested deeper than --max-archive-depth 3" in warnings[0]
    assert closed.findings == [] and closed.err == ""  # deflated members: nothing shows
    assert closed.report["summary"]["files"] == 2  # the archives, as bytes: scanned again
    assert sorted((f["path"], f["new"]) for f in opened.findings) == [
        ("deep.zip!level3.zip!level2.zip!level1.zip!secret.txt", True), (JAR_PATH, False)]
    assert opened.report["summary"]["skipped_files"] == 0


def test_an_archive_past_the_byte_budget_is_one_warning_and_the_rest_is_scanned(
    tmp_path: Path,
) -> None:
    rng = random.Random(1618)
    repo = Repo(tmp_path / "one")
    key, other = make_key("posteverywhere", rng), make_key("powerpost", rng)
    repo.write("bomb.zip", zipped({"a.txt": f"{key}\n".encode(), "zeros": bytes(4 << 20),
                                   "z.txt": f"{other}\n".encode()}))
    repo.commit("bomb")

    result = audit(tmp_path, "one", "--max-decompressed-bytes", "1MiB")

    assert [f["path"] for f in result.findings] == ["bomb.zip!a.txt"]
    assert result.report["summary"]["skipped_files"] == 1
    assert "expands past --max-decompressed-bytes (1048576 bytes)" in result.err
