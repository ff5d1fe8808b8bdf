"""Blobs read straight from pack files: the same bytes git gives, the same findings."""

from __future__ import annotations

import base64
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from gitcli import scan_json
from gitrepo import Repo
from keys import all_keys, make_key
from keyscan.engine import Engine
from keyscan.rules import load_builtin
from keyscan.sources import git
from keyscan.sources.packfile import (
    HASH_SIZES,
    REF_DELTA,
    Index,
    PackError,
    PackReader,
    apply_delta,
    locate,
    pack_files,
)

ENGINE = Engine(load_builtin().rules)
WORDS = ["alpha", "beta", "gamma", "delta", "import", "return", "value", "settings"]


def lines(rng: random.Random, count: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(8)) + "\n" for _ in range(count)]


def edited_history(repo: Repo, rng: random.Random, steps: int = 30) -> None:
    """One file edited commit after commit: lines changed, inserted, deleted, blocks moved."""
    text = lines(rng, 400)
    for step in range(steps):
        at = rng.randrange(len(text) - 20)
        kind = step % 4
        if kind == 0:
            text[at] = f"changed {step}\n"
        elif kind == 1:
            text[at:at] = lines(rng, rng.randrange(1, 5))
        elif kind == 2:
            del text[at : at + rng.randrange(1, 5)]
        else:  # a block moved elsewhere: the delta copies base pieces out of order
            block = text[at : at + 10]
            del text[at : at + 10]
            text[rng.randrange(len(text)) : 0] = block
        repo.write("big.txt", "".join(text))
        repo.write(f"small/{step % 3}.txt", f"version {step}\n" * (step + 1))
        repo.commit(f"step {step}")


def repack(repo: Repo, *config: str) -> None:
    args = [arg for item in config for arg in ("-c", item)]
    repo.git(*args, "repack", "-adfq", "--depth=50", "--window=50")


def read_all(repo: Repo, keep_bytes: int) -> tuple[int, int, int]:
    """Read every blob from the packs and check it against git: (blobs, deltas, ref deltas)."""
    target = git.open_repo(str(repo.path))
    blobs = git.list_blobs(target)
    hash_size = HASH_SIZES[target.object_format]
    where, packs = locate(pack_files(target), [oid for oid, _, _ in blobs], hash_size)
    assert len(where) == len(blobs)  # everything is packed after a repack
    uses = Counter(where[base] for _, _, base in blobs if base)
    deltas = refs = 0
    real = dict(git.iter_blobs(target, [oid for oid, _, _ in blobs]))  # as git reads them
    with PackReader(packs, hash_size, uses, keep_bytes) as reader:
        for oid, _, _ in sorted(blobs, key=lambda blob: where[blob[0]]):
            data, edit = reader.read(where[oid])
            assert data == real[oid]
            if edit is None:
                continue
            deltas += 1
            refs += reader._header(where[oid])[0] == REF_DELTA  # the pack's flavour
            base = real[next(o for o, place in where.items() if place == edit.base)]
            # Between changed spans, the blob is one piece of its base.
            cuts = [0, *(point for span in edit.changed for point in span), len(data)]
            for start, end in zip(cuts[::2], cuts[1::2], strict=True):
                assert data[start:end] in base
    return len(blobs), deltas, refs


@pytest.mark.parametrize("flavour", ["offsets", "ids", "sha256"])
@pytest.mark.parametrize("keep_bytes", [0, 1 << 30])
def test_every_packed_blob_reads_exactly_as_git_gives_it(
    tmp_path: Path, flavour: str, keep_bytes: int
) -> None:
    """Delta bases by offset (git's default), by id (older packers), and SHA-256
    repositories; with no base kept (each rebuilt down its chain) or all kept."""
    repo = Repo(tmp_path / "repo")
    if flavour == "sha256":
        shutil.rmtree(repo.path / ".git")
        repo.git("init", "-q", "-b", "main", "--object-format=sha256")
    edited_history(repo, random.Random(1))
    repack(repo, *(["repack.useDeltaBaseOffset=false"] if flavour == "ids" else []))

    blobs, deltas, refs = read_all(repo, keep_bytes)

    assert deltas >= 20 and blobs > deltas  # big.txt: stored as deltas of one version
    assert (refs > 0) == (flavour == "ids")


def test_offsets_past_2_gib_are_read_from_the_large_offset_table(tmp_path: Path) -> None:
    """A pack over 2 GiB lists offsets through a second table; rewrite a small pack's
    index that way (as git would for a big pack) and look every object up again."""
    repo = Repo(tmp_path / "repo")
    edited_history(repo, random.Random(2), steps=4)
    repack(repo)
    (pack,) = pack_files(git.open_repo(str(repo.path)))
    plain = Index(pack, 20)
    raw = pack.with_suffix(".idx").read_bytes()
    names = [raw[1032 + 20 * n : 1052 + 20 * n] for n in range(plain.count)]
    offsets = [plain.find(name) for name in names]
    assert all(offsets)
    start = 8 + 1024 + plain.count * 24
    table = b"".join((0x80000000 | n).to_bytes(4, "big") for n in range(plain.count))
    large = b"".join(int(offset or 0).to_bytes(8, "big") for offset in offsets)
    pack.with_suffix(".idx").chmod(0o644)
    pack.with_suffix(".idx").write_bytes(
        raw[:start] + table + large + raw[start + 4 * plain.count :])

    rewritten = Index(pack, 20)

    assert [rewritten.find(name) for name in names] == offsets
    wanted = [name.hex() for name in names]
    assert rewritten.offsets(wanted) == {
        name.hex(): offset for name, offset in zip(names, offsets, strict=True)}


def test_a_damaged_delta_is_refused_not_misread() -> None:
    base = b"0123456789" * 10
    good = bytes([100, 5, 0b10010001, 5, 3, 2]) + b"ab"  # copy base[5:8], insert "ab"
    assert apply_delta(base, good) == (b"567ab", ((0, 5),))  # a moved piece, an insert
    for bad in (
        bytes([99, 3, 0b10010001, 5, 3]),  # the base is not 99 bytes long
        bytes([100, 3, 0b10010001, 99, 3]),  # copies past the base's end
        bytes([100, 4, 0b10010001, 5, 3]),  # makes 3 bytes, not the 4 promised
        bytes([100, 3, 0, 1, 2, 3]),  # instruction 0 is reserved
        bytes([100, 5, 5, 1, 2]),  # an insert cut short
    ):
        with pytest.raises(PackError):
            apply_delta(base, bad)


def test_quiet_means_no_sign_of_a_key_in_any_case_or_encoding() -> None:
    rng = random.Random(2)
    key = make_key("powerpost", rng)
    clean = "".join(lines(rng, 100)).encode()
    assert ENGINE.quiet(clean)
    assert not ENGINE.quiet(clean + key.encode())
    assert not ENGINE.quiet(clean + b"POWERPOST_API_KEY = x\n")  # a keyword, any case
    assert not ENGINE.quiet(clean + base64.b64encode(b"token: " + key.encode()))
    assert ENGINE.quiet(clean + base64.b64encode(b"nothing here at all, just words"))


def keys_edited_into_quiet_files(repo: Repo, rng: random.Random) -> None:
    """Keys that appear only through an edit of a quiet version: the cases where checking
    only the changed spans of a delta could go wrong."""
    keys = list(all_keys(rng).values())
    text = "".join(lines(rng, 2000))
    middle = text.index("\n", len(text) // 2) + 1  # the start of a line
    versions = {
        "plain.txt": [text, text[:middle] + keys[0] + "\n" + text[middle:] + keys[1]],
        # the quiet version ends a word with half a key's prefix; the edit completes it
        "split.txt": [text + " " + keys[2][:4], text + " " + keys[2] + "\n"],
        # an encoded prefix in a base64 run too short to hold a key, until an edit grows it
        "grown.txt": [
            text[:middle] + " " + base64.b64encode(f"key={keys[3]}".encode()).decode()[:20]
            + "\n" + text[middle:],
            text[:middle] + " " + base64.b64encode(f"key={keys[3]}".encode()).decode()
            + "\n" + text[middle:],
        ],
        # a block moved next to another: a prefix made where two old pieces now meet
        "moved.txt": [
            text[:middle] + keys[4][:5] + "\n" + text[middle:] + "\n" + keys[4][5:] + "\n",
            text[:middle] + keys[4][:5] + keys[4][5:] + "\n" + text[middle:] + "\n",
        ],
    }
    for step in range(2):
        for path, texts in versions.items():
            repo.write(path, texts[step])
        # UTF-16 text is scanned converted, never by parts
        repo.write("wide.txt", ("\n".join(["words"] * (3000 - 1500 * step))
                                + (f"\n{keys[5]}\n" if step else "")).encode("utf-16"))
        repo.commit(f"version {step}")
    for path, texts in versions.items():  # the biggest, quiet version last: git's base
        repo.write(path, texts[0] + text)
    repo.commit("grow")


def scan_in_process(path: Path) -> list[tuple[str, str, int, int]]:
    from keyscan.model import Stats
    from keyscan.sources import history

    found = history.scan_all(git.open_repo(str(path)), ENGINE, Stats(), print)
    return sorted((f.commit.sha if f.commit else "", f.path, f.line, f.column) for f in found)


@pytest.mark.parametrize("rebuilder", ["python", "git"])
def test_deltas_rebuilt_by_git_or_here_give_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rebuilder: str
) -> None:
    """Big deltas are rebuilt by git (C is faster per instruction), the rest here; each
    way, only the changed spans of a quiet base's delta are checked, and nothing is
    missed."""
    from keyscan.sources import blobscan

    rng = random.Random(4)
    repo = Repo(tmp_path / "repo")
    keys_edited_into_quiet_files(repo, rng)
    edited_history(repo, rng, steps=8)
    loose = scan_json(repo.path).where()
    repack(repo)
    monkeypatch.setattr(blobscan, "BIG_DELTA", 0 if rebuilder == "git" else 1 << 40)
    monkeypatch.setattr(blobscan, "PARALLEL_BYTES", 0)  # workers, as for a big history
    monkeypatch.setattr(blobscan, "_cores", lambda: 2)

    assert scan_in_process(repo.path) == loose


@pytest.mark.parametrize("store", ["offsets", "index-v1", "alternates"])
def test_packed_history_gives_the_findings_loose_objects_give(tmp_path: Path, store: str) -> None:
    """The same commits, paths, lines and columns whether blobs come from loose objects
    (git cat-file), packs read here, or packs this reader leaves to git (version 1
    index), or packs of another repository (objects/info/alternates)."""
    rng = random.Random(3)
    repo = Repo(tmp_path / "repo")
    keys_edited_into_quiet_files(repo, rng)
    edited_history(repo, rng, steps=8)
    loose = scan_json(repo.path).where()
    assert len(loose) == 6

    if store == "alternates":
        repack(repo)
        shared = tmp_path / "shared"
        repo.git("clone", "-q", "--shared", str(repo.path), str(shared))
        assert not list((shared / ".git" / "objects" / "pack").glob("*.pack"))
        assert pack_files(git.open_repo(str(shared)))  # found through the alternates file
        packed = scan_json(shared).where()
    else:
        repack(repo, *(["pack.indexVersion=1"] if store == "index-v1" else []))
        (pack,) = pack_files(git.open_repo(str(repo.path)))
        assert pack.with_suffix(".idx").read_bytes().startswith(b"\xfftOc") == (store == "offsets")
        packed = scan_json(repo.path).where()

    assert packed == loose


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


@pytest.mark.parametrize("naming", ["by-content", "by-object-ids"])
def test_a_repack_during_the_scan_sends_the_blobs_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, naming: str
) -> None:
    """`git gc` may rewrite the packs between finding a blob and reading it: the
    offsets found are wrong now, so git (which knows the new pack) reads the blobs."""
    from keyscan.sources import blobscan

    rng = random.Random(5)
    repo = Repo(tmp_path / "repo")
    keys_edited_into_quiet_files(repo, rng)
    repack(repo)
    before = scan_in_process(repo.path)
    assert len(before) == 6
    real_locate = blobscan.locate  # type: ignore[attr-defined]  # imported there, patched there

    def locate_then_repack(*args: object, **kwargs: object) -> object:
        found = real_locate(*args, **kwargs)  # type: ignore[arg-type]
        (pack,) = pack_files(git.open_repo(str(repo.path)))
        before = pack.read_bytes()[-20:]
        # No deltas now: every object moves. The new pack has a new name (or, from
        # git versions that named packs by their objects' ids, the old one).
        repo.git("repack", "-adfq", "--window=0")
        if naming == "by-object-ids":  # what older git does: the same name, other offsets
            (new,) = pack_files(git.open_repo(str(repo.path)))
            for suffix in (".idx", ".pack"):
                new.with_suffix(suffix).rename(pack.with_suffix(suffix))
        assert pack.exists() == (naming == "by-object-ids")
        assert not pack.exists() or pack.read_bytes()[-20:] != before
        return found

    monkeypatch.setattr(blobscan, "locate", locate_then_repack)

    assert scan_in_process(repo.path) == before
