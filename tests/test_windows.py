"""Input bigger than a window (sources/windows.py): what one pass over it would find and
count, found and counted once, in UTF-16 as in UTF-8, with bounded memory."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gitcli import keyscan
from keys import make_key
from keyscan.engine import Engine
from keyscan.model import Finding, Fragment
from keyscan.rules import load_builtin
from keyscan.sources import driver
from keyscan.sources.driver import Scanner
from test_driver import measured

ENGINE = Engine(load_builtin().rules)
WINDOW = 16 << 20  # driver.WINDOW, as a user's scan has it
ALLOW = "keyscan" + ":allow"
# mostly ASCII, as UTF-16 without a byte-order mark must be for its guess to hold
WORDS, WEIGHTS = ["word", "zeile", "ab", "é", "€", "😀"], [10, 10, 10, 2, 1, 1]


def text_with_keys(rng: random.Random, lines: int, allowed: bool = True) -> tuple[str, list[str]]:
    """Lines of words (some not ASCII, one outside the BMP), keys on some, `keyscan:allow`
    on some of those: the text and its keys."""
    out: list[str] = []
    keys: list[str] = []
    for _ in range(lines):
        choice = rng.random()
        words = " ".join(rng.choices(WORDS, WEIGHTS)[0] for _ in range(rng.randrange(0, 30)))
        if choice < 0.1:
            key = make_key(rng.choice(["posteverywhere", "repeatposts", "powerpost"]), rng)
            keys.append(key)
            mark = f" # {ALLOW}" if allowed and rng.random() < 0.3 else ""
            out.append(f"{words} k={key}{mark}")
        else:
            out.append(words)
    return "\n".join(out) + "\n", keys


def where(findings: list[Finding]) -> list[tuple[str, int, int]]:
    return sorted((f.secret, f.line, f.column) for f in findings)


def shrunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "WINDOW", 4096)
    monkeypatch.setattr(driver, "OVERLAP", 1024)
    monkeypatch.setattr(driver, "LINE_SEARCH", 512)


@pytest.mark.parametrize("codec", ["utf-8", "utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("seed", range(3))
def test_windows_find_and_count_what_one_pass_does(
    monkeypatch: pytest.MonkeyPatch, codec: str, seed: int
) -> None:
    """Windows shrunk so that many edges fall across keys and `keyscan:allow` lines, in
    UTF-8 and UTF-16 (with a byte-order mark, and without in either byte order): the
    findings (line and column) and the suppressions counted are those of one pass."""
    text, _ = text_with_keys(random.Random(seed), 600)
    data = text.encode(codec)
    single, allowed = ENGINE.scan_counted(Fragment(data, "big.txt"))
    assert len(single) > 20 and allowed > 5
    shrunk(monkeypatch)
    scanner = Scanner(ENGINE)
    pieces = [data[at : at + 999] for at in range(0, len(data), 999)]
    assert where(scanner.emit_stream("big.txt", pieces)) == where(single)
    assert scanner.tally.allowed == {"big.txt": allowed}
    assert (scanner.tally.files, scanner.tally.bytes) == (1, len(data))


def test_a_suppression_in_two_windows_is_counted_once(tmp_path: Path) -> None:
    """A `keyscan:allow` line (and a key) where the first two windows of a big file
    overlap: `summary.suppressed` counts it once, the key is reported once."""
    rng = random.Random(41)
    filler = "a line of text that holds nothing at all, long enough to count\n"
    before = filler * ((WINDOW - (32 << 10)) // len(filler))  # ends in the overlap
    allowed, found = make_key("powerpost", rng), make_key("repeatposts", rng)
    body = f"K={allowed}  # {ALLOW}\nK={found}\n"
    (tmp_path / "big.txt").write_text(before + body + filler * 20_000)
    result = keyscan("scan", "--format", "json", "big.txt", cwd=tmp_path)
    assert result.code == 1, result.err
    assert result.report["summary"]["suppressed"] == {"keyscan:allow": 1}
    assert [(f["line"], f["column"]) for f in result.findings] == [
        (before.count("\n") + 2, 3)]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_bigger_than_a_window_is_utf16_in_every_window(tmp_path: Path, codec: str) -> None:
    """A UTF-16 file of 50 MiB (with a byte-order mark, or without one in either byte
    order), keys all through it: each found once, at its line and column."""
    rng = random.Random(42)
    filler = ["a line of words, eine Zeile é und €", "😀 and more words here", "", "x = 1"]
    lines = [rng.choice(filler) for _ in range(1_000_000)]
    expected = []
    for n in sorted(rng.sample(range(len(lines)), 15)):
        prefix = lines[n] + " k="
        lines[n] = prefix + make_key("repeatposts", rng)
        expected.append((n + 1, len(prefix) + 1))  # columns count characters
    (tmp_path / "big.txt").write_bytes(("\n".join(lines) + "\n").encode(codec))
    result = keyscan("scan", "--format", "json", "big.txt", cwd=tmp_path)
    assert result.code == 1, result.err
    assert sorted((f["line"], f["column"]) for f in result.findings) == expected


def test_a_huge_utf16_file_is_converted_in_pieces(tmp_path: Path) -> None:
    """A 288 MiB UTF-16 file (mostly holes: NUL characters), keys in its middle and at its
    end: found at their lines, by a process whose peak RSS stays far below the file (or
    its conversion, were it converted whole)."""
    rng = random.Random(43)
    keys = [make_key("posteverywhere", rng), make_key("autoposting", rng)]
    size = 288 << 20
    with open(tmp_path / "huge.txt", "wb") as file:
        file.write("\ufeff".encode("utf-16-le"))
        file.truncate(size // 2)
        file.seek(size // 2)
        file.write(f"\nmiddle {keys[0]}\n".encode("utf-16-le"))
        file.truncate(size)
        file.seek(size - 200)
        file.write(f"\nend {keys[1]}\n".encode("utf-16-le"))
    code, report, rss = measured("-", "scan", "--format", "json", str(tmp_path / "huge.txt"))
    assert code == 1
    assert sorted((f["line"], f["column"]) for f in report["findings"]) == [(2, 8), (4, 5)]
    assert rss < 256 * 1024  # KiB
