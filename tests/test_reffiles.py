"""sources/reffiles.py against its plain twin, `refs.ref_tips` (git itself): whenever the
ref files are said to be unchanged, git gives exactly the recorded tips; every kind of
change is noticed; what the files cannot vouch for is left to git, never guessed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gitrepo import Repo
from keyscan.sources import git
from keyscan.sources.reffiles import plain_git_dir, unchanged
from keyscan.sources.refs import ref_tips


def tips_of(path: Path) -> dict[str, str]:
    return ref_tips(git.open_repo(str(path)))


def rich(path: Path) -> Repo:
    """Branches, a lightweight and an annotated tag, notes, a symbolic ref, three stash
    entries (the reflog's older ones are tips too)."""
    repo = Repo(path)
    repo.write("a.txt", "one\n")
    first = repo.commit("one")
    repo.git("branch", "feature")
    repo.git("tag", "light")
    repo.git("tag", "-a", "-m", "release", "v1")
    repo.git("notes", "add", "-m", "a note", first)
    repo.git("symbolic-ref", "refs/heads/alias", "refs/heads/feature")
    for step in range(3):
        repo.write("a.txt", f"wip {step}\n")
        repo.git("stash", "push", "-q", "-m", f"wip {step}")
    repo.write("b.txt", "two\n")
    repo.commit("two")
    return repo


def agrees(path: Path) -> bool:
    """reffiles' answer for the repository's current tips (git's); asserts the one-sided
    promise for it: True only if git says the same."""
    git_dir = plain_git_dir(path)
    assert git_dir is not None
    return unchanged(git_dir, tips_of(path))


def test_packed_refs_loose_refs_stash_and_symbolic_refs_read_as_git_reads_them(
    tmp_path: Path,
) -> None:
    repo = rich(tmp_path / "work")
    repo.git("pack-refs", "--all")  # the annotated tag peeled in packed-refs
    tips = tips_of(repo.path)

    assert {"refs/stash@{1}", "refs/stash@{2}", "refs/heads/alias", "refs/tags/v1",
            "refs/notes/commits"} <= set(tips)
    assert agrees(repo.path)
    repo.write("c.txt", "three\n")
    repo.commit("three")  # a loose ref over the packed one
    assert agrees(repo.path)
    repo.git("checkout", "-q", "--detach", "HEAD~1")
    assert "HEAD" in tips_of(repo.path) and agrees(repo.path)


def test_a_mirror_clone_reads_without_git(tmp_path: Path) -> None:
    repo = rich(tmp_path / "work")
    mirror = tmp_path / "mirror.git"
    repo.git("clone", "-q", "--mirror", str(repo.path), str(mirror))

    assert plain_git_dir(mirror) == mirror
    assert agrees(mirror)


CHANGES: dict[str, Callable[[Repo], object]] = {
    "a commit on a branch": lambda r: (r.write("n.txt", "new\n"), r.commit("new")),
    "a new branch": lambda r: r.git("branch", "late", "HEAD~1"),
    "a packed branch deleted": lambda r: r.git("branch", "-D", "feature"),
    "a packed tag moved": lambda r: r.git("tag", "-f", "light", "HEAD"),
    "a stash entry pushed": lambda r: (r.write("a.txt", "more\n"), r.git("stash", "-q")),
    "an older stash entry dropped": lambda r: r.git("stash", "drop", "-q", "stash@{1}"),
    "HEAD detached": lambda r: r.git("checkout", "-q", "--detach", "HEAD~1"),
    "a symbolic ref retargeted": lambda r: r.git("symbolic-ref", "refs/heads/alias",
                                                 "refs/heads/main"),
    "a loose ref packed away and moved": lambda r: (r.git("pack-refs", "--all"),
                                                    r.git("update-ref", "refs/heads/main",
                                                          "HEAD~1")),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_is_noticed(tmp_path: Path, change: str) -> None:
    repo = rich(tmp_path / "work")
    repo.git("pack-refs", "--all")
    before = tips_of(repo.path)
    git_dir = plain_git_dir(repo.path)
    assert git_dir is not None and unchanged(git_dir, before)

    CHANGES[change](repo)

    assert tips_of(repo.path) != before, "the change must change git's tips"
    assert not unchanged(git_dir, before)


def test_what_the_files_cannot_vouch_for_is_left_to_git(tmp_path: Path) -> None:
    repo = rich(tmp_path / "work")
    git_dir = plain_git_dir(repo.path)
    assert git_dir is not None
    # A loose annotated tag: its commit is in the tag object, which only git reads.
    assert not unchanged(git_dir, tips_of(repo.path))
    repo.git("pack-refs", "--all")
    assert unchanged(git_dir, tips_of(repo.path))

    tree = repo.git("rev-parse", "HEAD^{tree}")
    repo.git("tag", "a-tree", tree)  # not a commit: git leaves it out of the tips
    assert "refs/tags/a-tree" not in tips_of(repo.path)
    assert not unchanged(git_dir, tips_of(repo.path))
    repo.git("tag", "-d", "a-tree")

    stale = git_dir / "refs" / "heads" / "wip.lock"  # a crashed git's leftover
    stale.write_text(repo.git("rev-parse", "HEAD") + "\n")
    assert not unchanged(git_dir, tips_of(repo.path))
    stale.unlink()

    fifo = git_dir / "refs" / "heads" / "pipe"
    os.mkfifo(fifo)  # never opened for reading: it would block
    assert not unchanged(git_dir, {})
    fifo.unlink()
    (git_dir / "refs" / "heads" / "link").symlink_to(git_dir / "refs" / "heads" / "main")
    assert not unchanged(git_dir, {})


def test_only_a_plain_repository_is_found_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = rich(tmp_path / "work")
    linked = tmp_path / "linked"
    repo.git("worktree", "add", "-q", str(linked), "feature")
    (repo.path / "sub").mkdir()

    assert plain_git_dir(repo.path) == repo.path / ".git"
    assert plain_git_dir(linked) is None  # a .git file: git finds the main repository
    assert plain_git_dir(repo.path / "sub") is None  # git would look upwards
    assert plain_git_dir(tmp_path / "absent") is None
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    assert plain_git_dir(repo.path) is None
    monkeypatch.delenv("GIT_DIR")
    (repo.path / ".git" / "reftable").mkdir()
    assert plain_git_dir(repo.path) is None
    (repo.path / ".git" / "reftable").rmdir()
    if os.geteuid() == 0:  # another owner: git's safe.directory check decides
        os.chown(repo.path / ".git", 65534, 65534)
        assert plain_git_dir(repo.path) is None
