"""The one driver: windows over big input, the expansion hook, counts in every mode."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from gitcli import ROOT, keyscan, scan_json
from gitrepo import Repo
from keys import make_key
from keyscan.engine import Engine
from keyscan.model import Fragment
from keyscan.rules import load_builtin
from keyscan.sources import driver
from keyscan.sources.driver import Scanner, Stream, Tally

ENGINE = Engine(load_builtin().rules)


def where(findings: Iterable[object]) -> list[tuple[str, int, int]]:
    return sorted((f.secret, f.line, f.column) for f in findings)  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(6))
def test_windows_find_what_one_pass_finds_at_every_edge(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Keys everywhere, on short and very long lines, in UTF-8 text with multibyte
    characters, and base64-encoded: the windows (shrunk here so that many edges fall
    across keys) report each once, at the line and column of a single pass."""
    import base64

    rng = random.Random(seed)
    parts: list[str] = []
    for _ in range(300):
        choice = rng.random()
        if choice < 0.25:
            parts.append(make_key(rng.choice(["posteverywhere", "repeatposts", "powerpost"]), rng))
        elif choice < 0.3:
            parts.append(base64.b64encode(f"u:{make_key('repeatposts', rng)}".encode()).decode())
        elif choice < 0.5:
            parts.append("\n")
        elif choice < 0.6:
            parts.append("é€ " * rng.randrange(1, 40))
        else:
            parts.append("word " * rng.randrange(1, 60))
    data = " ".join(parts).encode()
    single = ENGINE.scan(Fragment(data, "big.txt"))
    assert len(single) > 50
    monkeypatch.setattr(driver, "WINDOW", 4096)
    monkeypatch.setattr(driver, "OVERLAP", 1024)
    monkeypatch.setattr(driver, "LINE_SEARCH", 512)
    scanner = Scanner(ENGINE)
    pieces = [data[at : at + 1000] for at in range(0, len(data), 1000)]
    windowed = scanner.emit_stream("big.txt", pieces)
    assert where(windowed) == where(single)
    assert (scanner.tally.files, scanner.tally.bytes) == (1, len(data))


MEASURE = """
import resource, subprocess, sys
stdin = open(sys.argv[1], "rb") if sys.argv[1] != "-" else None
done = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.PIPE)
sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.stdout.buffer.write(done.stdout)
sys.exit(done.returncode)
"""


def sparse(path: Path, size: int, keys: list[str]) -> Path:
    """A file of `size` bytes, mostly holes, with a key in the middle and one at the end."""
    with open(path, "wb") as file:
        file.truncate(size // 2)
        file.seek(size // 2 - 10)
        file.write(f"\nmiddle {keys[0]}\n".encode())
        file.truncate(size)
        file.seek(size - 100)
        file.write(f"\nend {keys[1]}\n".encode())
    return path


def measured(stdin: str, *args: str) -> tuple[int, dict[str, Any], int]:
    """(exit code, JSON report, peak RSS in KiB) of `keyscan ARGS` in its own process."""
    import json

    argv = [sys.executable, "-c", MEASURE, stdin, sys.executable, "-m", "keyscan", *args]
    done = subprocess.run(argv, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return done.returncode, json.loads(done.stdout), int(done.stderr.decode().split()[-1])


def test_a_big_file_and_stdin_are_read_in_windows_with_bounded_memory(tmp_path: Path) -> None:
    """A 768 MiB sparse file and a 96 MiB stdin stream, keys in the middle and at the end:
    found at their lines, by a process whose peak RSS stays well below the input."""
    rng = random.Random(3)
    keys = [make_key("posteverywhere", rng), make_key("powerpost", rng)]
    big = sparse(tmp_path / "huge.img", 3 << 28, keys)
    code, report, rss = measured("-", "scan", "--format", "json", str(big))
    assert code == 1
    assert sorted((f["line"], f["column"]) for f in report["findings"]) == [(2, 8), (4, 5)]
    assert report["summary"]["scanned_bytes"] == 3 << 28
    assert rss < 256 * 1024  # KiB: the file is 768 MiB
    piped = sparse(tmp_path / "piped.img", 96 << 20, keys)
    code, report, rss = measured(str(piped), "scan", "--format", "json", "-")
    assert code == 1
    assert sorted((f["path"], f["line"]) for f in report["findings"]) == [("-", 2), ("-", 4)]
    assert rss < 256 * 1024


def test_the_expansion_hook_scans_what_a_fragment_holds() -> None:
    """What the expansion step returns is scanned instead of the input, for fragments and
    for streams too big to hold; this is where archives plug in."""
    rng = random.Random(5)
    inner_key, deep_key = make_key("repeatposts", rng), make_key("autoposting", rng)
    opened: list[bytes] = []

    def expand(path: str, head: bytes, open_input: Callable[[], Any],
               tally: Tally) -> list[Stream] | None:
        if not head.startswith(b"BOX"):
            return None
        opened.append(open_input().read(9))
        tally.skip(f"{path}!broken: damaged; skipped")
        return [Stream(path + "!a.txt", [f"k = {inner_key}\n".encode()]),
                Stream(path + "!s.txt", [b"x\n", deep_key.encode()])]

    scanner = Scanner(ENGINE, expand)
    found = scanner.emit(Fragment(b"BOX-outer", "pkg.box")).findings
    assert sorted((f.path, f.line) for f in found) == [("pkg.box!a.txt", 1), ("pkg.box!s.txt", 2)]
    assert (scanner.tally.files, scanner.tally.skipped, opened) == (2, 1, [b"BOX-outer"])
    big = [b"BOX-big " * (1 << 20)] * 3  # past WINDOW: the step gets the stream's start
    assert len(scanner.emit_stream("big.box", big)) == 2
    assert opened[-1] == b"BOX-big B"


def test_keyscan_allow_is_counted_in_every_mode(tmp_path: Path) -> None:
    rng = random.Random(7)
    repo = Repo(tmp_path / "work")
    repo.write("a.env", f"K={make_key('powerpost', rng)}  # keyscan:allow\n")
    repo.commit()
    repo.write("b.env", f"K={make_key('powerpost', rng)}  # keyscan:allow\n")
    repo.git("add", "b.env")
    for command in ("scan", "git", "staged"):
        result = keyscan(command, "--format", "json", cwd=repo.path)
        assert result.code == 0, (command, result.err)
        expected = 2 if command == "scan" else 1
        assert result.report["summary"]["suppressed"] == {"keyscan:allow": expected}, command


def test_a_committed_or_staged_zip_is_opened_through_the_expansion_step(tmp_path: Path) -> None:
    """Every source's fragments go through the same expansion step: a zip in a commit
    and in the index is opened as in a folder scan, at `path!member`."""
    import io
    import zipfile

    rng = random.Random(8)
    repo = Repo(tmp_path / "work")

    def zipped(key: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("conf/app.properties", f"# settings\napi.key={key}\n")
        return buffer.getvalue()

    repo.write("dist/app.zip", zipped(make_key("posteverywhere", rng)))
    sha = repo.commit()
    history = scan_json(repo.path)
    assert history.where() == [(sha, "dist/app.zip!conf/app.properties", 2, 9)]
    repo.write("dist/app.zip", zipped(make_key("powerpost", rng)))
    repo.git("add", "-A")
    staged = scan_json(repo.path, command="staged")
    assert [(f["path"], f["line"]) for f in staged.findings] == [
        ("dist/app.zip!conf/app.properties", 2)]
