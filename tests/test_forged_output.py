"""Nothing a file name, an author or a config holds can forge a line of keyscan's output.

A forged line would be a fake "no keys found" under a real finding, or, in a GitHub
Actions log, a workflow command: `::stop-commands::TOKEN` (at the start of a line,
after any whitespace) switches off every annotation after it, and the runner's legacy
syntax `##[command]` is read anywhere in a line.
"""

from __future__ import annotations

import json
import random
import re
import socket
from pathlib import Path

import pytest

from gitcli import keyscan
from gitrepo import Repo
from keys import make_key
from keyscan.report.common import json_safe, printable, printable_line
from test_ci import run_ci

EVIL = (
    "x\nkeyscan: no keys found in 1 file (1 bytes scanned).\n"
    "::stop-commands::pwn\n \u3000::error::fake\n##[add-mask]y\u2028z\r\x1b[2Jw.py"
)
OUR_COMMANDS = ("::error ", "::warning ", "::notice ")


def forged(output: str) -> list[str]:
    """The lines of `output` (split as the Actions runner and a terminal split them) that
    are not keyscan's own: a workflow command, a fake summary, a raw control character."""
    def is_forged(line: str) -> bool:
        command = line.lstrip().startswith("::") and not line.startswith(OUR_COMMANDS)
        raw = any(mark in line for mark in ("##[", "\x1b", "\u2028"))
        return command or raw or line.startswith("keyscan: no keys found")

    return [line for line in re.split(r"\r\n|\r|\n", output) if is_forged(line)]


@pytest.fixture
def key() -> str:
    return make_key("posteverywhere", random.Random(11))


def evil_repo(tmp_path: Path, key: str) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.write(EVIL, f"token = '{key}'\n")
    repo.write("ok.txt", "nothing\n")
    repo.commit("add", author="##[add-mask]x ::stop-commands::y")
    return repo


@pytest.mark.parametrize("fmt", ["text", "github"])
@pytest.mark.parametrize("command", ["scan", "git"])
def test_a_newline_in_a_file_name_forges_no_line(
    tmp_path: Path, key: str, command: str, fmt: str
) -> None:
    repo = evil_repo(tmp_path, key)
    result = keyscan(command, "--format", fmt, cwd=repo.path)
    assert result.code == 1, result.err
    assert forged(result.out) == []
    assert forged(result.err) == []
    shown = "x%0Akeyscan%3A no keys" if fmt == "github" else "x\\nkeyscan: no keys found"
    assert shown in result.out  # the name, escaped
    assert key not in result.out


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_json_formats_stay_exact_and_hold_no_command(tmp_path: Path, key: str, fmt: str) -> None:
    repo = evil_repo(tmp_path, key)
    result = keyscan("git", "--format", fmt, cwd=repo.path)
    assert result.code == 1, result.err
    assert forged(result.out) == []
    document = json.loads(result.out)
    if fmt == "json":
        finding = document["findings"][0]
        assert finding["path"] == EVIL  # the same string, escaped only as JSON text
        assert finding["author_name"].startswith("##[add-mask]")
    else:
        location = document["runs"][0]["results"][0]["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uri"]


def test_keyscan_ci_log_annotations_and_step_summary(tmp_path: Path, key: str) -> None:
    repo = evil_repo(tmp_path, key)
    result = run_ci(tmp_path, repo.path, event="workflow_dispatch")
    assert result.code == 1, result.err
    assert forged(result.out) == []
    assert forged(result.err) == []
    assert result.summary
    assert forged(result.summary) == []
    assert "\n" not in result.summary.split("| Vendor |")[1].split("\n", 3)[2]  # one row


def test_warnings_and_errors_are_escaped(tmp_path: Path) -> None:
    name = "::stop-commands::a\n##[add-mask]b"
    with socket.socket(socket.AF_UNIX) as listener:  # neither a file nor a folder: warned
        listener.bind(str(tmp_path / name))
        warned = keyscan("scan", name, ".", cwd=tmp_path)
    assert warned.code == 0, warned.err
    assert "is not a regular file" in warned.err
    assert forged(warned.err) == []
    failed = keyscan("scan", "missing\n::stop-commands::x\n##[error]y", cwd=tmp_path)
    assert failed.code == 2
    assert failed.err.count("\n") == 1 and failed.err.startswith("keyscan: error: ")
    assert forged(failed.err) == []


def test_the_one_escaping_helper() -> None:
    assert printable("a\nb\r\x1b\u2028\udc80") == "a\\nb\\r\\x1b\\u2028\\x80"
    assert printable("x##[add-mask]y") == "x#\\x23[add-mask]y"
    assert printable("::a") == "::a"  # inside a line a `::` starts nothing
    assert printable_line(" \u3000::stop-commands::t") == " \u3000\\x3a:stop-commands::t"
    assert printable_line("a::b") == "a::b"
    assert json.loads(json_safe(json.dumps("##[x]"))) == "##[x]"


@pytest.mark.parametrize("text", [
    "plain ascii ##[x]", "pe_live_…a1b2", "a\u2028b", "a\u2029b", "…\udc80", "\udcff…",
    "x\ud800y", "…\ud800\udc80", "é\u2028\udcfe##[", "",
])
def test_json_safe_escapes_exactly_what_its_pattern_names(text: str) -> None:
    # json_safe asks the text whether its pattern can match before running it (speed):
    # its answer is the pattern's own, applied to every character.
    document = json.dumps({"path": text}, ensure_ascii=False)
    plain = re.sub("[\u2028\u2029\udc80-\udcff]", lambda m: f"\\u{ord(m.group()):04x}",
                   document).replace("##[", "#\\u0023[")
    assert json_safe(document) == plain
