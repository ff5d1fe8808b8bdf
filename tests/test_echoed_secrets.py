"""A key pasted where a path, revision, option or file was expected is never echoed whole.

Every error and warning line goes through one redaction (keyscan.redaction): the
built-in rules find key-shaped text and it is shown as reports show it.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from gitcli import keyscan
from gitrepo import Repo
from keys import all_keys
from keyscan.redaction import redact_keys

KEYS = sorted(all_keys(random.Random(3)).values())

CASES: dict[str, Callable[[str], list[str]]] = {
    "scan KEY": lambda key: ["scan", key],
    "git KEY": lambda key: ["git", key],
    "git --range KEY": lambda key: ["git", "--range", key],
    "git --range A..KEY": lambda key: ["git", "--range", f"HEAD..{key}"],
    "--config KEY": lambda key: ["scan", "--config", key, "."],
    "--baseline KEY": lambda key: ["scan", "--baseline", key, "."],
    "--output /x/KEY": lambda key: ["scan", "--output", f"/nonexistent/{key}", "."],
    "rules check KEY": lambda key: ["rules", "check", key],
    "rules --config KEY": lambda key: ["rules", "--config", key],
    "keyscan KEY": lambda key: [key],
    "scan --KEY": lambda key: ["scan", f"--{key}"],
    "staged KEY": lambda key: ["staged", key],
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    repo = Repo(tmp_path_factory.mktemp("echo") / "repo")
    repo.write("a.txt", "nothing\n")
    repo.commit()
    return repo


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("key", KEYS[:3])
def test_a_pasted_key_is_redacted_in_the_error(repo: Repo, case: str, key: str) -> None:
    result = keyscan(*CASES[case](key), cwd=repo.path)
    assert result.code == 2, result
    assert result.err.startswith("keyscan: error: ") and result.err.count("\n") == 1, result.err
    assert key not in result.err and key not in result.out
    assert key[-4:] in result.err or "…" in result.err or "'-" in result.err, result.err


@pytest.mark.parametrize("key", KEYS)
def test_every_key_shape_is_redacted(key: str) -> None:
    shown = redact_keys(f"cannot read /tmp/{key}: no such file, nor '{key}'")
    assert key not in shown
    assert shown.count("…" + key[-4:]) == 2


def test_a_key_in_a_warned_file_name_is_redacted(tmp_path: Path) -> None:
    key = KEYS[0]
    with socket.socket(socket.AF_UNIX) as listener:  # not a regular file: warned, skipped
        listener.bind(str(tmp_path / key))
        result = keyscan("scan", key, cwd=tmp_path)
    assert result.code == 0, result.err
    assert "not a regular file" in result.err
    assert key not in result.err


def test_a_message_without_keys_is_unchanged() -> None:
    text = "not a git repository: pe_live_: run inside a repository"
    assert redact_keys(text) == text
