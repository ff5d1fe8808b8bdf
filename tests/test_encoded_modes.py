"""Encoded keys in every mode: files, stdin, the staged hook, and history (where an edit
of a quiet blob is checked only around what it changed)."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from encoders import HIDINGS, PAD, percent_separators, utf16
from gitcli import keyscan, scan_json
from gitrepo import Repo
from keys import PREFIXES, make_key

KEYS = [(vendor, prefix) for vendor, prefixes in PREFIXES.items() for prefix in prefixes]


def hidden_files(rng: random.Random) -> dict[str, tuple[bytes, str, str]]:
    """file name -> (bytes, key, encoding): one file per hiding, keys of every shape."""
    files = {}
    for n, hiding in enumerate(HIDINGS):
        vendor, prefix = KEYS[n % len(KEYS)]
        key = make_key(vendor, rng, prefix=prefix)
        name = f"h{n:02d}.txt"
        files[name] = (utf16(hiding, "x = 1\n" + hiding.hide(key)), key, hiding.encoding)
    return files


def found(findings: list[dict[str, object]]) -> set[tuple[object, ...]]:
    return {(f["path"], f["encoding"] or "") for f in findings}


def expected(files: dict[str, tuple[bytes, str, str]]) -> set[tuple[object, ...]]:
    return {(name, encoding) for name, (_, _, encoding) in files.items()}


def test_scan_finds_every_hiding_and_no_placeholder(tmp_path: Path) -> None:
    files = hidden_files(random.Random(1))
    for name, (data, _, _) in files.items():
        (tmp_path / name).write_bytes(data)
    fake = "pe" + "_live_" + "0" * 32
    (tmp_path / "placeholder.html").write_text(f"<code>{fake.replace('_', '&#95;')}</code>")
    (tmp_path / "sums.txt").write_text(base64.b64encode(bytes(range(256)) * 40).decode())
    result = scan_json(tmp_path, ".", command="scan")
    assert result.code == 1
    assert found(result.findings) == expected(files)
    redacted = {f["path"]: f["secret"] for f in result.findings}
    for name, (_, key, _) in files.items():
        assert key not in result.out
        assert redacted[name].endswith(key[-4:])


def test_stdin_is_decoded_too(tmp_path: Path) -> None:
    key = make_key("powerpost", random.Random(2))
    result = scan_json(tmp_path, "-", command="scan",
                       stdin=f"POST /hook\n\ntoken={percent_separators(key)}\n")
    assert [(f["path"], f["line"], f["column"], f["encoding"]) for f in result.findings] == [
        ("-", 3, 7, "percent")
    ]


def test_the_staged_hook_finds_every_hiding(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("README", "hello\n")
    repo.commit()
    files = hidden_files(random.Random(3))
    for name, (data, _, _) in files.items():
        repo.write(name, data)
    repo.git("add", "-A")
    result = keyscan("staged", "--format", "json", cwd=repo.path)
    assert result.code == 1, result.err
    assert found(result.findings) == expected(files)


def filler(rng: random.Random, count: int) -> str:
    words = ["alpha", "beta", "gamma", "import", "return", "value", "settings", "x = 1"]
    return "".join(" ".join(rng.choice(words) for _ in range(8)) + "\n" for _ in range(count))


def test_history_finds_encoded_keys_that_edits_of_quiet_blobs_add(tmp_path: Path) -> None:
    """Each key is added by an edit of a big quiet file, which git stores as a delta of
    the quiet version: only the changed spans are checked, and they must show every
    encoded prefix, also one that a line end of wrapped base64 cuts in two."""
    rng = random.Random(4)
    repo = Repo(tmp_path / "repo")
    head, tail = filler(rng, 1500), filler(rng, 1500)
    # Wrapped base64 (76 columns: 57 bytes a line) whose 3rd and 4th lines an edit rewrites
    # with a key whose prefix the line end between them cuts.
    plain = bytearray(("quiet words, nothing to see. " * 40).encode())
    key = make_key("repeatposts", rng, length=40)
    edited = bytearray(plain)
    edited[57 * 3 - 5 : 57 * 3 - 5 + len(key) + 2] = f" {key} ".encode()  # prefix cut too
    files = hidden_files(rng)
    versions = {name: data.decode() for name, (data, _, encoding) in files.items()
                if encoding}  # UTF-16 files are scanned whole, never by parts
    quiet = {name: head + tail for name in versions}
    quiet["pem.txt"] = head + base64.encodebytes(bytes(plain)).decode() + tail
    for name, text in quiet.items():
        repo.write(name, text)
    repo.commit("quiet")
    for name, text in versions.items():
        repo.write(name, head + text + tail)
    repo.write("pem.txt", head + base64.encodebytes(bytes(edited)).decode() + tail)
    added = repo.commit("keys")
    for name, text in quiet.items():  # the biggest, quiet version last: git's delta base
        repo.write(name, text + filler(rng, 200))
    repo.commit("grow")
    repo.git("repack", "-adfq", "--depth=50", "--window=50")
    bases = repo.git("cat-file", "--batch-all-objects", "--batch-check=%(deltabase)").split()
    assert sum(set(base) != {"0"} for base in bases) >= len(versions)

    result = scan_json(repo.path)

    assert {(f["path"], f["commit"]) for f in result.findings} == {
        (name, added) for name in [*versions, "pem.txt"]
    }
    pem = next(f for f in result.findings if f["path"] == "pem.txt")
    assert (pem["encoding"], pem["secret"][-4:]) == ("base64", key[-4:])


@pytest.mark.parametrize("hiding", [h for h in HIDINGS if h.encoding],
                         ids=[h.name for h in HIDINGS if h.encoding])
def test_quiet_sees_every_encoded_prefix(hiding: object) -> None:
    from encoders import Hiding
    from keyscan.engine import Engine
    from keyscan.rules import load_builtin

    assert isinstance(hiding, Hiding)
    engine = Engine(load_builtin().rules)
    clean = filler(random.Random(5), 200).encode()
    assert engine.quiet(clean + PAD.encode())
    hidden = hiding.hide(make_key("autoposting", random.Random(6))).encode()
    text = clean + hidden + clean
    assert not engine.quiet(text)
    assert not engine.quiet(text, len(clean), len(clean) + len(hidden))  # an edit inserted it
    # windows overlapping by `reach` (as around an edit's changed spans): one of them says so
    step = engine.reach
    windows = [(low, low + 2 * step) for low in range(0, len(text), step)]
    assert not all(engine.quiet(text, low, high) for low, high in windows)


@pytest.mark.parametrize("indent", ["", "        "])
def test_an_edit_of_the_last_line_of_wrapped_base64_is_seen_with_the_line_before(
    indent: str,
) -> None:
    """The delta shortcut checks a changed span and `reach` around it: that must hold
    enough of the line before, when the edit completes a prefix cut by a line end."""
    from keyscan.engine import Engine
    from keyscan.rules import load_builtin
    from keyscan.sources.blobscan import _windows

    engine = Engine(load_builtin().rules)
    key = make_key("repeatposts", random.Random(7), length=16)  # as short as keys are
    head = (b"quiet words, nothing to see. " * 7)[: 57 * 3 - 7] + b" "
    new = base64.b64encode(head + key.encode())  # 3 lines of 76, and one of 24:
    old = base64.b64encode(head + key[:6].encode() + b"x" * (len(key) - 6))  # 'rp_liv' ends
    assert len(new) == 76 * 3 + 24  # the 3rd line, the last line has the rest of the key

    def wrapped(encoded: bytes) -> bytes:
        lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
        return b"data: |\n" + b"".join(indent.encode() + line + b"\n" for line in lines)

    before, after = wrapped(old), wrapped(new)
    assert engine.quiet(before) and not engine.quiet(after)
    start = next(i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b)
    end = len(after) - next(i for i, (a, b) in enumerate(zip(before[::-1], after[::-1],
                                                              strict=True)) if a != b)
    assert after.count(b"\n", 0, start) == 4  # the edit changed the 4th line only
    windows = _windows(((start, end),), engine.reach, len(after))
    assert not all(engine.quiet(after, low, high) for low, high in windows)
