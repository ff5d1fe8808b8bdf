"""The console-script entry: `keyscan staged` skips click and behaves exactly as through click."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from gitrepo import Repo
from keys import make_key
from keyscan import __version__
from keyscan.cli import options_from
from keyscan.commands.staged import command as staged_command
from keyscan.pipeline import ScanOptions

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = "import sys; from keyscan.launch import main; main()"


def run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_click_defaults_are_the_fast_paths_options() -> None:
    ctx = staged_command.make_context("staged", [])
    params = dict(ctx.params)
    assert params.pop("repo") is None
    assert options_from(params) == ScanOptions(quiet=True)  # launch's, without -v


def test_fast_path_says_what_click_says(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "work")
    repo.write("src/app.py", f"x = 1\nKEY = '{make_key('posteverywhere', random.Random(9))}'\n")
    repo.git("add", "-A")
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    for cwd, code in ((repo.path, 1), (elsewhere, 2)):
        fast = run([sys.executable, "-c", LAUNCH, "staged"], cwd)
        # `--format text` is the default: same command, but the argv goes through click
        through_click = run([sys.executable, "-m", "keyscan", "staged", "--format", "text"], cwd)
        assert fast == through_click
        assert fast[0] == code


def test_other_arguments_go_to_click(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "work")
    code, out, _ = run([sys.executable, "-c", LAUNCH, "staged", "--format", "json"], repo.path)
    assert (code, out.lstrip()[:1]) == (0, "{")
    code, out, _ = run([sys.executable, "-c", LAUNCH, "--version"], repo.path)
    assert (code, out) == (0, f"keyscan, version {__version__}\n")


def test_python_m_keyscan_staged_never_imports_click(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("a.txt", "hello\n")
    repo.git("add", "-A")
    code, _, err = run([sys.executable, "-X", "importtime", "-m", "keyscan", "staged"], repo.path)
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    assert code == 0
    assert "keyscan.sources.staged" in imported
    assert "click" not in imported
