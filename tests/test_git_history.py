"""`keyscan git`: the whole history of real repositories, as a user runs it."""

from __future__ import annotations

import random
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gitcli import Result, keyscan, scan_json
from gitrepo import Repo
from keys import make_key


@pytest.fixture
def rng() -> random.Random:
    return random.Random(4)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "work")


def iso(tick: int) -> str:
    return datetime.fromtimestamp(tick, timezone.utc).isoformat()


def commit(repo: Repo, message: str = "change", author: str | None = None) -> tuple[str, str]:
    """Commit and return (id, author date as keyscan must report it)."""
    sha = repo.commit(message, author=author)
    return sha, iso(repo.tick)


def only(result: Result) -> dict[str, object]:
    assert len(result.findings) == 1, result.findings
    return result.findings[0]


def test_reports_the_commit_that_added_the_key_with_author_date_line_and_column(
    repo: Repo, rng: random.Random
) -> None:
    key = make_key("posteverywhere", rng)
    repo.write("app/settings.py", "DEBUG = True\n")
    repo.commit("start")
    repo.write("app/settings.py", f"DEBUG = True\nTOKEN = '{key}'\n")
    sha, date = commit(repo, "add token", author="Bob")
    repo.write("app/settings.py", f"# moved down\nDEBUG = True\nTOKEN = '{key}'\n")
    repo.commit("edit another line")

    result = scan_json(repo.path)

    assert result.code == 1
    finding = only(result)
    assert (finding["commit"], finding["path"], finding["line"], finding["column"]) == (
        sha, "app/settings.py", 2, 10)
    assert (finding["author_name"], finding["author_email"], finding["date"]) == (
        "Bob", "bob@example.com", date)
    assert finding["rule_id"] == "posteverywhere-api-key"
    assert key not in result.out  # redacted by default
    assert result.report["summary"]["commits"] == 3


def test_clean_history_exits_zero(repo: Repo) -> None:
    repo.write("README", "nothing to see\n")
    repo.commit()
    result = scan_json(repo.path)
    assert (result.code, result.findings) == (0, [])


def test_key_in_a_file_deleted_later_is_found(repo: Repo, rng: random.Random) -> None:
    repo.write("old.env", f"POWERPOST={make_key('powerpost', rng)}\n")
    sha = repo.commit("oops")
    repo.git("rm", "-q", "old.env")
    repo.commit("remove it")
    assert scan_json(repo.path).where() == [(sha, "old.env", 1, 11)]


def test_key_only_on_an_unmerged_branch_is_found(repo: Repo, rng: random.Random) -> None:
    repo.write("a.txt", "a\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("b.txt", f"x {make_key('repeatposts', rng)}\n")
    sha = repo.commit()
    repo.git("checkout", "-q", "main")
    assert scan_json(repo.path).where() == [(sha, "b.txt", 1, 3)]


@pytest.mark.parametrize("annotated", [False, True])
def test_key_only_behind_a_tag_is_found(repo: Repo, rng: random.Random, annotated: bool) -> None:
    repo.write("a.txt", "a\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "release")
    repo.write("cfg.yaml", f"key: {make_key('autoposting', rng)}\n")
    sha = repo.commit()
    repo.git("tag", *(["-a", "-m", "v1"] if annotated else []), "v1")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "release")
    assert scan_json(repo.path).where() == [(sha, "cfg.yaml", 1, 6)]


def test_keys_only_in_the_stash_are_found_in_every_entry(repo: Repo, rng: random.Random) -> None:
    repo.write("tracked.txt", "base\n")
    repo.commit()
    repo.write("tracked.txt", f"base\n{make_key('posteverywhere', rng)}\n")  # work tree only
    repo.git("stash", "-q")
    older = repo.git("rev-parse", "refs/stash")
    repo.write("tracked.txt", f"base\nstaged {make_key('powerpost', rng)}\n")
    repo.git("add", "tracked.txt")
    repo.write("untracked.txt", f"u {make_key('repeatposts', rng)}\n")
    repo.git("stash", "-q", "-u")
    newer = repo.git("rev-parse", "refs/stash")
    index_commit = repo.git("rev-parse", f"{newer}^2")
    untracked_commit = repo.git("rev-parse", f"{newer}^3")

    assert scan_json(repo.path).where() == sorted([
        (older, "tracked.txt", 2, 1),  # stash@{1}: only in the stash reflog
        (index_commit, "tracked.txt", 2, 8),  # staged when stashed: the index commit
        (untracked_commit, "untracked.txt", 1, 3),
    ])


def test_odd_paths_are_reported_as_git_names_them(repo: Repo, rng: random.Random) -> None:
    names = ["with space/a b.txt", "naïve/ünïcode.txt", "new\nline.txt"]
    for name in names:
        repo.write(name, f"k={make_key('posteverywhere', rng)}\n")
    sha = repo.commit()
    assert scan_json(repo.path).where() == sorted((sha, name, 1, 3) for name in names)


def test_large_and_binary_files(repo: Repo, rng: random.Random) -> None:
    filler = ("lorem ipsum dolor sit amet " * 40 + "\n") * 5000  # ~5.4 MB
    repo.write("big.txt", filler + f"at the end {make_key('repeatposts', rng)}\n")
    binary = bytes(range(256)) * 64 + b"\0" + make_key("powerpost", rng).encode() + b"\0"
    repo.write("blob.bin", binary)
    sha = repo.commit()
    found = {f["path"]: (f["commit"], f["line"]) for f in scan_json(repo.path).findings}
    assert found["big.txt"] == (sha, 5001)
    assert found["blob.bin"][0] == sha


def test_submodule_entries_are_skipped(repo: Repo, rng: random.Random) -> None:
    repo.write("a.txt", f"{make_key('posteverywhere', rng)}\n")
    first = repo.commit()
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{first},vendor/sub")
    repo.commit("add a submodule entry", add=False)
    result = scan_json(repo.path)
    assert result.where() == [(first, "a.txt", 1, 1)]


def test_from_a_subfolder_and_on_a_bare_clone(repo: Repo, rng: random.Random,
                                              tmp_path: Path) -> None:
    repo.write("deep/down/x.py", f"K = '{make_key('autoposting', rng)}'\n")
    sha = repo.commit()
    expected = [(sha, "deep/down/x.py", 1, 6)]
    assert scan_json(repo.path / "deep" / "down").where() == expected
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(tmp_path / "b.git")],
                   check=True)
    assert scan_json(tmp_path, "b.git").where() == expected
    assert scan_json(tmp_path / "b.git").where() == expected


def test_a_renamed_file_keeps_its_first_commit(repo: Repo, rng: random.Random) -> None:
    key = make_key("posteverywhere", rng)
    repo.write("conf/old_name.py", "".join(f"line {i}\n" for i in range(30)) + f"K = '{key}'\n")
    sha = repo.commit()
    repo.git("mv", "conf/old_name.py", "conf/new_name.py")
    repo.write("conf/new_name.py", "# header\n" + (repo.path / "conf/new_name.py").read_text())
    repo.commit("rename with an edit")
    assert scan_json(repo.path).where() == [(sha, "conf/old_name.py", 31, 6)]


def test_key_merged_from_a_branch_belongs_to_the_branch_commit(
    repo: Repo, rng: random.Random
) -> None:
    repo.write("a.txt", "a\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "feature")
    repo.tick += 10_000  # a clock ahead: the merge's committer date is earlier
    repo.write("f.txt", f"{make_key('repeatposts', rng)}\n")
    branch_commit = repo.commit()
    repo.tick -= 10_000
    repo.git("checkout", "-q", "main")
    repo.write("a.txt", "a2\n")
    repo.commit()
    repo.tick += 60
    repo.git("merge", "-q", "--no-ff", "--no-edit", "feature")
    assert scan_json(repo.path).where() == [(branch_commit, "f.txt", 1, 1)]


def test_key_added_while_resolving_a_conflict_belongs_to_the_merge(
    repo: Repo, rng: random.Random
) -> None:
    repo.write("c.txt", "base\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "other")
    repo.write("c.txt", "theirs\n")
    repo.commit()
    repo.git("checkout", "-q", "main")
    repo.write("c.txt", "ours\n")
    repo.commit()
    repo.tick += 60
    done = subprocess.run(["git", "merge", "-q", "other"], cwd=repo.path, env=repo.env(),
                          capture_output=True)
    assert done.returncode == 1  # the conflict
    repo.write("c.txt", f"resolved {make_key('powerpost', rng)}\n")
    merge = repo.commit("merge other")
    assert len(repo.git("rev-list", "--parents", "-1", merge).split()) == 3
    assert scan_json(repo.path).where() == [(merge, "c.txt", 1, 10)]


def test_earliest_committer_date_wins_and_ties_go_to_the_ancestor(
    repo: Repo, rng: random.Random
) -> None:
    key = make_key("posteverywhere", rng)
    repo.write("a.txt", "a\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "late")
    repo.tick += 10_000  # this branch's commit is later, though made first
    repo.write("k.txt", f"{key}\n")
    repo.commit()
    repo.git("checkout", "-q", "main")
    repo.tick -= 20_000
    stamp = repo.tick + 60
    repo.write("k.txt", f"{key}\n")
    first = repo.commit("add")
    repo.tick = stamp - 60  # the same committer date for the next two commits
    repo.write("k.txt", "gone\n")
    repo.commit("remove")
    repo.tick = stamp - 60
    repo.write("k.txt", f"{key}\n")
    repo.commit("add again")
    assert scan_json(repo.path).where() == [(first, "k.txt", 1, 1)]


def test_author_date_is_reported_not_committer_date(repo: Repo, rng: random.Random) -> None:
    repo.write("a.txt", f"{make_key('repeatposts', rng)}\n")
    env = repo.env(GIT_AUTHOR_DATE="@1600000000 +0200")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "m", env=env)
    finding = only(scan_json(repo.path))
    assert finding["date"] == "2020-09-13T14:26:40+02:00"


def test_key_in_a_git_note_is_found(repo: Repo, rng: random.Random) -> None:
    repo.write("a.txt", "a\n")
    target = repo.commit()
    repo.git("notes", "add", "-m", f"deploy with {make_key('autoposting', rng)}")
    note_commit = repo.git("rev-parse", "refs/notes/commits")
    assert scan_json(repo.path).where() == [(note_commit, target, 1, 13)]


def test_a_url_is_cloned_scanned_and_removed(repo: Repo, rng: random.Random,
                                             tmp_path: Path) -> None:
    repo.write("a.txt", f"{make_key('posteverywhere', rng)}\n")
    sha = repo.commit()
    repo.git("checkout", "-q", "-b", "side")
    repo.git("checkout", "-q", "main")
    result = scan_json(tmp_path, f"file://{repo.path}")
    assert result.where() == [(sha, "a.txt", 1, 1)]
    assert not list(Path(tempfile.gettempdir()).glob("keyscan-clone-*"))


def test_a_failed_clone_is_exit_2_with_gits_reason(tmp_path: Path) -> None:
    result = keyscan("git", f"file://{tmp_path}/missing.git", cwd=tmp_path)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert result.err.startswith("keyscan: error: could not clone file://")
    assert "does not appear to be a git repository" in result.err


def test_not_a_repository_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    result = keyscan("git", "--output", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result.code == 2
    assert result.err == (
        "keyscan: error: not a git repository: .: run inside a repository or pass its path\n"
    )
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("store", ["loose", "packed"])
def test_sharded_scan_finds_what_one_process_finds(
    repo: Repo, rng: random.Random, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    """Big histories are scanned by one worker per core: same findings, same counts,
    for blobs read through git (loose objects) and straight from a pack."""
    from keyscan.engine import Engine
    from keyscan.model import Stats
    from keyscan.rules import load_builtin
    from keyscan.sources import blobscan, git, history

    shas = []
    for n in range(12):
        key = f"k {make_key('repeatposts', rng)}\n" if n % 3 else ""
        repo.write(f"f{n}.txt", f"v{n}\n{key}")
        shas.append(repo.commit())
    if store == "packed":
        repo.git("repack", "-adq")
    target = git.open_repo(str(repo.path))
    engine = Engine(load_builtin().rules)

    def run() -> tuple[list[tuple[str, str, int]], int]:
        stats = Stats()
        found = history.scan_all(target, engine, stats, print)
        where = sorted((f.commit.sha if f.commit else "", f.path, f.line) for f in found)
        return where, stats.files

    alone = run()
    monkeypatch.setattr(blobscan, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(blobscan, "_cores", lambda: 2)
    assert run() == alone
    assert alone == (sorted((shas[n], f"f{n}.txt", 2) for n in range(12) if n % 3), 12)


def test_keyscan_yaml_at_the_top_level_applies_from_a_subfolder(
    repo: Repo, rng: random.Random
) -> None:
    repo.write("fixtures/fake.env", f"K={make_key('powerpost', rng)}\n")
    repo.write("src/real.env", f"K={make_key('powerpost', rng)}\n")
    repo.write(".keyscan.yaml", "allow:\n  paths: ['fixtures/**']\n")
    sha = repo.commit()
    assert scan_json(repo.path / "src").where() == [(sha, "src/real.env", 1, 3)]


def test_a_failed_clone_never_shows_the_urls_credentials(tmp_path: Path) -> None:
    token = "tok" + "en" + "4f3a9c"  # a stand-in for a personal access token
    # Port 9 on loopback: refused at once, and no request leaves the machine.
    result = keyscan("git", f"http://someone:{token}@127.0.0.1:9/org/repo.git", cwd=tmp_path)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert result.err.startswith("keyscan: error: could not clone http://127.0.0.1:9/org/repo.git")
    assert token not in result.err


def test_a_bad_option_fails_before_a_url_is_cloned(tmp_path: Path) -> None:
    # The clone would fail too (port 9 refuses): the baseline error shows it was never tried.
    missing = tmp_path / "missing.json"
    result = keyscan("git", "--baseline", str(missing), "http://127.0.0.1:9/r.git", cwd=tmp_path)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert str(missing) in result.err and "could not clone" not in result.err


def test_each_finding_names_the_refs_that_reach_its_commit(
    repo: Repo, rng: random.Random
) -> None:
    on_main, on_branch, stashed = (make_key("posteverywhere", rng) for _ in range(3))
    repo.write("a.py", f"A = '{on_main}'\n")
    repo.commit("on main")
    repo.git("tag", "-a", "-m", "release", "v1")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("b.py", f"B = '{on_branch}'\n")
    repo.commit("unmerged")
    repo.git("checkout", "-q", "main")
    repo.write("a.py", f"A = '{on_main}'\nC = '{stashed}'\n")
    repo.git("stash", "-q", env=repo.env())
    repo.write("d.txt", "older stash entry pushed down\n")
    repo.git("stash", "-q", "-u", env=repo.env())

    result = scan_json(repo.path)

    refs = {f["path"] + ":" + str(f["line"]): f["refs"] for f in result.findings}
    assert refs == {
        "a.py:1": ["refs/heads/feature", "refs/heads/main", "refs/stash", "refs/stash@{1}",
                   "refs/tags/v1"],
        "b.py:1": ["refs/heads/feature"],
        "a.py:2": ["refs/stash@{1}"],
    }


def test_refs_are_capped_at_twenty(repo: Repo, rng: random.Random) -> None:
    repo.write("a.py", f"A = '{make_key('posteverywhere', rng)}'\n")
    repo.commit("key")
    for index in range(25):
        repo.git("branch", f"b{index:02d}")

    (finding,) = scan_json(repo.path).findings

    assert len(finding["refs"]) == 21 and finding["refs"][-1] == "…"
    assert finding["refs"][:2] == ["refs/heads/b00", "refs/heads/b01"]


def test_refs_through_merges_are_the_same_from_the_walk_as_from_rev_list(
    repo: Repo, rng: random.Random
) -> None:
    """A whole-history scan reads which refs reach a commit from its own walk; a range
    asks `git rev-list`. Across merges (a key reaching main only through a merge, a
    branch merged and deleted, an octopus) both name the same refs."""
    from keyscan.sources import git as gitsrc
    from keyscan.sources.refs import refs_reaching

    early, merged, late = (make_key("posteverywhere", rng) for _ in range(3))
    repo.write("a.py", f"A = '{early}'\n")
    repo.commit("early")
    for name, key in (("left", merged), ("right", None), ("third", None)):
        repo.git("checkout", "-q", "-b", name, "main")
        repo.write(f"{name}.py", f"X = '{key}'\n" if key else "x = 1\n")
        repo.commit(name)
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "octopus", "left", "right", "third",
             env=repo.env())
    repo.git("branch", "-D", "right")
    repo.git("checkout", "-q", "-b", "later", "left")
    repo.write("later.py", f"L = '{late}'\n")
    repo.commit("late")
    repo.git("tag", "only-late")
    repo.git("checkout", "-q", "main")

    findings = scan_json(repo.path).findings
    from_walk = {str(f["commit"]): tuple(f["refs"]) for f in findings}
    from_rev_list = refs_reaching(gitsrc.open_repo(str(repo.path)), from_walk)

    assert len(findings) == 3
    assert from_walk == from_rev_list
    assert from_walk[repo.git("rev-parse", "only-late").strip()] == (
        "refs/heads/later", "refs/tags/only-late")
    assert "refs/heads/main" in from_walk[repo.git("rev-parse", "left").strip()]


def test_a_history_of_empty_packed_files_and_one_big_loose_one_is_scanned(
    repo: Repo, rng: random.Random
) -> None:
    # Enough bytes for worker processes, all in a loose blob: the packed ones, empty,
    # are still shared out among the workers (it once divided by their zero bytes).
    for n in range(3):
        repo.write(f"empty{n}.txt", "")
    repo.commit("empty files")
    repo.git("gc", "-q")
    key = make_key("posteverywhere", rng)
    filler = "".join(rng.choice("abcdefgh ") for _ in range(1000)) + "\n"
    repo.write("big.txt", filler * 34_000 + f"TOKEN = '{key}'\n")  # ~34 MB, loose
    sha = repo.commit("a big file")

    result = scan_json(repo.path)

    assert result.code == 1, result.err
    assert [(f["path"], f["commit"]) for f in result.findings] == [("big.txt", sha)]
