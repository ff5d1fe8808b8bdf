"""A second audit of unchanged repositories costs no git process for a local one and only
the fetch for a mirrored one (the refs are read from git's files, sources/reffiles.py);
a change of any kind those files hold is still noticed and rescanned."""

from __future__ import annotations

import random
from pathlib import Path

from gitcli import Result, keyscan
from gitrepo import Repo
from keys import make_key
from test_audit import project
from test_audit_hosts import shim  # noqa: F401  (a fixture: PATH with a git that logs)


def audit(work: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = keyscan("audit", "--format", "json", "--cache", str(work / "mirrors"), *args,
                     cwd=work, env=env)
    assert result.code in (0, 1), result.err
    return result


def found(result: Result) -> set[tuple[str, str, bool]]:
    return {(f["repository"], f["path"], f["new"]) for f in result.findings}


def test_unchanged_repositories_cost_no_git_and_changes_are_rescanned(
    tmp_path: Path, shim: tuple[dict[str, str], Path]  # noqa: F811
) -> None:
    rng = random.Random(1620)
    work = tmp_path / "work"
    work.mkdir()
    one, _ = project(work / "one", rng)
    one.git("tag", "-a", "-m", "release", "v1")
    one.git("pack-refs", "--all")  # packed, the annotated tag peeled
    origin, _ = project(tmp_path / "origin", rng)
    bare = tmp_path / "origin.git"
    origin.git("clone", "-q", "--bare", str(origin.path), str(bare))
    two = Repo(work / "two", bare=True)
    origin.git("push", "-q", str(two.path), "main")
    names = ["one", "two", bare.as_uri()]
    first = audit(work, *names)
    path_env, argv_log = shim

    second = audit(work, *names, env=path_env)

    assert found(second) == {(r, p, False) for r, p, _ in found(first)}
    assert second.report["summary"]["files"] == 0
    calls = argv_log.read_text().splitlines()
    assert [call for call in calls if " fetch " in call] and all(
        " fetch " in call or " config " in call for call in calls), calls  # the mirror's fetch

    # Changes that only the ref files show: a stash entry, a packed tag moved, a branch
    # pushed to a bare repository, a branch on the mirrored remote.
    one.write("conf/stashed.py", f"S = '{make_key('posteverywhere', rng)}'\n")
    one.git("stash", "push", "-q", "-u")
    one.git("tag", "-f", "-a", "-m", "moved", "v1", "HEAD~1")
    origin.write("conf/pushed.py", f"P = '{make_key('posteverywhere', rng)}'\n")
    origin.commit("pushed")
    origin.git("push", "-q", str(two.path), "main:refs/heads/late")
    origin.git("push", "-q", str(bare), "main:refs/heads/late")
    argv_log.write_text("")

    third = audit(work, *names, env=path_env)

    new = {(r, p) for r, p, is_new in found(third) if is_new}
    assert new == {("one", "conf/stashed.py"), ("two", "conf/pushed.py"),
                   (bare.as_uri(), "conf/pushed.py")}
    refs = {(f["repository"], f["path"]): f["refs"] for f in third.findings}
    assert refs["one", "conf/stashed.py"] == ["refs/stash"]
    assert any(" for-each-ref " in call for call in argv_log.read_text().splitlines())
