"""Zip members and gzip streams read by `sources/inflate.py`: ISA-L's inflater when
`isal` is installed (it is a dependency here), zlib's otherwise; both must give the
same findings, lines and warnings. Archives are built at run time; keys from
tests/keys.py."""

from __future__ import annotations

import gzip
import random
import struct
import zipfile
from pathlib import Path

import pytest

from gitcli import keyscan
from keys import make_key
from keyscan.sources import inflate
from test_archives import tar_bytes, zip_bytes

Places = list[tuple[str, int, int]]


@pytest.fixture
def keys() -> list[str]:
    rng = random.Random(31)
    return [make_key("repeatposts", rng) for _ in range(12)]


@pytest.fixture
def without_isal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which `import isal` fails, as where it has no wheel."""
    shadow = tmp_path_factory.mktemp("no-isal")
    (shadow / "isal").mkdir()
    (shadow / "isal" / "__init__.py").write_text("raise ImportError('isal hidden by the test')\n")
    return {"PYTHONPATH": f"{shadow}:{Path(__file__).parent.parent / 'src'}"}


def scan(folder: Path, env: dict[str, str] | None = None) -> tuple[Places, int, str]:
    done = keyscan("scan", "--format", "json", ".", cwd=folder, env=env)
    assert done.code in (0, 1), done.err
    assert "Traceback" not in done.err
    places = sorted((f["path"], f["line"], f["column"]) for f in done.findings)
    return places, done.report["summary"]["skipped_files"], done.err


def text(rng: random.Random, lines: int) -> bytes:
    words = ("alpha", "beta", "gamma", "delta", "config", "value", "=", "#", "url")
    return b"".join(
        " ".join(rng.choice(words) for _ in range(8)).encode() + b"\n" for _ in range(lines)
    )


def test_the_inflater_here_is_isal() -> None:
    # the dependency is declared for this platform: the fast path is the one tested
    assert inflate._zlib().__name__ == "isal.isal_zlib"


def test_members_read_the_same_with_isal_and_with_zlib_alone(
    tmp_path: Path, keys: list[str], without_isal: dict[str, str]
) -> None:
    rng = random.Random(5)
    big = text(rng, 60_000)  # ~2.7 MB: many of the inflater's pieces
    big_with_key = big + f"token = {keys[0]}\n".encode()  # past every piece's edge
    line = 60_001
    files = {
        "a.zip": zip_bytes({"big.txt": big_with_key, "small.txt": f"k={keys[1]}\n".encode(),
                            "empty.txt": b""}),
        "stored.zip": zip_bytes({"s/big.txt": big_with_key}, zipfile.ZIP_STORED),
        # a tar inside a deflated member is read 512 bytes at a time
        "tar-in-zip.zip": zip_bytes(
            {"t.tar": tar_bytes({"etc/x": big, "etc/key": f"{keys[2]}\n".encode()})}
        ),
        "methods.zip": zip_bytes({"b.txt": f"{keys[3]}\n".encode()}, zipfile.ZIP_BZIP2),
        "lz.zip": zip_bytes({"l.txt": f"{keys[4]}\n".encode()}, zipfile.ZIP_LZMA),
        "two.gz": gzip.compress(big) + gzip.compress(f"{keys[5]}\n".encode()),
        "t.tar.gz": gzip.compress(tar_bytes({"deep/k": f"\n{keys[6]}\n".encode()})),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    expected = sorted([
        ("a.zip!big.txt", line, 9),
        ("a.zip!small.txt", 1, 3),
        ("stored.zip!s/big.txt", line, 9),
        ("tar-in-zip.zip!t.tar!etc/key", 1, 1),
        ("methods.zip!b.txt", 1, 1),
        ("lz.zip!l.txt", 1, 1),
        ("two.gz", line, 1),
        ("t.tar.gz!deep/k", 2, 1),
    ])
    fast = scan(tmp_path)
    slow = scan(tmp_path, without_isal)
    assert fast == (expected, 0, "")
    assert slow == fast


def damaged_zip(keys: list[str]) -> bytes:
    """Three members: `bad-crc` (its listed CRC-32 wrong), `cut` (listed as fewer
    compressed bytes than its stream holds), `fine`."""
    rng = random.Random(9)
    raw = bytearray(zip_bytes({
        "bad-crc.txt": f"{keys[8]}\n".encode(),
        "cut.txt": text(rng, 3000) + f"{keys[9]}\n".encode(),
        "fine.txt": f"{keys[10]}\n".encode(),
    }))
    at = raw.index(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", raw, at + 28)[0]
        name = bytes(raw[at + 46 : at + 46 + name_length])
        if name == b"bad-crc.txt":
            struct.pack_into("<I", raw, at + 16, struct.unpack_from("<I", raw, at + 16)[0] ^ 1)
        if name == b"cut.txt":
            size = struct.unpack_from("<I", raw, at + 20)[0]
            struct.pack_into("<I", raw, at + 20, size // 2)
        at = raw.find(b"PK\x01\x02", at + 4)
    return bytes(raw)


def test_damaged_members_warn_each_and_the_rest_is_scanned(
    tmp_path: Path, keys: list[str], without_isal: dict[str, str]
) -> None:
    (tmp_path / "d.zip").write_bytes(damaged_zip(keys))
    for env in (None, without_isal):
        places, skipped, err = scan(tmp_path, env)
        # bad-crc's data was scanned before its end showed the damage: found, and warned
        assert ("d.zip!bad-crc.txt", 1, 1) in places
        assert ("d.zip!fine.txt", 1, 1) in places
        assert not any(path == "d.zip!cut.txt" and line > 1000 for path, line, _ in places)
        assert skipped == 2 == err.count("keyscan: warning:")
        assert "d.zip!bad-crc.txt: damaged" in err and "d.zip!cut.txt: damaged" in err
