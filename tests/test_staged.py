"""`keyscan staged`: real repositories staged with real git, checked as a user sees them."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gitcli import Result, keyscan
from gitrepo import Repo
from keys import make_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng() -> random.Random:
    return random.Random(5)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "work")


def staged_json(repo: Repo, *args: str, cwd: Path | None = None) -> Result:
    return keyscan("staged", "--format", "json", *args, cwd=cwd or repo.path)


def where(result: Result) -> list[tuple[str, int, int, str]]:
    assert result.err == "" or "error" not in result.err, result.err
    return [(f["path"], f["line"], f["column"], f["vendor"]) for f in result.findings]


def test_staged_key_is_reported_with_its_place(repo: Repo, rng: random.Random) -> None:
    repo.write("app.py", "x = 1\n")
    repo.commit()
    key = make_key("posteverywhere", rng)
    repo.write("app.py", f'x = 1\n\nTOKEN = "{key}"\n')
    repo.git("add", "app.py")

    result = staged_json(repo)

    assert result.code == 1
    assert where(result) == [("app.py", 3, 10, "posteverywhere")]
    (finding,) = result.findings
    assert finding["rule_id"] == "posteverywhere-api-key"
    assert finding["commit"] is None
    assert key not in result.out


def test_nothing_staged_and_clean_change_exit_0(repo: Repo) -> None:
    repo.write("app.py", "x = 1\n")
    repo.commit()
    assert staged_json(repo).code == 0
    repo.write("app.py", "x = 2\n")
    repo.git("add", "app.py")
    result = staged_json(repo)
    assert (result.code, result.findings) == (0, [])


def test_unstaged_key_is_not_reported(repo: Repo, rng: random.Random) -> None:
    repo.write("app.py", "x = 1\n")
    repo.commit()
    repo.write("app.py", "x = 2\n")
    repo.git("add", "app.py")
    repo.write("app.py", f"x = 2\nkey = '{make_key('repeatposts', rng)}'\n")  # not staged

    assert staged_json(repo).code == 0


def test_staged_key_is_reported_although_the_work_tree_removed_it(
    repo: Repo, rng: random.Random
) -> None:
    repo.write("app.py", "x = 1\n")
    repo.commit()
    repo.write("app.py", f"key = '{make_key('powerpost', rng)}'\n")
    repo.git("add", "app.py")
    repo.write("app.py", "x = 1\n")  # fixed in the work tree only: the commit would still leak

    result = staged_json(repo)
    assert result.code == 1
    assert where(result) == [("app.py", 1, 8, "powerpost")]


def test_partial_staging_decides_what_is_checked(repo: Repo, rng: random.Random) -> None:
    lines = [f"line {n}" for n in range(1, 21)]
    repo.write("conf.txt", "\n".join(lines) + "\n")
    repo.commit()
    staged_key, unstaged_key = make_key("autoposting", rng), make_key("posteverywhere", rng)
    lines[1] = f"a = {staged_key}"
    repo.write("conf.txt", "\n".join(lines) + "\n")
    patch = repo.git("diff", "conf.txt") + "\n"
    lines[17] = f"b = {unstaged_key}"
    repo.write("conf.txt", "\n".join(lines) + "\n")
    repo.git("apply", "--cached", "-", input=patch.encode())  # stage the first hunk only

    result = staged_json(repo)
    assert where(result) == [("conf.txt", 2, 5, "autoposting")]


def test_committed_key_is_not_reported_again_but_a_new_one_is(
    repo: Repo, rng: random.Random
) -> None:
    old_key = make_key("posteverywhere", rng)
    repo.write("settings.py", f"A = '{old_key}'\nB = 1\n")
    repo.commit()
    repo.write("settings.py", f"A = '{old_key}'\nB = 2\n")
    repo.git("add", "settings.py")
    assert staged_json(repo).code == 0  # someone edited another line

    new_key = make_key("posteverywhere", rng)
    repo.write("settings.py", f"A = '{old_key}'\nB = 2\nC = '{new_key}'\n")
    repo.git("add", "settings.py")
    result = staged_json(repo)
    assert where(result) == [("settings.py", 3, 6, "posteverywhere")]
    assert result.findings[0]["secret"].endswith(new_key[-4:])


def test_rename_compares_with_the_old_path(repo: Repo, rng: random.Random) -> None:
    old_key = make_key("repeatposts", rng)
    repo.write("old name.txt", f"k={old_key}\n" + "filler line\n" * 10)
    repo.commit()
    repo.git("mv", "old name.txt", "new name.txt")
    assert staged_json(repo).code == 0

    new_key = make_key("repeatposts", rng)
    repo.write("new name.txt", f"k={old_key}\n" + "filler line\n" * 10 + f"j={new_key}\n")
    repo.git("add", "new name.txt")
    result = staged_json(repo)
    assert where(result) == [("new name.txt", 12, 3, "repeatposts")]


def test_deleting_a_file_with_a_key_is_clean(repo: Repo, rng: random.Random) -> None:
    repo.write("leak.env", f"K={make_key('powerpost', rng)}\n")
    repo.commit()
    repo.git("rm", "-q", "leak.env")
    result = staged_json(repo)
    assert (result.code, result.findings) == (0, [])


def test_binary_file_does_not_break_the_scan(repo: Repo, rng: random.Random) -> None:
    repo.write("logo.png", bytes(range(256)) * 40)
    repo.write("notes.txt", f"{make_key('autoposting', rng)}\n")
    repo.git("add", "-A")
    result = staged_json(repo)
    assert result.code == 1
    assert [f["path"] for f in result.findings] == ["notes.txt"]


def test_paths_with_spaces_and_non_ascii(repo: Repo, rng: random.Random) -> None:
    repo.write("docs/ünïcode dir/my notes.md", f"use {make_key('posteverywhere', rng)}\n")
    repo.git("add", "-A")
    result = staged_json(repo)
    assert where(result) == [("docs/ünïcode dir/my notes.md", 1, 5, "posteverywhere")]


def test_first_commit_without_head(repo: Repo, rng: random.Random) -> None:
    repo.write("a.txt", f"{make_key('powerpost', rng)}\n")
    repo.git("add", "a.txt")
    assert where(staged_json(repo)) == [("a.txt", 1, 1, "powerpost")]


def test_subfolder_and_repo_argument_give_repo_relative_paths(
    repo: Repo, rng: random.Random, tmp_path: Path
) -> None:
    repo.write("pkg/sub/mod.py", f"K = '{make_key('repeatposts', rng)}'\n")
    repo.git("add", "-A")
    expected = [("pkg/sub/mod.py", 1, 6, "repeatposts")]
    assert where(staged_json(repo, cwd=repo.path / "pkg" / "sub")) == expected
    assert where(staged_json(repo, str(repo.path), cwd=tmp_path)) == expected


def test_not_a_repository_is_exit_2_with_one_line(tmp_path: Path) -> None:
    result = keyscan("staged", cwd=tmp_path)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("keyscan: error: ")
    assert "not a git repository" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_broken_config_and_missing_repo_are_exit_2_with_one_line(
    repo: Repo, tmp_path: Path
) -> None:
    repo.write("app.py", "x = 1\n")
    repo.git("add", "-A")
    repo.write(".keyscan.yaml", "allow: [unclosed\n")
    broken = keyscan("staged", cwd=repo.path)
    missing = keyscan("staged", str(tmp_path / "no-such-dir"), cwd=tmp_path)
    for result in (broken, missing):
        assert result.code == 2
        assert result.err.startswith("keyscan: error: ")
        assert len(result.err.strip().splitlines()) == 1
        assert "Traceback" not in result.err
    assert ".keyscan.yaml" in broken.err


def test_keyscan_yaml_and_baseline_suppress(repo: Repo, rng: random.Random, tmp_path: Path) -> None:
    repo.write("fixtures/sample.txt", f"{make_key('posteverywhere', rng)}\n")
    repo.write("app.py", f"K = '{make_key('autoposting', rng)}'\n")
    repo.git("add", "-A")
    first = staged_json(repo)
    assert len(first.findings) == 2

    repo.write(".keyscan.yaml", "allow:\n  paths: ['fixtures/**']\n")  # work tree copy is read
    assert where(staged_json(repo)) == [("app.py", 1, 6, "autoposting")]

    baseline = tmp_path / "baseline.json"
    baseline.write_text(first.out, encoding="utf-8")
    result = staged_json(repo, "--baseline", str(baseline))
    assert (result.code, result.findings) == (0, [])


def test_merge_reports_only_what_the_merge_itself_adds(repo: Repo, rng: random.Random) -> None:
    repo.write("a.txt", "base\n")
    repo.commit()
    repo.git("checkout", "-q", "-b", "other")
    theirs = make_key("powerpost", rng)
    repo.write("a.txt", f"{theirs}\n")
    repo.write("b.txt", f"{make_key('powerpost', rng)}\n")
    repo.commit()
    repo.git("checkout", "-q", "main")
    repo.write("a.txt", "ours\n")
    repo.commit()
    conflict = subprocess.run(
        ["git", "merge", "-q", "other"], cwd=repo.path, env=repo.env(), capture_output=True
    )
    assert conflict.returncode != 0

    during = staged_json(repo)  # a.txt unmerged: said so, not scanned; b.txt is the branch's own
    assert (during.code, during.findings) == (0, [])
    assert "a.txt: unmerged" in during.err

    mine = make_key("powerpost", rng)
    repo.write("a.txt", f"{theirs}\n{mine}\n")  # the resolution adds a key of its own
    repo.git("add", "a.txt")
    after = staged_json(repo)
    assert where(after) == [("a.txt", 2, 1, "powerpost")]
    assert after.findings[0]["secret"].endswith(mine[-4:])


def test_hook_text_tells_what_to_do(repo: Repo, rng: random.Random) -> None:
    key = make_key("posteverywhere", rng)
    repo.write("src/app.py", f"x = 1\nAPI = '{key}'\n")
    repo.git("add", "-A")

    result = keyscan("staged", cwd=repo.path)

    assert result.code == 1
    text = result.out + result.err
    assert key not in text
    assert "src/app.py:2" in text
    assert "PostEverywhere" in text
    assert f"{key[:8]}…{key[-4:]}" in text
    assert "git restore --staged" in text
    assert "Settings > Developer" in text  # where to revoke it
    assert "keyscan:allow" in text
    assert ".keyscan.yaml" in text


def test_plain_git_hook_blocks_commit_all_and_commit_path(repo: Repo, rng: random.Random) -> None:
    """As a plain .git/hooks/pre-commit: `git commit -a` stages through a temporary index."""
    repo.write("app.py", "x = 1\n")
    repo.commit()
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m keyscan staged\n", encoding="utf-8")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    env = repo.env(PYTHONPATH=str(ROOT / "src"))
    repo.write("app.py", f"x = '{make_key('autoposting', rng)}'\n")

    blocked = subprocess.run(
        ["git", "commit", "-q", "-a", "-m", "leak"], cwd=repo.path, env=env, capture_output=True
    )
    assert blocked.returncode != 0
    assert b"app.py:1" in blocked.stdout + blocked.stderr
    only = subprocess.run(  # `git commit PATH` commits through yet another temporary index
        ["git", "commit", "-q", "-m", "leak", "app.py"], cwd=repo.path, env=env, capture_output=True
    )
    assert only.returncode != 0
    assert repo.git("rev-list", "--count", "HEAD") == "1"

    repo.write("app.py", "x = 2\n")
    clean = subprocess.run(
        ["git", "commit", "-q", "-a", "-m", "fine"], cwd=repo.path, env=env, capture_output=True
    )
    assert clean.returncode == 0, clean.stderr
    assert (clean.stdout, clean.stderr) == (b"", b"")  # a clean commit says nothing


def test_clean_staged_run_is_silent_and_verbose_shows_the_summary(repo: Repo) -> None:
    repo.write("app.py", "x = 1\n")
    repo.git("add", "-A")
    quiet = keyscan("staged", cwd=repo.path)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    for flag in ("-v", "--verbose"):
        loud = keyscan("staged", flag, cwd=repo.path)
        assert (loud.code, loud.err) == (0, "")
        assert loud.out == "keyscan: no keys found in 1 file (6 bytes scanned).\n"
    # other formats are for programs: always written
    assert keyscan("staged", "--format", "json", cwd=repo.path).report["findings"] == []


def test_baseline_named_in_keyscan_yaml_is_used_by_the_hook(
    repo: Repo, rng: random.Random
) -> None:
    repo.write("app.py", f"K = '{make_key('repeatposts', rng)}'\n")
    repo.git("add", "-A")
    accepted = staged_json(repo)
    assert len(accepted.findings) == 1
    # the advice of a blocked commit, followed from where the user is
    repo.write(".keyscan-baseline.json", accepted.out)
    repo.write(".keyscan.yaml", "baseline: .keyscan-baseline.json\n")
    hook = keyscan("staged", cwd=repo.path)  # the plain hook's argv: no options
    assert (hook.code, hook.out, hook.err) == (0, "", "")
    assert keyscan("staged", "-v", cwd=repo.path).out.endswith("1 suppressed (1 baseline).\n")

    repo.write("other.py", f"K = '{make_key('repeatposts', rng)}'\n")  # a new key is not in it
    repo.git("add", "-A")
    assert where(staged_json(repo)) == [("other.py", 1, 6, "repeatposts")]

    for value, problem in (("/etc/baseline.json", "relative path"), ("../b.json", "relative path"),
                           ("missing.json", "missing.json")):
        repo.write(".keyscan.yaml", f"baseline: {value}\n")
        broken = keyscan("staged", cwd=repo.path)
        assert broken.code == 2 and broken.err.count("\n") == 1, broken.err
        assert problem in broken.err


# What a hook run may not pay for: the network stack, verifiers, other commands' sources,
# reporters it does not use, PyYAML (rules come from the parsed-rules cache), hashlib
# (~3 ms with OpenSSL; the cache key is a CRC), json (~1.5 ms; the copy is marshal),
# subprocess (~5 ms with selectors & co: git starts through sources/spawn.py) and signal's
# enums, the encoded-key gates (only where a run is long enough for a key), the
# archives' inflaters (only once an archive is met) -- through either entry.
HEAVY = (
    "httpx",
    "keyscan.verify",
    "keyscan.sources.history",
    "keyscan.report.sarif",
    "keyscan.report.json_report",
    "keyscan.report.github",
    "importlib.metadata",
    "yaml",
    "hashlib",
    "_hashlib",
    "json",
    "subprocess",
    "selectors",
    "signal",
    "keyscan.gates",
    "keyscan.escapes",
    "base64",
    "isal",
    "zipfile",
    "keyscan.sources.inflate",
    "keyscan.sources.forked",
    "pickle",
)
# ... nor, through the click-free entry the hook runs, click itself (~20 ms) or typing
# (~3 ms; annotations do not need it at run time; click imports typing itself), nor what
# click brings along (threading: the blob reader sends a hook's few ids without a thread;
# math: only a match's entropy needs it).
HEAVY_WITHOUT_CLICK = ("click", "typing", "dataclasses",  # dataclasses: ~9 ms, inspect & co
                       "threading", "contextlib", "locale", "math")
PROBE = """
import sys
from {entry} import main
try:
    main({argv!r})
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""
# the plain git hook, and the pre-commit framework's hook on a commit (file names passed)
HOOK_ARGVS = (["staged"], ["pre-commit", "app.py"])


@pytest.mark.parametrize("argv", HOOK_ARGVS, ids=[argv[0] for argv in HOOK_ARGVS])
@pytest.mark.parametrize(
    ("entry", "module"),
    [("keyscan.launch", m) for m in HEAVY + HEAVY_WITHOUT_CLICK]
    + [("keyscan.cli", m) for m in HEAVY],
)
def test_hook_path_imports_stay_lean(
    repo: Repo, tmp_path: Path, entry: str, module: str, argv: list[str]
) -> None:
    repo.write("app.py", "x = 1\n")
    repo.git("add", "-A")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "KEYSCAN_CACHE_DIR": str(tmp_path)}
    for _ in range(2):  # the first run fills the parsed-rules cache
        done = subprocess.run(
            [sys.executable, "-c", PROBE.format(entry=entry, argv=argv)],
            cwd=repo.path, env=env, capture_output=True, text=True,
        )
    loaded = set(done.stderr.split())
    assert "keyscan.sources.staged" in loaded  # the probe did run the command
    assert not {name for name in loaded if name == module or name.startswith(module + ".")}
