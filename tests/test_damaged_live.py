"""Damage that happens while keyscan reads: a pack file cut short under the reader, a
big blob's object cut short before git streams it. The damage is done by a hook at the
moment named (in a real `python -m keyscan` process, so a crash shows as its exit
status); everything else is real git."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from gitcli import ROOT, Result
from gitrepo import Repo
from keys import make_key

# Run keyscan's CLI in a fresh process after `hook` (Python source) has run in it.
LAUNCH = "import sys\n{hook}\nfrom keyscan.cli import main\nmain(sys.argv[1:])\n"


def keyscan_hooked(hook: str, *args: str, cwd: Path) -> Result:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run([sys.executable, "-c", LAUNCH.format(hook=hook), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)
    return Result(done.returncode, done.stdout, done.stderr)


def repack_apart(repo: Repo, apart: set[str]) -> Path:
    """Repack `repo` as three packs: its commits and trees, the blobs `apart`, the other
    blobs (so that cutting the pack of those `apart` leaves the rest whole: git's walk of
    the history included). The pack of those `apart`."""
    listing = repo.git("cat-file", "--batch-all-objects",
                       "--batch-check=%(objectname) %(objecttype)")
    groups: dict[str, list[str]] = {}
    for line in listing.splitlines():
        oid, kind = line.split()
        group = "apart" if oid in apart else "blob" if kind == "blob" else "other"
        groups.setdefault(group, []).append(oid)
    pack_dir = repo.path / ".git" / "objects" / "pack"
    old = list(pack_dir.iterdir())
    names = {group: repo.git("pack-objects", "-q", str(pack_dir / "pack"),
                             input="".join(f"{oid}\n" for oid in oids).encode())
             for group, oids in groups.items()}
    for path in old:
        path.unlink()
    repo.git("prune-packed")
    return pack_dir / f"pack-{names['apart']}.pack"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_pack_cut_short_while_it_is_read_costs_its_objects_not_the_scan(
    tmp_path: Path, workers: int
) -> None:
    """One pack is cut to half its size when keyscan reads its first blob, in this
    process (a small repository) or in workers: no crash (a mapped pack would kill the
    process with SIGBUS). Each blob of that pack is read as it was before the cut, or
    through git, which can no longer read that pack: then it is named in a warning (a
    path holding it too) and counted. Every other blob's key is reported."""
    repo = Repo(tmp_path / "repo")
    rng = random.Random(31)
    paths: dict[str, str] = {}  # blob -> path
    for n in range(8):
        # 12 KiB that do not compress: the cut takes whole pages off the pack's end
        repo.write(f"f{n}.env", f"KEY={make_key('repeatposts', rng)}\n".encode()
                   + rng.randbytes(12 << 10))
        repo.commit()
        paths[repo.git("rev-parse", f"HEAD:f{n}.env")] = f"f{n}.env"
    lost = set(list(paths)[5:])
    pack = repack_apart(repo, lost)
    cut = pack.stat().st_size // 2
    hook = (f"import os\nfrom keyscan.sources import blobscan, packfile\n"
            f"real = packfile.PackReader.read\n"
            f"def read(self, where):\n"
            f"    if os.path.getsize({str(pack)!r}) > {cut}:\n"
            f"        os.truncate({str(pack)!r}, {cut})\n"
            f"    return real(self, where)\n"
            f"packfile.PackReader.read = read\n")
    if workers > 1:
        hook += "blobscan.PARALLEL_BYTES = 0\nblobscan._cores = lambda: 2\n"
    result = keyscan_hooked(hook, "git", "--format", "json", str(repo.path), cwd=tmp_path)
    assert "Traceback" not in result.err and result.code == 1, (result.code, result.err)
    report = json.loads(result.out)
    found = {f["path"] for f in report["findings"]}
    warned = {oid for oid in paths if oid in result.err}
    in_cut, named = {paths[oid] for oid in lost}, {paths[oid] for oid in warned}
    assert found - in_cut == {paths[oid] for oid in paths if oid not in lost}
    assert (found & in_cut) | named == in_cut and not found & named  # read as it was, or named
    assert named  # the cut cost something
    assert report["summary"]["unreadable"] == len(warned)
    for oid in warned:
        warning = next(line for line in result.err.splitlines() if oid in line)
        assert f"({paths[oid]}) could not be read" in warning
    assert len(result.err.splitlines()) == len(warned), result.err


@pytest.mark.parametrize("mode", ["staged", "pre-commit", "git"])
def test_a_big_blob_git_fails_to_read_is_a_warning_and_the_rest_is_scanned(
    tmp_path: Path, mode: str
) -> None:
    """A blob past the 16 MiB read in pieces is read by its own `git cat-file blob`; its
    object is cut short just before (as a disk error would): what git gave of it is
    scanned, it is named unreadable, and every other file is still reported."""
    repo = Repo(tmp_path / "repo")
    rng = random.Random(32)
    repo.write("small.env", f"KEY={make_key('repeatposts', rng)}\n")
    repo.write("big.bin", f"KEY={make_key('powerpost', rng)}\n".encode()
               + rng.randbytes(17 << 20))  # does not compress: its object stays big
    repo.git("add", ".")
    if mode == "git":
        repo.commit()
    big = repo.git("rev-parse", ":big.bin")
    path = repo.path / ".git" / "objects" / big[:2] / big[2:]
    hook = (f"import os\nfrom keyscan.sources import git\n"
            f"real = git.popen\n"
            f"def popen(repo, *args, **kwargs):\n"
            f"    if args[:2] == ('cat-file', 'blob'):\n"
            f"        os.chmod({str(path)!r}, 0o644)\n"
            f"        os.truncate({str(path)!r}, os.path.getsize({str(path)!r}) // 4)\n"
            f"    return real(repo, *args, **kwargs)\n"
            f"git.popen = popen\n")
    args = ["small.env", "big.bin"] if mode == "pre-commit" else []
    result = keyscan_hooked(hook, mode, "--format", "json", *args, cwd=repo.path)
    assert "Traceback" not in result.err and result.code == 1, (result.code, result.err)
    report = json.loads(result.out)
    # big.bin's key is in the quarter git could still give
    assert sorted((f["path"], f["line"]) for f in report["findings"]) == [
        ("big.bin", 1), ("small.env", 1)]
    assert report["summary"]["unreadable"] == 1
    assert result.err.startswith(f"keyscan: warning: git object {big} (big.bin) could not "
                                 "be read: ") and result.err.count("\n") == 1, result.err
