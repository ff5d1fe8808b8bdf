"""`keyscan scan` end to end: real folders, real files, the real command in a subprocess."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keys import PREFIXES, make_key
from keyscan.engine import Engine
from keyscan.model import Stats
from keyscan.rules import load_builtin
from keyscan.sources import paths as paths_module
from keyscan.sources.driver import Scanner
from keyscan.sources.paths import POOL_MIN_BYTES, POOL_MIN_FILES, scan_paths

TIMEOUT = 60  # a hang on a FIFO or a symlink loop fails the test instead of the run


def keyscan(
    *args: str, cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def report(*args: str, cwd: Path, stdin: bytes | None = None) -> tuple[int, dict[str, Any], str]:
    done = keyscan("scan", "--format", "json", *args, cwd=cwd, stdin=stdin)
    assert done.returncode in (0, 1), done.stderr.decode()
    return done.returncode, json.loads(done.stdout), done.stderr.decode()


def places(doc: dict[str, Any]) -> list[tuple[str, int, int]]:
    return sorted((f["path"], f["line"], f["column"]) for f in doc["findings"])


@pytest.fixture
def key() -> str:
    return make_key("posteverywhere", random.Random(42))


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_exit_codes_and_normalised_paths(tmp_path: Path, key: str) -> None:
    write(tmp_path / "config" / "settings.py", f"DEBUG = True\nAPI_KEY = '{key}'\n")
    write(tmp_path / "sub" / "x.py", f"k = {key}\n")
    write(tmp_path / "clean" / "a.txt", "nothing here\n")
    code, doc, _ = report(".", cwd=tmp_path)
    assert code == 1
    assert places(doc) == [("config/settings.py", 2, 12), ("sub/x.py", 1, 5)]
    assert report("sub", cwd=tmp_path)[1]["findings"][0]["path"] == "sub/x.py"
    assert report("./sub/", cwd=tmp_path)[1]["findings"][0]["path"] == "sub/x.py"
    assert report("sub/x.py", cwd=tmp_path)[1]["findings"][0]["path"] == "sub/x.py"
    absolute = report(str(tmp_path / "sub"), cwd=tmp_path)[1]["findings"][0]["path"]
    assert absolute == f"{tmp_path.as_posix()}/sub/x.py"
    code, doc, stderr = report("clean", cwd=tmp_path)
    assert (code, doc["findings"], stderr) == (0, [], "")
    assert doc["summary"]["files"] == 1
    assert doc["summary"]["scanned_bytes"] == len("nothing here\n")


def test_a_missing_path_exits_2_with_one_line(tmp_path: Path) -> None:
    done = keyscan("scan", "nope", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "keyscan: error: path not found: nope: check the path (or give - for stdin)"
    ]


def test_dot_git_is_not_scanned(tmp_path: Path, key: str) -> None:
    write(tmp_path / ".git" / "config", key)
    write(tmp_path / "vendor" / "lib" / ".git" / "ORIG_HEAD", key)
    write(tmp_path / "notes.git.txt", key)
    _, doc, _ = report(".", cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == ["notes.git.txt"]


def test_symlinks_out_of_the_tree_are_not_followed(tmp_path: Path, key: str) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.txt", key)
    tree = tmp_path / "tree"
    write(tree / "ok.txt", "fine\n")
    (tree / "file-link").symlink_to(outside / "secret.txt")
    (tree / "dir-link").symlink_to(outside, target_is_directory=True)
    code, doc, _ = report("tree", cwd=tmp_path)
    assert (code, doc["findings"]) == (0, [])


def test_symlink_loops_and_fifos_do_not_hang(tmp_path: Path, key: str) -> None:
    write(tmp_path / "a" / "key.txt", key)
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "self").symlink_to(tmp_path / "self")
    os.mkfifo(tmp_path / "a" / "pipe")
    _, doc, _ = report(".", cwd=tmp_path)
    assert places(doc) == [("a/key.txt", 1, 1)]


def test_stdin_is_scanned_as_path_dash(tmp_path: Path, key: str) -> None:
    _, doc, _ = report("-", cwd=tmp_path, stdin=f"hello\n  {key}\n".encode())
    assert places(doc) == [("-", 2, 3)]


def test_a_binary_file_with_a_key_is_a_finding(tmp_path: Path, key: str) -> None:
    write(tmp_path / "cache.pyc", b"\x00\x0d\x0a\xf3" + bytes(200) + key.encode() + b"\xff\x00")
    _, doc, _ = report(".", cwd=tmp_path)
    assert [(f["path"], f["rule_id"]) for f in doc["findings"]] == [
        ("cache.pyc", "posteverywhere-api-key")
    ]


def test_a_key_in_a_kubernetes_secret_is_reported_encoded(tmp_path: Path, key: str) -> None:
    encoded = base64.b64encode(key.encode()).decode()
    write(tmp_path / "secret.yaml", f"kind: Secret\ndata:\n  token: {encoded}\n")
    (finding,) = report(".", cwd=tmp_path)[1]["findings"]
    assert (finding["line"], finding["column"], finding["encoding"]) == (3, 10, "base64")
    assert finding["secret"] == f"{PREFIXES['posteverywhere'][0]}…{key[-4:]}"


def test_unreadable_files_are_warned_about_and_counted(tmp_path: Path, key: str) -> None:
    # Tests run as root, which can read a chmod 000 file; /proc/self/mem cannot be read
    # by anyone from offset 0 (EIO), so it stands in for an unreadable file.
    if not Path("/proc/self/mem").exists():
        pytest.skip("needs Linux /proc to have a file nobody can read")
    write(tmp_path / "k.txt", key)
    code, doc, stderr = report("k.txt", "/proc/self/mem", cwd=tmp_path)
    assert code == 1
    assert stderr.splitlines() == [
        "keyscan: warning: cannot read /proc/self/mem: Input/output error; skipped"
    ]
    assert doc["summary"]["skipped_files"] == 1
    assert doc["summary"]["files"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files")
def test_a_chmod_000_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "locked.txt", "x").chmod(0)
    _, _, stderr = report(".", cwd=tmp_path)
    assert "cannot read locked.txt: Permission denied; skipped" in stderr


def test_placeholders_only_with_include_placeholders(tmp_path: Path) -> None:
    write(tmp_path / "README.md", "export KEY=" + PREFIXES["repeatposts"][0] + "x" * 24 + "\n")
    assert report(".", cwd=tmp_path)[:2][0] == 0
    _, doc, _ = report(".", "--include-placeholders", cwd=tmp_path)
    assert [f["rule_id"] for f in doc["findings"]] == ["repeatposts-api-key"]


def test_keyscan_allow_is_counted_as_suppressed(tmp_path: Path, key: str) -> None:
    write(tmp_path / "t.py", f"FIXTURE = '{key}'  # keyscan:allow\n")
    code, doc, _ = report(".", cwd=tmp_path)
    assert code == 0
    assert doc["summary"]["suppressed"] == {"keyscan:allow": 1}


def test_many_files_are_scanned_by_worker_processes_with_the_same_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rng = random.Random(99)
    filler = "lorem ipsum dolor sit amet, POST /posts\n" * (POOL_MIN_BYTES // POOL_MIN_FILES // 30)
    planted = {}
    for number in range(POOL_MIN_FILES * 2):
        text = filler
        if number % 10 == 0:
            planted[f"pkg/m{number}.py"] = secret = make_key("repeatposts", rng)
            text += f"KEY = '{secret}'\n"
        write(tmp_path / "pkg" / f"m{number}.py", text)
    total = sum(p.stat().st_size for p in (tmp_path / "pkg").iterdir())
    assert total >= POOL_MIN_BYTES
    pools: list[int] = []
    real_pool = paths_module._run_pool

    def counting_pool(*args: Any, **kwargs: Any) -> Iterator[Any]:
        pools.append(args[2])  # the number of workers
        yield from real_pool(*args, **kwargs)

    monkeypatch.setattr(paths_module, "_run_pool", counting_pool)
    stats = Stats()
    findings = list(scan_paths(["pkg"], Scanner(Engine(load_builtin().rules)), stats, warn=print))
    assert len(pools) == 1 and pools[0] >= 2  # the worker pool scanned them, not this process
    assert {f.path: f.secret for f in findings} == planted
    assert stats.files == POOL_MIN_FILES * 2
    assert stats.scanned_bytes == total
    _, doc, stderr = report("pkg", cwd=tmp_path)
    assert len(doc["findings"]) == len(planted)
    assert stderr == ""  # no progress line when stderr is not a terminal


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_only_on_a_terminal_after_a_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keyscan import progress

    piped = io.StringIO()
    with progress.Progress("keyscan: scanning", piped) as shown:
        shown.advance(files=3, bytes=2_000_000)
    assert piped.getvalue() == ""
    quick = Terminal()
    with progress.Progress("keyscan: scanning", quick) as shown:
        shown.advance(files=3, bytes=2_000_000)  # within the first half second: silent
    assert quick.getvalue() == ""
    monkeypatch.setattr(progress, "DELAY", 0.0)
    slow = Terminal()
    with progress.Progress("keyscan: scanning", slow) as shown:
        shown.advance(files=3, bytes=2_000_000)
    assert slow.getvalue() == "\rkeyscan: scanning: 3 files, 2.0 MB\x1b[K\r\x1b[K"
    totals = Terminal()  # the history scan reports running totals, in blobs
    with progress.Progress("keyscan git", totals, unit="blobs") as shown:
        shown.update(7, 3_000_000)
    assert totals.getvalue() == "\rkeyscan git: 7 blobs, 3.0 MB\x1b[K\r\x1b[K"


def test_a_pipe_named_on_the_command_line_is_read(tmp_path: Path, key: str) -> None:
    # what `keyscan scan <(cmd)` passes: a FIFO, named on purpose, so it is read
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f'printf "a\\n{key}\\n" > "{fifo}"'])
    try:
        _, doc, _ = report("pipe", cwd=tmp_path)
    finally:
        writer.wait(timeout=TIMEOUT)
    assert places(doc) == [("pipe", 2, 1)]
