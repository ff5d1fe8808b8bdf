"""Pack files written by hand, damaged on purpose: what `git index-pack` would refuse.

`write_pack(objects_dir, entries)` writes `pack-<hash>.pack` and a version 2 `.idx`
naming each entry by the object id given (git trusts the index: that is the point).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

COMMIT, TREE, BLOB, OFS_DELTA, REF_DELTA = 1, 2, 3, 6, 7


@dataclass
class Entry:
    oid: str  # the id the index gives it
    kind: int
    body: bytes  # inflated contents (for deltas: the delta instructions)
    size: int | None = None  # the size the header claims (default: len(body))
    base: str | None = None  # REF_DELTA: base id; OFS_DELTA: the oid of an earlier entry


def varint(value: int) -> bytes:
    """A delta header's size: 7 bits a byte, least significant first."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def copy(offset: int, size: int) -> bytes:
    """A delta copy instruction (size 0x10000 is written as no size bytes)."""
    op, args = 0x80, bytearray()
    for bit in range(4):
        if offset >> (8 * bit) & 0xFF:
            op |= 1 << bit
            args.append(offset >> (8 * bit) & 0xFF)
    if size != 0x10000:
        for bit in range(3):
            if size >> (8 * bit) & 0xFF:
                op |= 16 << bit
                args.append(size >> (8 * bit) & 0xFF)
    return bytes([op]) + bytes(args)


def _header(kind: int, size: int) -> bytes:
    out = bytearray([(kind << 4) | (size & 15)])
    size >>= 4
    while size:
        out[-1] |= 0x80
        out.append(size & 0x7F)
        size >>= 7
    return bytes(out)


def _ofs(distance: int) -> bytes:
    out = [distance & 0x7F]
    distance >>= 7
    while distance:
        distance -= 1
        out.append(0x80 | (distance & 0x7F))
        distance >>= 7
    return bytes(reversed(out))


def write_pack(objects: Path, entries: list[Entry]) -> Path:
    data = bytearray(b"PACK" + struct.pack(">II", 2, len(entries)))
    offsets: dict[str, int] = {}
    crcs: dict[str, int] = {}
    for entry in entries:
        start = len(data)
        offsets[entry.oid] = start
        raw = _header(entry.kind, len(entry.body) if entry.size is None else entry.size)
        if entry.kind == OFS_DELTA:
            assert entry.base is not None
            raw += _ofs(start - offsets[entry.base])
        elif entry.kind == REF_DELTA:
            assert entry.base is not None
            raw += bytes.fromhex(entry.base)
        raw += zlib.compress(entry.body)
        crcs[entry.oid] = zlib.crc32(raw)
        data += raw
    data += hashlib.sha1(data).digest()
    checksum = bytes(data[-20:])
    names = sorted(offsets)
    index = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    for first in range(256):
        index += struct.pack(">I", sum(1 for n in names if int(n[:2], 16) <= first))
    for name in names:
        index += bytes.fromhex(name)
    for name in names:
        index += struct.pack(">I", crcs[name])
    for name in names:
        index += struct.pack(">I", offsets[name])
    index += checksum
    index += hashlib.sha1(index).digest()
    pack_dir = objects / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    path = pack_dir / f"pack-{checksum.hex()}.pack"
    path.write_bytes(bytes(data))
    path.with_suffix(".idx").write_bytes(bytes(index))
    return path
