"""Through the real CLI: a run that cannot be done exits 2 with one stderr line, no traceback;
and no output of any format holds a whole key unless --show-secrets.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from keys import all_keys

FORMATS = ("text", "json", "sarif", "github")


def keyscan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # no KEYSCAN_* override of the session's, except its private cache (conftest)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KEYSCAN_") or k == "KEYSCAN_CACHE_DIR"}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_text("print('hello')\n")
    return folder


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keyscan: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert result.stdout == ""


BROKEN_CONFIGS = {
    "bad yaml": ("allow: {paths: [x\n", "invalid YAML"),
    "unknown key": ("alow: {}\n", "unknown key 'alow' at top level"),
    "bad regex": ("allow: {regexes: ['(']}\n", "bad regex in allow.regexes (entry 1)"),
    "verify override": ("verify_url: http://127.0.0.1:9/\n", "unknown key 'verify_url'"),
    "unknown rule id": ("disable: [no-such-rule]\n", "disable: unknown rule id"),
}


@pytest.mark.parametrize("case", BROKEN_CONFIGS)
def test_a_broken_config_given_with_config(project: Path, tmp_path: Path, case: str) -> None:
    text, problem = BROKEN_CONFIGS[case]
    config = tmp_path / "keyscan.yaml"
    config.write_text(text)
    out = tmp_path / "report.json"
    args = ("scan", str(project), "--config", str(config), "--output", str(out))
    result = keyscan(*args, cwd=tmp_path)
    assert_one_line_error(result, str(config), problem)
    assert not out.exists()


@pytest.mark.parametrize("case", ["bad yaml", "unknown key"])
def test_a_broken_config_found_at_the_scanned_root(project: Path, case: str) -> None:
    text, problem = BROKEN_CONFIGS[case]
    (project / ".keyscan.yaml").write_text(text)
    result = keyscan("scan", ".", cwd=project)
    assert_one_line_error(result, ".keyscan.yaml", problem)


def test_a_missing_config(project: Path) -> None:
    result = keyscan("scan", ".", "--config", "nope.yaml", cwd=project)
    assert_one_line_error(result, "nope.yaml", "not found")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "not found"), ("{oops", "is not JSON"), ('{"findings": 3}', "not a keyscan JSON")],
)
def test_a_broken_baseline(
    project: Path, tmp_path: Path, content: str | None, problem: str
) -> None:
    baseline = tmp_path / "baseline.json"
    if content is not None:
        baseline.write_text(content)
    out = tmp_path / "out.txt"
    result = keyscan("scan", ".", "--baseline", str(baseline), "--output", str(out), cwd=project)
    assert_one_line_error(result, str(baseline), problem, "keyscan scan --format json --output")
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "--frmat", "json"], "--frmat"),
        (["scan", "--format", "xml"], "xml"),
        (["scan", "no/such/path"], "no/such/path"),
        (["nonsense"], "nonsense"),
    ],
)
def test_bad_options_and_paths(project: Path, args: list[str], needle: str) -> None:
    assert_one_line_error(keyscan(*args, cwd=project), needle)


def test_output_into_a_missing_folder(project: Path) -> None:
    result = keyscan("scan", ".", "--output", "missing/report.json", cwd=project)
    assert_one_line_error(result, "missing/report.json", "does not exist")
    assert not (project / "missing").exists()


def test_output_onto_a_folder(project: Path) -> None:
    (project / "reports").mkdir()
    result = keyscan("scan", ".", "--output", "reports", cwd=project)
    assert_one_line_error(result, "--output", "reports")


@pytest.fixture
def leaky(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "leaky"
    folder.mkdir()
    keys = list(all_keys(random.Random(4242)).values())
    lines = [f"KEY_{number} = '{key}'\n" for number, key in enumerate(keys)]
    (folder / "settings.py").write_text("".join(lines))
    return folder, keys


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_whole_key_in_any_output_unless_asked(
    leaky: tuple[Path, list[str]], tmp_path: Path, fmt: str
) -> None:
    folder, keys = leaky
    to_stdout = keyscan("scan", str(folder), "--format", fmt, cwd=tmp_path)
    out = tmp_path / f"report.{fmt}"
    to_file = keyscan("scan", str(folder), "--format", fmt, "--output", str(out), cwd=tmp_path)
    assert to_stdout.returncode == to_file.returncode == 1, to_stdout.stderr
    written = out.read_text(encoding="utf-8")
    assert to_file.stdout == ""
    assert written == to_stdout.stdout
    everything = to_stdout.stdout + to_stdout.stderr + to_file.stderr + written
    for key in keys:
        assert key not in everything
        assert key[-12:] not in everything
    shown = keyscan("scan", str(folder), "--format", fmt, "--show-secrets", cwd=tmp_path)
    assert shown.returncode == 1
    for key in keys:
        assert key in shown.stdout


def test_json_report_of_a_real_scan_is_a_baseline(
    leaky: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, keys = leaky
    baseline = tmp_path / "baseline.json"
    first = keyscan("scan", ".", "--format", "json", "--output", str(baseline), cwd=folder)
    assert first.returncode == 1
    assert len(json.loads(baseline.read_text())["findings"]) == len(keys)
    again = keyscan("scan", ".", "--baseline", str(baseline), "--format", "json", cwd=folder)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)["summary"]
    assert summary["findings"] == 0
    assert summary["suppressed"] == {"baseline": len(keys)}


@pytest.mark.parametrize("command", ["scan", "git", "verify-key"])
def test_a_key_pasted_as_an_option_value_is_not_repeated(tmp_path: Path, command: str) -> None:
    secret = all_keys(random.Random(11))["pe" + "_live_"]
    done = keyscan(command, "--format", secret, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("keyscan: error: invalid value for '--format': expected one of")
    assert done.stderr.count("\n") == 1
    assert secret not in done.stderr and secret[-12:] not in done.stderr


def test_bare_keyscan_prints_the_help_on_stdout_and_exits_0(tmp_path: Path) -> None:
    done = keyscan(cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Usage: keyscan [OPTIONS] COMMAND [ARGS]...")
    assert done.stdout == keyscan("--help", cwd=tmp_path).stdout


def test_help_gives_each_command_its_whole_first_sentence(tmp_path: Path) -> None:
    help_text = keyscan("--help", cwd=tmp_path).stdout
    listed = " ".join(help_text.partition("Commands:")[2].split())  # unwrapped
    assert "..." not in listed
    for phrase in (
        "Scan git history: every commit of every ref (branches, tags, stash, notes).",
        "Scan the index against HEAD: only keys the staged change introduces.",
        "Scan the commits being pushed (git's pre-push hook input on stdin).",
    ):
        assert phrase in listed
