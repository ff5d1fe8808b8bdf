"""Scanning a blob through its delta base: the same secrets as scanning it whole."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from gitcli import scan_json
from gitrepo import Repo
from keys import all_keys, make_key
from keyscan.edits import SLACK, changed_span
from keyscan.engine import Engine
from keyscan.model import Stats
from keyscan.rules import load_builtin
from keyscan.sources.blobscan import scan_stream, secrets_in

ENGINE = Engine(load_builtin().rules)
WORDS = b"alpha beta gamma delta import return value config settings token".split()


def text(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(WORDS) for _ in range(8)) + b"\n"
    return bytes(out)


def test_changed_span_splits_the_new_text_into_old_prefix_edit_old_suffix() -> None:
    rng = random.Random(1)
    for _ in range(500):
        old = bytes(rng.choice(b"ab\n") for _ in range(rng.randrange(0, 2000)))
        new = bytearray(old)
        for _ in range(rng.randrange(0, 3)):
            at = rng.randrange(len(new) + 1)
            new[at : at + rng.randrange(5)] = bytes(rng.choice(b"abc") for _ in range(4))
        start, end = changed_span(old, bytes(new))
        assert start <= end
        assert new[:start] == old[:start]
        assert old.endswith(new[end:]) and start + len(new) - end <= len(old)
        exact = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                     min(len(old), len(new)))
        assert exact - SLACK <= start <= exact


def test_quiet_means_no_sign_of_a_key_in_any_case_or_encoding() -> None:
    rng = random.Random(2)
    key = make_key("powerpost", rng)
    clean = text(rng, 5000)
    assert ENGINE.quiet(clean)
    assert not ENGINE.quiet(clean + key.encode())
    assert not ENGINE.quiet(clean + b"POWERPOST_API_KEY = x\n")  # a keyword, any case
    assert not ENGINE.quiet(clean + base64.b64encode(b"token: " + key.encode()))
    assert ENGINE.quiet(clean + base64.b64encode(b"nothing here at all, just words"))


def stream_secrets(blobs: list[bytes], bases: dict[str, str]) -> dict[str, frozenset]:
    items = iter([(str(i), data) for i, data in enumerate(blobs)])
    return scan_stream(ENGINE, items, Stats(), bases=bases)


@pytest.mark.parametrize("case", ["plain", "split-by-edit", "base64-grown-by-edit", "utf16"])
def test_a_delta_of_a_quiet_base_is_scanned_like_the_whole_blob(case: str) -> None:
    rng = random.Random(3)
    keys = list(all_keys(rng).values())
    base = text(rng, 20_000)
    middle = len(base) // 2
    if case == "plain":  # keys added in the middle and at the end
        delta = base[:middle] + keys[0].encode() + b"\n" + base[middle:] + keys[1].encode()
    elif case == "split-by-edit":  # the base ends a word with half a key's prefix
        half = keys[2][:4].encode()
        base = base[:middle] + b" " + half
        delta = base + keys[2][4:].encode() + b"\n"
    elif case == "base64-grown-by-edit":  # an encoded prefix in a run too short, until an edit
        encoded = base64.b64encode(b"key=" + keys[3].encode())
        base = base[:middle] + b" " + encoded[:20] + b"\n" + base[middle:]
        delta = base[: middle + 21] + encoded[20:] + base[middle + 21 :]
    else:  # UTF-16 text is converted before scanning: never checked by parts
        base = "\n".join(["words"] * 3000).encode("utf-16")
        delta = ("\n".join(["words"] * 1500) + f"\n{keys[4]}\n").encode("utf-16")
    assert ENGINE.quiet(base) or case == "utf16"
    whole = {str(i): s for i, s in enumerate([secrets_in(ENGINE, base), secrets_in(ENGINE, delta)])
             if s}
    assert whole["1"]
    assert stream_secrets([base, delta], {"1": "0"}) == whole
    assert stream_secrets([base, delta], {}) == whole


def test_keys_in_a_repacked_history_are_found_at_the_commit_that_added_them(
    tmp_path: Path,
) -> None:
    """`git repack` stores later versions as deltas: the scan must still see every edit."""
    rng = random.Random(5)
    repo = Repo(tmp_path / "work")
    lines = [f"setting_{i} = {rng.randrange(10**6)}\n" for i in range(3000)]
    repo.write("big.py", "".join(lines))
    repo.commit("start")
    added: dict[str, int] = {}  # commit -> line of the key it added
    for step in range(6):
        at = rng.randrange(len(lines))
        if step in (2, 4):  # a key, removed again in the next step: git stores the newest
            key = make_key("repeatposts", rng)  # version whole, these as deltas of it
            value = key if step == 2 else base64.b64encode(f"u:{key}".encode()).decode()
            lines.insert(at, f"TOKEN_{step} = '{value}'\n")
            planted = at
        elif step in (3, 5):
            del lines[planted]
        else:
            lines[at] = f"changed_{step} = {step}\n"
        repo.write("big.py", "".join(lines))
        sha = repo.commit(f"step {step}")
        if step in (2, 4):
            added[sha] = at + 1
    lines += [f"appended_{i} = {i}\n" for i in range(500)]  # the biggest version, quiet:
    repo.write("big.py", "".join(lines))  # what git picks as the base to store others against
    repo.commit("grow")
    repo.git("repack", "-adfq", "--depth=50", "--window=50")
    bases = repo.git("cat-file", "--batch-all-objects", "--batch-check=%(deltabase)").split()
    assert any(set(base) != {"0"} for base in bases)  # some blobs are deltas now

    result = scan_json(repo.path)

    found = {(f["commit"], f["line"]) for f in result.report["findings"]}
    assert found == set(added.items())
