"""Repositories damaged or built to break a scan: what can be read is reported, what cannot
is one warning naming it, and the exit status is never 0 then. Damage made with git (and
packs written by hand where git would refuse to write them)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from gitcli import Result, keyscan
from gitrepo import Repo
from keys import make_key
from packcraft import BLOB, COMMIT, OFS_DELTA, REF_DELTA, TREE, Entry, copy, varint, write_pack

TIMEOUT = 120


def git_json(path: Path, *args: str) -> Result:
    return keyscan("git", "--format", "json", *args, cwd=path)


def three_files(repo: Repo, rng: random.Random) -> dict[str, str]:
    """One commit of three files with a key each: path -> blob id."""
    for n in range(3):
        repo.write(f"f{n}.env", f"KEY={make_key('repeatposts', rng)}\n")
    repo.commit()
    return {f"f{n}.env": repo.git("rev-parse", f"HEAD:f{n}.env") for n in range(3)}


def loose(repo: Repo, oid: str) -> Path:
    return repo.path / ".git" / "objects" / oid[:2] / oid[2:]


def assert_skipped(result: Result, oid: str, path: str | None, findings: int) -> None:
    assert "Traceback" not in result.err
    assert result.code == (1 if findings else 2), result.err
    assert len(result.findings) == findings
    assert result.report["summary"]["unreadable"] >= 1
    warning = next(line for line in result.err.splitlines() if oid in line)
    assert warning.startswith("keyscan: warning: git object ")
    if path is not None:
        assert f"({path})" in warning


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_corrupt_or_missing_loose_blob_hides_nothing_else(
    tmp_path: Path, damage: str
) -> None:
    repo = Repo(tmp_path / "repo")
    blobs = three_files(repo, random.Random(1))
    target = loose(repo, blobs["f1.env"])
    if damage == "corrupt":
        target.chmod(0o644)
        target.write_bytes(b"not zlib at all")
    else:
        target.unlink()
    result = git_json(repo.path)
    assert_skipped(result, blobs["f1.env"], "f1.env", findings=2)
    assert sorted(f["path"] for f in result.findings) == ["f0.env", "f2.env"]


def test_nothing_readable_left_is_exit_2_never_0(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("a.txt", "nothing secret\n")
    repo.commit()
    loose(repo, repo.git("rev-parse", "HEAD:a.txt")).unlink()
    result = git_json(repo.path)
    assert result.code == 2 and result.findings == []
    assert result.report["summary"]["unreadable"] == 1
    text = keyscan("git", cwd=repo.path)
    assert text.code == 2 and "1 git object unreadable" in text.out


def packed_instead(repo: Repo, entries: list[Entry]) -> None:
    """Replace the loose objects of `entries` by a hand-written pack holding them."""
    for entry in entries:
        path = loose(repo, entry.oid)
        if path.exists():
            path.unlink()
    write_pack(repo.path / ".git" / "objects", entries)


@pytest.mark.parametrize("damage", ["type-nibble", "lying-size", "delta-on-commit",
                                    "huge-delta", "delta-past-base"])
def test_a_damaged_pack_entry_is_skipped_with_a_warning(tmp_path: Path, damage: str) -> None:
    repo = Repo(tmp_path / "repo")
    blobs = three_files(repo, random.Random(2))
    oid = blobs["f1.env"]
    body = subprocess.run(["git", "cat-file", "blob", oid], cwd=repo.path, capture_output=True,
                          check=True).stdout
    head = repo.git("rev-parse", "HEAD")
    commit_body = subprocess.run(["git", "cat-file", "commit", head], cwd=repo.path,
                                 capture_output=True, check=True).stdout
    entries = {
        "type-nibble": [Entry(oid, TREE, body)],  # a blob whose type says tree
        "lying-size": [Entry(oid, BLOB, body, size=10**12)],  # a header claiming 1 TB
        # a delta whose base is the commit: git makes a "commit" of it
        "delta-on-commit": [Entry(head, COMMIT, commit_body),
                            Entry(oid, OFS_DELTA, varint(len(commit_body)) + varint(4)
                                  + copy(0, 4), base=head)],
        # 8 GiB out of a few hundred KB of delta: never rebuilt
        "huge-delta": [Entry(head, COMMIT, commit_body),
                       Entry(oid, OFS_DELTA, varint(len(commit_body)) + varint(8 << 30)
                             + copy(0, len(commit_body)) * 1000, base=head)],
        "delta-past-base": [Entry(blobs["f2.env"], BLOB, b"x" * 10),
                            Entry(oid, OFS_DELTA, varint(10) + varint(50) + copy(0, 50),
                                  base=blobs["f2.env"])],
    }[damage]
    packed_instead(repo, entries)
    result = git_json(repo.path)
    survivors = 1 if damage == "delta-past-base" else 2  # f2's blob is 10 x's there
    assert_skipped(result, oid, "f1.env", findings=survivors)


def test_a_fifo_among_an_alternates_packs_is_one_error_not_a_hang(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    three_files(repo, random.Random(3))
    shared = tmp_path / "shared" / "objects"
    (shared / "pack").mkdir(parents=True)
    os.mkfifo(shared / "pack" / "pack-0123.idx")
    (shared / "pack" / "pack-0123.pack").write_bytes(b"")
    (repo.path / ".git" / "objects" / "info" / "alternates").write_text(f"{shared}\n")
    result = keyscan("git", cwd=repo.path)  # the suite's timeout would catch a hang
    assert result.code == 2
    assert result.err.count("\n") == 1 and "pack-0123.idx is not a regular file" in result.err


def test_a_partial_clone_fetches_missing_blobs_or_counts_them(tmp_path: Path) -> None:
    """A blobless clone has no blob until asked: they are fetched from its promisor remote
    in one batch; with the remote gone, each is unreadable, in one warning line."""
    origin = Repo(tmp_path / "origin")
    rng = random.Random(4)
    for n in range(8):
        origin.write(f"d/f{n}.env", f"KEY={make_key('powerpost', rng)}\n")
        origin.commit()
    origin.git("config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-checkout", "--filter=blob:none",
                    f"file://{origin.path}", str(clone)], check=True, capture_output=True)
    missing = subprocess.run(["git", "rev-list", "--objects", "--missing=print", "--all"],
                             cwd=clone, capture_output=True, text=True, check=True).stdout
    assert missing.count("\n?") + missing.startswith("?") == 8  # blobs absent at first
    before = scan_of(clone, tmp_path, keep_remote=False)
    assert before.code == 2 and before.findings == []
    assert before.report["summary"]["unreadable"] == 8
    lines = [line for line in before.err.splitlines() if "could not be read" in line]
    assert len(lines) == 1 and lines[0].startswith("keyscan: warning: 8 git objects")
    after = scan_of(clone, tmp_path, keep_remote=True)
    assert after.code == 1 and len(after.findings) == 8, after.err
    assert after.report["summary"]["unreadable"] == 0


def scan_of(clone: Path, tmp_path: Path, keep_remote: bool) -> Result:
    """`keyscan git` of a copy of `clone`, its remote's repository there or moved away."""
    copy_of = tmp_path / f"copy-{keep_remote}"
    shutil.copytree(clone, copy_of, symlinks=True)
    origin = tmp_path / "origin"
    if not keep_remote:
        origin.rename(tmp_path / "origin-gone")
    try:
        return git_json(copy_of)
    finally:
        if not keep_remote:
            (tmp_path / "origin-gone").rename(origin)


def test_a_worker_killed_mid_scan_costs_a_retry_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from keyscan.engine import Engine
    from keyscan.model import Stats
    from keyscan.rules import load_builtin
    from keyscan.sources import blobscan, git, history

    repo = Repo(tmp_path / "repo")
    rng = random.Random(6)
    for n in range(12):
        repo.write(f"f{n}.env", f"KEY={make_key('repeatposts', rng)}\n" * (n % 2))
        repo.commit()
    repo.git("repack", "-adq")
    parent = os.getpid()
    real = blobscan._Job.__call__

    def dying(job: blobscan._Job, scanner: object) -> object:
        if os.getpid() != parent and job.packed:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return real(job, scanner)  # type: ignore[arg-type]

    monkeypatch.setattr(blobscan, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(blobscan, "_cores", lambda: 2)
    monkeypatch.setattr(blobscan._Job, "__call__", dying)
    warnings: list[str] = []
    found = history.scan_all(git.open_repo(str(repo.path)), Engine(load_builtin().rules),
                             Stats(), warnings.append)
    assert len(found) == 6
    assert any("a worker process died" in warning for warning in warnings)


def delta_cycle(tmp_path: Path) -> tuple[Repo, str, str]:
    """A repository whose f0.env and f1.env blobs are each a delta of the other."""
    repo = Repo(tmp_path / "repo")
    blobs = three_files(repo, random.Random(7))
    first, second = blobs["f0.env"], blobs["f1.env"]
    delta = varint(4) + varint(4) + copy(0, 4)
    packed_instead(repo, [Entry(first, REF_DELTA, delta, base=second),
                          Entry(second, REF_DELTA, delta, base=first)])
    return repo, first, second


def test_a_delta_cycle_is_skipped_not_a_hang(tmp_path: Path) -> None:
    """Two blobs, each a delta of the other: git itself loops on them forever."""
    repo, first, second = delta_cycle(tmp_path)
    result = git_json(repo.path)
    assert_skipped(result, first, "f0.env", findings=1)
    assert second in result.err


@pytest.mark.parametrize("whole", [True, False], ids=["pack read whole", "pack in blocks"])
def test_a_delta_cycle_is_found_in_a_small_pack_and_in_a_big_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole: bool) -> None:
    """The type of every object is read at its offset: a small pack at once, a big one a
    block at a time (offsets sorted); both find the same cycle."""
    from keyscan.sources import git, packfile, readat

    repo, first, second = delta_cycle(tmp_path)
    if not whole:
        monkeypatch.setattr(readat, "WHOLE", 0)
    packs = packfile.pack_files(git.open_repo(str(repo.path)))
    assert packfile.delta_cycles(packs, 20) == {first, second}


def test_a_huge_blob_is_read_in_pieces_with_bounded_memory(tmp_path: Path) -> None:
    """A 288 MiB blob (keys in its middle and at its end) is streamed from git and scanned
    in windows, in history and in the rescan for line numbers: peak RSS stays far below."""
    from test_driver import measured

    repo = Repo(tmp_path / "repo")
    rng = random.Random(9)
    keys = [make_key("posteverywhere", rng), make_key("autoposting", rng)]
    size = 288 << 20
    with open(repo.path / "disk.img", "wb") as file:
        file.truncate(size // 2)
        file.write(f"\nmiddle {keys[0]}\n".encode())
        file.truncate(size)
        file.seek(size - 100)
        file.write(f"\nend {keys[1]}\n".encode())
    sha = repo.commit("a disk image")
    (repo.path / "disk.img").unlink()
    code, report, rss = measured("-", "git", "--format", "json", str(repo.path))
    assert code == 1
    found = sorted((f["commit"], f["path"], f["line"]) for f in report["findings"])
    assert found == [(sha, "disk.img", 2), (sha, "disk.img", 4)]
    assert rss < 256 * 1024  # KiB: the blob alone is 288 MiB


def blob_of(repo: Repo, oid: str) -> bytes:
    return subprocess.run(["git", "cat-file", "blob", oid], cwd=repo.path, capture_output=True,
                          check=True).stdout


def lying_loose(repo: Repo, oid: str, lie: int) -> None:
    """Rewrite loose object `oid` with a header claiming `lie` bytes more than it holds:
    `git cat-file --batch` prints that size, then what the object really holds."""
    path = loose(repo, oid)
    body = blob_of(repo, oid)
    path.chmod(0o644)
    path.write_bytes(zlib.compress(b"blob %d\0" % (len(body) + lie) + body))


@pytest.mark.parametrize(("store", "lie"), [("loose", -5), ("loose", 5), ("loose", 100_000),
                                            ("pack", -5), ("pack", 5)])
@pytest.mark.parametrize("mode", ["git", "staged"])
def test_a_size_that_lies_a_little_costs_its_object_not_the_ones_after_it(
    tmp_path: Path, store: str, lie: int, mode: str
) -> None:
    """A blob whose header lies by less than the 16 MiB read in pieces is handed to git,
    whose answer then is not where its sizes say: the blobs git gives after it are still
    read right (their keys found, no other warning), the liar is named and counted."""
    repo = Repo(tmp_path / "repo")
    rng = random.Random(12)
    for n in range(4):
        repo.write(f"f{n}.env", f"KEY={make_key('repeatposts', rng)}\n")
    repo.git("add", ".")
    blobs = {repo.git("rev-parse", f":f{n}.env"): f"f{n}.env" for n in range(4)}
    liar = min(blobs)  # git answers for loose objects in id order: the others follow it
    if mode == "git":
        repo.commit()
    if store == "loose":
        lying_loose(repo, liar, lie)
    else:
        body = blob_of(repo, liar)
        packed_instead(repo, [Entry(liar, BLOB, body, size=len(body) + lie)])
    result = keyscan(mode, "--format", "json", cwd=repo.path)
    assert "Traceback" not in result.err
    assert result.code == 1, result.err
    assert sorted(f["path"] for f in result.findings) == sorted(
        path for oid, path in blobs.items() if oid != liar)
    assert result.report["summary"]["unreadable"] == 1
    assert result.err.count("\n") == 1, result.err  # one warning: the liar's
    assert result.err.startswith(f"keyscan: warning: git object {liar} ({blobs[liar]}) "
                                 "could not be read: ")


def test_an_old_version_whose_size_lies_costs_no_hang_in_a_range(tmp_path: Path) -> None:
    """`git --range` reads the versions before the range of what it finds: one whose size
    lies (git then prints fewer bytes than it said) once made keyscan wait on git
    forever; it holds nothing known, so the key is reported as introduced."""
    repo = Repo(tmp_path / "repo")
    repo.write("a.env", "KEY=none yet\n")
    first = repo.commit()
    lying_loose(repo, repo.git("rev-parse", "HEAD:a.env"), 5)
    repo.write("a.env", f"KEY={make_key('repeatposts', random.Random(13))}\n")
    second = repo.commit()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run([sys.executable, "-m", "keyscan", "git", "--format", "json",
                           "--range", f"{first}..{second}"], cwd=repo.path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 1, done.stderr
    assert [f["commit"] for f in json.loads(done.stdout)["findings"]] == [second]
