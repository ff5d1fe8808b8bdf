"""A config, a pattern or a baseline from a scanned repository cannot hang or exhaust keyscan.

Each run gets 1 GiB of address space and a wall-clock guard: a blow-up or a hang shows
as a failure, not as a stuck suite. Each refusal is exit 2 with one line.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from gitcli import ROOT, Result
from keys import make_key

GUARD = 60  # seconds: far past what any of these runs needs once fixed


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run(*args: str, cwd: Path) -> Result:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "keyscan", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=GUARD, preexec_fn=limited, stdin=subprocess.DEVNULL,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def refused(result: Result, *words: str) -> None:
    assert result.code == 2, result
    assert "Traceback" not in result.err, result.err
    assert result.err.startswith("keyscan: error: ") and result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err, result.err


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / "app.py").write_text("x = 1\n")
    return folder


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]\n" for n in range(8)
)


def test_billion_laughs_is_refused(tree: Path) -> None:
    (tree / ".keyscan.yaml").write_text(LAUGHS + "disable: *i\n")
    assert len(LAUGHS) < 600
    refused(run("scan", ".", cwd=tree), "aliases")


def test_deep_yaml_nesting_is_refused(tree: Path) -> None:
    # 200 levels: under libyaml's own limit (1000), over keyscan's (64)
    (tree / ".keyscan.yaml").write_text("disable: " + "[" * 200 + "]" * 200 + "\n")
    refused(run("scan", ".", cwd=tree), "nested")


def test_a_fifo_config_is_refused_not_waited_on(tree: Path) -> None:
    os.mkfifo(tree / ".keyscan.yaml")
    refused(run("scan", ".", cwd=tree), "not a regular file")


def test_a_device_config_is_refused(tree: Path) -> None:
    refused(run("scan", "--config", "/dev/zero", ".", cwd=tree), "not a regular file")


def test_a_huge_config_is_refused(tree: Path) -> None:
    with (tree / "big.yaml").open("wb") as out:
        out.truncate(2 << 20)  # sparse: 2 MiB of zeros
    refused(run("scan", "--config", "big.yaml", ".", cwd=tree), "over 1 MiB")


def test_a_config_symlinked_out_of_the_repository_is_refused_unread(
    tree: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "private.yaml"
    outside.write_text("disable: [sixteencharsecret-and-more]\n")
    (tree / ".keyscan.yaml").symlink_to(outside)
    result = run("scan", ".", cwd=tree)
    refused(result, "outside")
    assert "sixteen" not in result.err
    (tree / ".keyscan.yaml").unlink()
    (tree / ".keyscan.yaml").symlink_to("/dev/zero")
    refused(run("scan", ".", cwd=tree), "outside")


def rule_config(pattern: str) -> str:
    return ("rules:\n  - id: mine\n    vendor: me\n    severity: high\n"
            f"    pattern: '{pattern}'\n    keywords: [aaa]\n")


@pytest.mark.parametrize(
    ("pattern", "word"),
    [
        ("(a{4294967296})", "repetition"),
        ("x(a{100}){100}", "repetition"),
        ("(" * 1200 + "a" + ")" * 1200, "nested"),
        (r"(a)\1", "RE2"),
        ("(?=a)(a)", "RE2"),
        ("(a" * 3000, "longer than"),
    ],
)
def test_a_pattern_that_cannot_compile_is_one_line(tree: Path, pattern: str, word: str) -> None:
    (tree / ".keyscan.yaml").write_text(rule_config(pattern.replace("'", "''")))
    refused(run("scan", ".", cwd=tree), ".keyscan.yaml: rule 1 (mine)", word)


def test_a_pathological_rule_pattern_cannot_hang_a_scan(tree: Path) -> None:
    (tree / ".keyscan.yaml").write_text(rule_config("((?:a+)+)$"))
    (tree / "data.txt").write_text(("a" * 35 + "b\n") * 50)
    result = run("scan", ".", cwd=tree)
    assert result.code == 0, result


def test_a_pathological_allow_regex_cannot_hang_a_scan(tree: Path) -> None:
    key = make_key("posteverywhere", random.Random(9))
    (tree / "app.py").write_text(f"K = '{key}'\n")
    (tree / ".keyscan.yaml").write_text("allow:\n  regexes: ['^(\\w|\\w\\w|\\w\\w\\w)*!$']\n")
    result = run("scan", ".", cwd=tree)
    assert result.code == 1, result  # not allowed, and found
    assert key not in result.out


def test_rules_check_compiles_a_users_file_the_same_way(tree: Path) -> None:
    (tree / "mine.yaml").write_text(rule_config("(a{4294967296})"))
    refused(run("rules", "check", "mine.yaml", cwd=tree), "repetition")


def test_a_deeply_nested_baseline_is_one_line(tree: Path) -> None:
    (tree / "baseline.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(run("scan", "--baseline", "baseline.json", ".", cwd=tree), "nested too deeply")


def test_a_fifo_baseline_is_refused_not_waited_on(tree: Path) -> None:
    os.mkfifo(tree / "baseline.json")
    refused(run("scan", "--baseline", "baseline.json", ".", cwd=tree), "not a regular file")


def test_a_huge_baseline_is_refused(tree: Path) -> None:
    with (tree / "baseline.json").open("wb") as out:
        out.truncate(65 << 20)
    refused(run("scan", "--baseline", "baseline.json", ".", cwd=tree), "over 64 MiB")


@pytest.mark.parametrize(
    "document",
    ['{"findings": [{"fingerprint": 7}]}', '{"findings": {}}', "[]",
     '{"findings": [{"fingerprint": "' + "f" * 5000 + '"}]}'],
)
def test_a_baseline_of_the_wrong_shape_is_one_line(tree: Path, document: str) -> None:
    (tree / "baseline.json").write_text(document)
    refused(run("scan", "--baseline", "baseline.json", ".", cwd=tree), "baseline")
