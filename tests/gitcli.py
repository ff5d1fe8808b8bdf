"""Run keyscan's git commands as a user does: a fresh `python -m keyscan` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    @property
    def findings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.report["findings"]
        return found

    def where(self) -> list[tuple[str, str, int, int]]:
        """(commit, path, line, column) of each finding, sorted."""
        return sorted((f["commit"], f["path"], f["line"], f["column"]) for f in self.findings)


def keyscan(*args: str, cwd: Path, stdin: str | None = None,
            env: dict[str, str] | None = None) -> Result:
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        env=full_env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def scan_json(cwd: Path, *args: str, command: str = "git", **kw: Any) -> Result:
    """`keyscan <command> --format json ARGS`, asserting it ran (exit 0 or 1)."""
    result = keyscan(command, "--format", "json", *args, cwd=cwd, **kw)
    assert result.code in (0, 1), result.err
    return result
