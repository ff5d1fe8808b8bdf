"""Archives in `keyscan scan`: recognised by content, nested, limited, hostile.

Every archive is built here with zipfile/tarfile/gzip/bz2/lzma at run time; keys come
from tests/keys.py. The command runs in a fresh process, as a user runs it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import struct
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from gitcli import keyscan
from keys import make_key
from keyscan.engine import Engine
from keyscan.model import Fragment
from keyscan.rules import load_builtin
from keyscan.sources import contents, driver
from keyscan.sources.archive import Limits


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def scan(folder: Path, *args: str) -> tuple[int, list[tuple[str, int, int]], dict[str, int], str]:
    done = keyscan("scan", "--format", "json", *args, ".", cwd=folder)
    assert done.code in (0, 1), done.err
    assert "Traceback" not in done.err
    places = sorted((f["path"], f["line"], f["column"]) for f in done.findings)
    return done.code, places, done.report["summary"], done.err


@pytest.fixture
def keys() -> list[str]:
    rng = random.Random(12)
    return [make_key("posteverywhere", rng) for _ in range(12)]


def test_every_kind_is_opened_by_content_not_name(tmp_path: Path, keys: list[str]) -> None:
    def line(n: int) -> bytes:
        return f"x = 1\n\n    API = '{keys[n]}'\n".encode()  # the key at 3:12

    inner = zip_bytes({"config/app.properties": line(1)})
    tarred = tar_bytes({"./etc/secret.env": line(3), "docs/readme": b"nothing"})
    files = {
        "dist/release.bin": zip_bytes({".env": line(0)}),  # a zip named .bin
        "lib/app.jar": zip_bytes({"lib/client.jar": inner, "META-INF/MANIFEST.MF": b"v"}),
        "wheels/pkg-1.0-py3-none-any.whl": zip_bytes({"pkg/settings.py": line(2)}),
        "backup.tgz.txt": gzip.compress(tarred),
        "b.tar.bz2": bz2.compress(tar_bytes({"b/key": line(4)})),
        "c.tar.xz": lzma.compress(tar_bytes({"c/key": line(5)})),
        "plain.tar": tar_bytes({"d/key": line(6)}),
        "notes.txt.gz": gzip.compress(line(7)),
        "report.docx": zip_bytes({"word/document.xml": line(8)}),
        "stored.zip": zip_bytes({"s.txt": line(9)}, zipfile.ZIP_STORED),
        "nested.tar.gz": gzip.compress(tar_bytes({"in/deep.zip": zip_bytes({"k": line(10)})})),
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    code, places, summary, err = scan(tmp_path)
    assert code == 1 and err == ""
    assert places == sorted(
        (path, 3, 12)
        for path in (
            "dist/release.bin!.env",
            "lib/app.jar!lib/client.jar!config/app.properties",
            "wheels/pkg-1.0-py3-none-any.whl!pkg/settings.py",
            "backup.tgz.txt!etc/secret.env",
            "b.tar.bz2!b/key",
            "c.tar.xz!c/key",
            "plain.tar!d/key",
            "notes.txt.gz",
            "report.docx!word/document.xml",
            "stored.zip!s.txt",
            "nested.tar.gz!in/deep.zip!k",
        )
    )
    assert summary["skipped_files"] == 0
    assert summary["files"] == 13  # members, not the archives holding them


def nested(levels: int, key: str) -> bytes:
    data = f"k = '{key}'\n".encode()
    for level in range(levels):
        data = zip_bytes({f"level{level}.zip" if level else "secret.txt": data})
    return data


def test_depth_limit_warns_counts_and_scans_the_rest(tmp_path: Path, keys: list[str]) -> None:
    (tmp_path / "deep.zip").write_bytes(nested(4, keys[0]))  # the key is at depth 4
    (tmp_path / "flat.zip").write_bytes(zip_bytes({"a.txt": f"{keys[1]}\n".encode()}))
    _, places, summary, err = scan(tmp_path)
    assert [p[0] for p in places] == [
        "deep.zip!level3.zip!level2.zip!level1.zip!secret.txt",
        "flat.zip!a.txt",
    ]
    _code, places, summary, err = scan(tmp_path, "--max-archive-depth", "3")
    assert [p[0] for p in places] == ["flat.zip!a.txt"]
    assert summary["skipped_files"] == 1
    assert err.count("keyscan: warning:") == 1
    assert "deep.zip!level3.zip!level2.zip!level1.zip: an archive nested deeper than " in err
    assert "--max-archive-depth 3" in err


def test_depth_zero_scans_archives_as_bytes(tmp_path: Path, keys: list[str]) -> None:
    stored = zip_bytes({"a": f"\n{keys[0]}\n".encode()}, zipfile.ZIP_STORED)
    (tmp_path / "s.zip").write_bytes(stored)
    _code, places, _summary, err = scan(tmp_path, "--max-archive-depth", "0")
    assert [p[0] for p in places] == ["s.zip"] and err == ""


def test_a_quine_like_nesting_stops_at_the_depth_limit(tmp_path: Path, keys: list[str]) -> None:
    (tmp_path / "q.zip").write_bytes(nested(30, keys[0]))
    _code, places, summary, err = scan(tmp_path)
    assert places == [] and summary["skipped_files"] == 1
    assert "nested deeper than --max-archive-depth 8" in err


def test_budget_of_decompressed_bytes(tmp_path: Path, keys: list[str]) -> None:
    first = f"{keys[0]}\n".encode()
    bomb = zip_bytes({"a.txt": first, "zeros": bytes(50 << 20), "z.txt": f"{keys[1]}\n".encode()})
    (tmp_path / "bomb.zip").write_bytes(bomb)
    (tmp_path / "other.zip").write_bytes(zip_bytes({"o.txt": f"{keys[2]}\n".encode()}))
    _, places, summary, err = scan(tmp_path, "--max-decompressed-bytes", "10MiB")
    # the budget is per outermost archive
    assert [p[0] for p in places] == ["bomb.zip!a.txt", "other.zip!o.txt"]
    assert summary["skipped_files"] == 1
    assert "bomb.zip!zeros: bomb.zip expands past --max-decompressed-bytes (10485760 bytes)" in err
    _code, places, summary, err = scan(tmp_path)
    assert len(places) == 3 and err == ""


def test_a_gzip_bomb_costs_only_its_budget(tmp_path: Path, keys: list[str]) -> None:
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(f"{keys[0]}\n".encode() + bytes(300 << 20)))
    started = time.monotonic()
    _code, places, _summary, err = scan(tmp_path, "--max-decompressed-bytes", "64M")
    assert time.monotonic() - started < 30
    assert places == [("bomb.gz", 1, 1)]  # what was read before the limit is still scanned
    assert "bomb.gz: bomb.gz expands past --max-decompressed-bytes" in err


def overlapping_bomb(key: str) -> bytes:
    """Many central-directory entries pointing into one deflated member (Fifield's kind)."""
    base = zip_bytes({"real.txt": f"{key}\n".encode(), "kernel": bytes(4 << 20)})
    start = base.index(b"PK\x01\x02")
    entries = base[start : base.index(b"PK\x05\x06")]
    kernel = entries[entries.index(b"PK\x01\x02", 4) :]  # its central-directory entry
    fake = b"".join(kernel.replace(b"kernel", f"k{n:05d}".encode()) for n in range(2000))
    directory = entries + fake
    count = 2 + 2000
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0)
    return base[:start] + directory + end


def test_overlapping_entries_bomb_is_refused(tmp_path: Path, keys: list[str]) -> None:
    (tmp_path / "overlap.zip").write_bytes(overlapping_bomb(keys[0]))
    started = time.monotonic()
    _code, places, summary, err = scan(tmp_path)
    assert time.monotonic() - started < 30
    assert places == [("overlap.zip!real.txt", 1, 1)]
    assert summary["skipped_files"] == 1
    assert "overlap.zip: 2000 members overlap others' data (a zip bomb), the first k00000" in err


def set_encrypted(data: bytes, name: str) -> bytes:
    raw = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    struct.pack_into("<H", raw, info.header_offset + 6, info.flag_bits | 1)
    entry = b"PK\x01\x02"
    at = raw.index(entry)
    while bytes(raw[at + 46 : at + 46 + len(name)]) != name.encode():
        at = raw.index(entry, at + 4)
    struct.pack_into("<H", raw, at + 8, info.flag_bits | 1)
    return bytes(raw)


def test_encrypted_member_warns_and_the_rest_is_scanned(tmp_path: Path, keys: list[str]) -> None:
    data = zip_bytes({"locked.txt": f"{keys[0]}\n".encode(), "open.txt": f"{keys[1]}\n".encode()})
    (tmp_path / "e.zip").write_bytes(set_encrypted(data, "locked.txt"))
    _code, places, summary, err = scan(tmp_path)
    assert places == [("e.zip!open.txt", 1, 1)]
    assert summary["skipped_files"] == 1
    assert "e.zip!locked.txt: an encrypted member; skipped" in err


def test_damaged_archives_warn_once_and_keep_the_rest(tmp_path: Path, keys: list[str]) -> None:
    stored = zip_bytes({"a.txt": f"\n{keys[0]}\n".encode()}, zipfile.ZIP_STORED)
    (tmp_path / "cut.zip").write_bytes(stored[: stored.index(b"PK\x01\x02")])  # no directory
    tarred = gzip.compress(tar_bytes({"one": f"{keys[1]}\n".encode(), "two": bytes(1 << 20)}))
    (tmp_path / "cut.tar.gz").write_bytes(tarred[: len(tarred) // 2 + 300])
    crc = bytearray(zip_bytes({"c.txt": f"{keys[2]}\n".encode(), "d.txt": f"{keys[3]}\n".encode()}))
    offset = zipfile.ZipFile(io.BytesIO(bytes(crc))).getinfo("c.txt").header_offset
    crc[offset + 14] ^= 0xFF  # the local header's CRC no longer matches
    (tmp_path / "crc.zip").write_bytes(bytes(crc))
    (tmp_path / "garbage.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    code, places, summary, err = scan(tmp_path)
    assert code == 1
    assert [p[0] for p in places] == ["crc.zip!c.txt", "crc.zip!d.txt", "cut.tar.gz!one", "cut.zip"]
    assert summary["skipped_files"] == err.count("keyscan: warning:") == 3
    assert "cut.zip: a damaged zip archive" in err
    assert "cut.tar.gz" in err and "garbage.gz: a damaged gzip stream" in err


def test_tar_headers_that_lie_cost_nothing(tmp_path: Path, keys: list[str]) -> None:
    good = tar_bytes({"first": f"{keys[0]}\n".encode()})
    header = bytearray(tarfile.TarInfo("huge").tobuf(format=tarfile.GNU_FORMAT))
    header[124:136] = b"\x80" + (10**12).to_bytes(11, "big")  # claims a terabyte
    header[148:156] = b"        "
    header[148:155] = f"{sum(header):06o}\0".encode()
    long_name = bytearray(tarfile.TarInfo("././@LongLink").tobuf(format=tarfile.GNU_FORMAT))
    long_name[156] = ord("L")
    long_name[124:136] = b"\x80" + (10**12).to_bytes(11, "big")
    long_name[148:156] = b"        "
    long_name[148:155] = f"{sum(long_name):06o}\0".encode()
    body = good[:1024] + bytes(header) + b"data" * 1000
    (tmp_path / "lies.tar.gz").write_bytes(gzip.compress(body))
    (tmp_path / "name.tar").write_bytes(good[:1024] + bytes(long_name) + bytes(4096))
    _code, places, summary, err = scan(tmp_path)
    assert [p[0] for p in places] == ["lies.tar.gz!first", "name.tar!first"]
    assert summary["skipped_files"] == 2 and "Traceback" not in err


def test_hostile_member_names_are_rendered_inert(tmp_path: Path, keys: list[str]) -> None:
    name = "../../etc/\x1b[31mred\nkeyscan: error: forged"
    (tmp_path / "h.zip").write_bytes(zip_bytes({name: f"{keys[0]}\n".encode()}))
    done = keyscan("scan", ".", cwd=tmp_path)
    assert done.code == 1 and "\x1b" not in done.out
    assert "h.zip!../../etc/\\x1b[31m" in done.out
    assert "\nkeyscan: error: forged" not in done.out  # a newline cannot forge a line
    # JSON keeps the name exactly
    done = keyscan("scan", "--format", "json", ".", cwd=tmp_path)
    assert [f["path"] for f in done.findings] == [f"h.zip!{name}"]


def test_a_bad_byte_count_is_one_error_line(tmp_path: Path) -> None:
    done = keyscan("scan", "--max-decompressed-bytes", "lots", ".", cwd=tmp_path)
    assert done.code == 2
    assert done.err.count("\n") == 1 and "expected a byte count" in done.err


def test_members_are_scanned_in_windows_with_their_own_lines(
    monkeypatch: pytest.MonkeyPatch, keys: list[str]
) -> None:
    monkeypatch.setattr(driver, "WINDOW", 64 << 10)
    monkeypatch.setattr(driver, "OVERLAP", 8 << 10)
    rng = random.Random(3)
    lines = [f"{rng.random()} " * rng.randint(1, 30) for _ in range(20000)]
    for n, key in enumerate(keys):
        lines[rng.randrange(len(lines))] += f" k{n}={key}"
    text = "\n".join(lines).encode()
    engine = Engine(load_builtin().rules)
    whole = sorted((f.secret, f.line, f.column) for f in engine.scan(Fragment(text, "m")))
    scanner = driver.Scanner(engine, contents.expander(Limits()))
    found = scanner.emit_stream("z.zip", [zip_bytes({"m": text})])
    assert sorted((f.secret, f.line, f.column) for f in found) == whole
    assert len(whole) == len(keys) and scanner.tally.bytes == len(text)
    assert scanner.tally.problems == []
    assert {f.path for f in found} == {"z.zip!m"}


def test_every_regular_file_of_cpythons_odd_test_tar_is_read() -> None:
    """CPython's own tar test file: v7, GNU, pax, sparse, signed checksums, long names."""
    import sysconfig

    path = Path(sysconfig.get_paths()["stdlib"]) / "test" / "testtar.tar"
    if not path.exists():
        pytest.skip("this Python ships without its test suite")
    engine = Engine(load_builtin().rules)
    into = contents.Scanned()
    with path.open("rb") as stream:
        contents.scan_stream(engine, stream, "t.tar", Limits(), into)
    assert into.problems == []
    with tarfile.open(path) as archive:
        regular = [m for m in archive if m.isreg() and not m.name.endswith("/")]
    assert into.files == len(regular)
