"""One repository's task (`scan_repository`) as a worker process runs them, one after
another, and the order the client hands them out in. Real git repositories."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gitrepo import Repo
from keys import make_key
from keyscan.audit.client import _released, engine_digest, largest_first
from keyscan.audit.task import RepoResult, RepoTask, scan_repository
from keyscan.inventory.ledger import BlobLedger
from keyscan.rules import load_builtin
from test_audit import project

RULES = tuple(load_builtin().rules)
ENGINE = engine_digest(RULES)


def task(path: Path, inventory: Path, name: str | None = None) -> RepoTask:
    return RepoTask(name=name or path.name, source=str(path), cache=str(path.parent / "cache"),
                    rules=RULES, engine_digest=ENGINE, digest="filters", last_tips=None,
                    last_digest=None, ledger=BlobLedger(str(inventory), ENGINE))


def found(result: RepoResult) -> list[tuple[str, str, str | None, int, tuple[str, ...]]]:
    assert result.error is None, result.error
    return sorted((f.path, f.secret_sha256, f.commit.sha if f.commit else None, f.line,
                   tuple(f.refs)) for f in result.findings)


def fork_of(origin: Repo, path: Path, rng: random.Random) -> Repo:
    fork = Repo(path)
    fork.git("pull", "-q", str(origin.path), "main")
    fork.write("conf/fork.py", f"F = '{make_key('posteverywhere', rng)}'\n")
    fork.commit("fork's own key")
    return fork


def test_a_fork_scanned_next_by_the_same_worker_scans_only_its_own_blobs(
    tmp_path: Path
) -> None:
    # The client has not written the origin's result yet (no inventory file at all), as
    # when the fork was queued behind its origin on one worker: the worker remembers.
    rng = random.Random(1717)
    origin, _ = project(tmp_path / "origin", rng, keys=2)
    fork = fork_of(origin, tmp_path / "fork", rng)
    inventory = tmp_path / "inventory.sqlite"

    first = scan_repository(task(origin.path, inventory))
    second = scan_repository(task(fork.path, inventory))
    elsewhere = scan_repository(task(fork.path, tmp_path / "another.sqlite"))

    assert found(second) == found(elsewhere)  # the inherited keys too, where they came from
    assert len(found(second)) == 3
    assert len(second.scanned) == 1  # the fork's own blob; the origin's are written by its result
    assert set(elsewhere.scanned) == set(first.scanned) | set(second.scanned)
    assert second.files == 1 and elsewhere.files == len(elsewhere.scanned)
    assert not inventory.exists()  # a worker never writes the inventory


@pytest.mark.parametrize("sizes", [(1, 40, 3), (40, 1, 3)])
def test_the_largest_repositories_go_out_first(tmp_path: Path, sizes: tuple[int, ...]) -> None:
    rng = random.Random(sum(sizes))
    tasks = []
    for index, files in enumerate(sizes):
        repo = Repo(tmp_path / f"r{index}")
        for n in range(files):
            repo.write(f"f{n}.txt", "".join(rng.choice("abcdef\n") for _ in range(4000)))
        repo.commit("files")
        repo.git("gc", "-q")  # into a pack, as a repository that was cloned or fetched
        tasks.append(task(repo.path, tmp_path / "inventory.sqlite"))
    remote = RepoTask(**{**tasks[0].__dict__, "name": "https://h.invalid/x.git",
                         "source": "https://h.invalid/x.git"})  # its size unknown here

    ordered, forks = largest_first([remote, *tasks])

    by_size = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    assert [t.name for t in ordered] == [*[f"r{i}" for i in by_size], remote.name]
    assert forks == {}  # unrelated repositories


def packed_project(path: Path, rng: random.Random, files: int) -> Repo:
    repo = Repo(path)
    for n in range(files):
        repo.write(f"src/f{n}.txt", "".join(rng.choice("abcdef\n") for _ in range(400)))
    repo.commit("files")
    repo.git("gc", "-q")
    return repo


def test_a_fork_waits_for_the_repository_it_shares_objects_with_then_goes_next(
    tmp_path: Path
) -> None:
    # Two workers given an origin and its fork at once would each scan every blob the
    # two share. The larger of the two (the fork: the origin's objects and its own) goes
    # out first; the other waits until that one's result is written, then goes next.
    rng = random.Random(1718)
    origin = packed_project(tmp_path / "origin", rng, files=60)
    fork = fork_of(origin, tmp_path / "fork", rng)
    fork.git("gc", "-q")
    others = [packed_project(tmp_path / f"other{n}", rng, files=50 - n) for n in range(3)]
    inventory = tmp_path / "inventory.sqlite"
    tasks = [task(repo.path, inventory) for repo in (*others, origin, fork)]

    ordered, forks = largest_first(tasks)

    assert forks == {"origin": "fork"}  # the unrelated ones share with nobody
    assert [t.name for t in ordered][:2] == ["fork", "origin"]  # largest first, as before
    done: set[str] = set()
    handed = _released(ordered, forks, done)
    assert [next(handed).name, next(handed).name] == ["fork", "other0"]  # origin held
    done.add("fork")  # its result written
    assert [t.name for t in handed] == ["origin", "other1", "other2"]


def test_a_held_repository_goes_out_when_nothing_else_is_left(tmp_path: Path) -> None:
    rng = random.Random(1719)
    origin = packed_project(tmp_path / "origin", rng, files=60)
    fork = fork_of(origin, tmp_path / "fork", rng)
    fork.git("gc", "-q")
    ordered, forks = largest_first([task(r.path, tmp_path / "i.sqlite") for r in (origin, fork)])

    assert forks == {"origin": "fork"}
    assert [t.name for t in _released(ordered, forks, set())] == ["fork", "origin"]
