"""Blobs read straight from git's pack files: inflated and rebuilt here, not piped.

`git cat-file --batch` inflates every blob, rebuilds every delta and writes the
whole text down a pipe for Python to copy back: for a history, that was most of
`keyscan git`'s time. A pack is a simple format (git's
Documentation/gitformat-pack.txt): each object is a zlib stream at the offset
its `.idx` lists, and a delta is a list of "copy these bytes of the base" and
"insert these bytes" instructions. Read here, a blob costs one inflate and one
join, and the instructions say which part of it the edit changed, which is all
a scan of a delta of a quiet base has to look at (see `Edit`). Python pays per
instruction, so callers leave deltas of many instructions to git (`delta_size`,
`adopt`).

Only what this module reads with certainty is read here: packs with a version 2
index (git's default since 2007). Loose objects are not in any pack, and an
object found damaged or odd raises `PackError`: callers read those through
`git cat-file` (`sources/git.py`, still the only module that runs git).
"""

from __future__ import annotations

import contextlib
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from keyscan.errors import KeyscanError
from keyscan.sources import git, inflate
from keyscan.sources.readat import ReadAt

Location = tuple[int, int]  # (pack number, offset of the object in that pack)

BLOB, OFS_DELTA, REF_DELTA = 3, 6, 7  # object types in a pack entry's header
MAX_ALTERNATES = 5  # how deep git itself follows objects/info/alternates
HASH_SIZES = {"sha1": 20, "sha256": 32}
JOIN_GAP = 4096  # changed spans closer than this are reported as one: fewer, longer checks
# No object bigger than this is inflated or rebuilt here, whatever its header claims:
# callers read bigger blobs through git, in pieces.
MAX_OBJECT = 256 << 20
HEADER = 64  # bytes that hold any entry's header: two 10-byte sizes and a 32-byte id


class PackError(Exception):
    """An object this module cannot read with certainty: read it through git instead."""


class Edit(NamedTuple):  # a tuple: one is made per delta read, in a history's hot loop
    """How a blob stored as a delta of the blob at `base` differs from it.

    The blob is pieces of the base, in any order, and inserted bytes: `changed`
    covers the inserted spans, and (as an empty span) each place where two pieces
    that were not adjacent in the base meet; spans less than `JOIN_GAP` apart are
    given as one. A keyword in no changed span and across none lies inside one
    piece, so the base holds it too.
    """

    base: Location
    changed: tuple[tuple[int, int], ...]


def object_dirs(repo: git.GitRepo) -> list[Path]:
    """`repo`'s objects folder and its alternates' (as deep as git follows them)."""
    found: list[Path] = []
    todo = [git.objects_dir(repo)]
    for _ in range(MAX_ALTERNATES + 1):
        nested: list[Path] = []
        for objects in todo:
            if objects not in found:
                found.append(objects)
                nested += _alternates(objects)
        todo = nested
    return found


def all_objects(repo: git.GitRepo) -> list[str]:
    """Every object id in `repo`'s packs and loose folders (and its alternates'), as git
    would list them; read here, so git never touches each one to list it."""
    hash_size = HASH_SIZES.get(repo.object_format, 20)
    found: dict[str, None] = {}
    for path in pack_files(repo):
        try:
            found.update((name.hex(), None) for name, _ in Index(path, hash_size).entries())
        except (OSError, PackError):
            continue
    for objects in object_dirs(repo):
        try:
            folders = [p for p in objects.iterdir() if len(p.name) == 2]
        except OSError:
            continue
        for folder in folders:
            try:
                found.update((folder.name + p.name, None) for p in folder.iterdir())
            except OSError:
                continue
    return list(found)


def check_store(repo: git.GitRepo) -> None:
    """Refuse (one error line) an object store git itself would hang on: a pack file,
    pack index or alternates list that is a FIFO, socket or device (reading one blocks
    forever, in git as here). Nothing of it is opened: only `lstat`."""
    import stat

    for objects in object_dirs(repo):
        files = [objects / "info" / "alternates", objects / "info" / "packs"]
        with contextlib.suppress(OSError):
            files += list((objects / "pack").iterdir())
        for path in files:
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                raise KeyscanError(
                    f"{path} is not a regular file (a FIFO, socket or device): git would wait "
                    "on it forever; remove it (or the objects/info/alternates line naming "
                    "its folder) and scan again")


def pack_files(repo: git.GitRepo) -> list[Path]:
    """The `.pack` files (with a `.idx` beside them) of `repo` and of its alternates."""
    found: list[Path] = []
    todo = [git.objects_dir(repo)]
    seen: set[Path] = set()
    for _ in range(MAX_ALTERNATES + 1):
        nested: list[Path] = []
        for objects in todo:
            if objects in seen:
                continue
            seen.add(objects)
            found += sorted(p.with_suffix(".pack") for p in (objects / "pack").glob("pack-*.idx")
                            if p.with_suffix(".pack").is_file())
            nested += _alternates(objects)
        todo = nested
    return found


def _alternates(objects: Path) -> list[Path]:
    import stat

    listed = objects / "info" / "alternates"
    try:
        if not stat.S_ISREG(listed.stat().st_mode):
            return []  # never opened: a FIFO would block (check_store says so)
        text = listed.read_text("utf-8", "surrogateescape")
    except OSError:
        return []
    lines = [line.strip() for line in text.splitlines()]
    return [(objects / line).resolve() for line in lines if line and not line.startswith("#")]


class Index:
    """A pack's `.idx` (version 2): object names, sorted, and each one's offset. Read by
    offset, never whole (a big repository's is hundreds of MB) and never mapped (see
    `readat`)."""

    def __init__(self, pack: Path, hash_size: int) -> None:
        try:
            self._file = file = ReadAt(pack.with_suffix(".idx"))
        except OSError as error:
            raise PackError(f"{pack.name}: its index cannot be read ({error})") from None
        head = file.read(0, 8 + 256 * 4)
        if head[:8] != b"\xfftOc\x00\x00\x00\x02":
            raise PackError(f"{pack.name}: not a version 2 pack index")
        self._fanout = array("I", head[8:])
        if self._fanout.itemsize != 4:
            raise PackError("this platform has no 4-byte array type")  # git reads the pack
        if sys.byteorder == "little":
            self._fanout.byteswap()  # stored big-endian
        self.count = self._fanout[255]
        self._size = hash_size
        self._names = 8 + 256 * 4
        self._offsets = self._names + self.count * (hash_size + 4)
        self._large = self._offsets + self.count * 4
        if file.size < self._large + 2 * hash_size:
            raise PackError(f"{pack.name}: its index is cut short")
        # of the pack it belongs to
        self.checksum = file.pread(file.size - 2 * hash_size, hash_size)

    def close(self) -> None:
        self._file.close()

    def offsets(self, wanted: Iterable[str]) -> dict[str, int]:
        """Object id -> offset, for the ids (hex) among `wanted` that this pack holds."""
        table = self._table()
        todo = wanted if isinstance(wanted, (set, frozenset)) else set(wanted)
        found: dict[str, int] = {}
        step = 2 * self._size
        for first, chunk in self._name_chunks():  # a chunk of names at a time
            hexed = chunk.hex()
            # One pass, a set lookup per name: faster than intersecting the chunk's names
            # with `todo` and then finding each hit's position through a dict of them all.
            hits = [(name, first + at) for at, name in
                    enumerate(hexed[at : at + step] for at in range(0, len(hexed), step))
                    if name in todo]
            for oid, at in hits:
                offset = table[at]
                found[oid] = offset if offset < 0x80000000 else self._offset(at)
        return found

    def first_names(self, count: int) -> list[bytes]:
        """The raw names of the first `count` objects (the smallest: names are sorted)."""
        many, size = min(count, self.count), self._size
        names = self._whole(self._names, many * size)
        return [names[at : at + size] for at in range(0, many * size, size)]

    def all_offsets(self) -> list[int]:
        """The offset of every object (in name order), in a few C calls."""
        table = self._table()
        if not table or max(table) < 0x80000000:
            return table.tolist()  # no pack past 2 GiB: none in the table of 8-byte offsets
        return [o if o < 0x80000000 else self._offset(n) for n, o in enumerate(table)]

    def entries(self) -> list[tuple[bytes, int]]:
        """(raw id, offset) of every object in the pack."""
        offsets, size = self.all_offsets(), self._size
        return [(chunk[n * size : (n + 1) * size], offsets[first + n])
                for first, chunk in self._name_chunks() for n in range(len(chunk) // size)]

    def find(self, name: bytes) -> int | None:
        """The offset of the object named `name` (raw), or None: a binary search."""
        size, names = self._size, self._names
        low = self._fanout[name[0] - 1] if name[0] else 0
        high = self._fanout[name[0]]
        while low < high:
            middle = (low + high) // 2
            here = self._file.pread(names + middle * size, size)
            if len(here) != size:
                raise PackError("a pack index was cut short during the scan")
            if here == name:
                return self._offset(middle)
            low, high = (middle + 1, high) if here < name else (low, middle)
        return None

    def _table(self) -> array[int]:
        """The 4-byte offsets of every object, in name order (past 2 GiB: see `_offset`)."""
        table = array("I", self._whole(self._offsets, self.count * 4))
        if sys.byteorder == "little":
            table.byteswap()
        return table

    def _name_chunks(self, step: int = 1 << 16) -> Iterator[tuple[int, bytes]]:
        """(position of the first, raw names) of every object, `step` names at a time."""
        size = self._size
        for first in range(0, self.count, step):
            many = min(step, self.count - first)
            yield first, self._whole(self._names + first * size, many * size)

    def _whole(self, at: int, size: int) -> bytes:
        data = self._file.pread(at, size)
        if len(data) != size:
            raise PackError("a pack index was cut short during the scan")
        return data

    def _offset(self, position: int) -> int:
        offset = int.from_bytes(self._whole(self._offsets + position * 4, 4), "big")
        if offset & 0x80000000:  # past 2 GiB: an index into the table of 8-byte offsets
            at = self._large + (offset & 0x7FFFFFFF) * 8
            if at + 8 > self._file.size - 2 * self._size:
                raise PackError("a large offset points outside its pack index")
            offset = int.from_bytes(self._whole(at, 8), "big")
        return offset


@dataclass(frozen=True, slots=True)
class Pack:
    """A pack file and the hash it ends with, as its index named it when it was located:
    a pack repacked under the same name since holds other objects at those offsets."""

    path: Path
    checksum: bytes


def locate(paths: list[Path], oids: list[str], hash_size: int
           ) -> tuple[dict[str, Location], list[Pack]]:
    """Object id -> where it is stored, for the ids found in the packs at `paths` (first
    pack wins); and the packs that the locations' numbers refer to."""
    wanted = set(oids)
    found: dict[str, Location] = {}
    packs: list[Pack] = []
    for path in paths:
        if not wanted:
            break
        try:
            index = Index(path, hash_size)
            if _trailer(path, hash_size) != index.checksum:
                continue  # not the pack this index was written for (a repack racing us?)
            offsets = index.offsets(wanted)
        except (OSError, PackError):
            continue  # its objects are read through git
        number = len(packs)
        found.update((oid, (number, offset)) for oid, offset in offsets.items())
        wanted.difference_update(offsets)
        packs.append(Pack(path, index.checksum))
    return found, packs


def _trailer(path: Path, hash_size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(-hash_size, 2)
        return file.read()


class PackReader:
    """Blobs out of `packs`, rebuilt from their deltas, with the bases still needed kept.

    `uses` counts, per location, the blobs still to be read that are stored as a
    delta of it: a rebuilt blob stays in memory (at most `keep_bytes` in all)
    until its last delta has been read; a base not kept is rebuilt again.
    """

    def __init__(self, packs: list[Pack], hash_size: int, uses: Counter[Location],
                 keep_bytes: int) -> None:
        self._packs = packs
        self._hash_size = hash_size
        self._files: dict[int, ReadAt] = {}
        self._indexes: dict[int, Index] = {}
        self._uses = uses
        self._kept: dict[Location, bytes] = {}
        self._kept_bytes = 0
        self._keep_bytes = keep_bytes
        # headers read by `delta_size`, for the `read` that follows
        self._headers: dict[Location, tuple[int, int, int, Location | None]] = {}

    def __enter__(self) -> PackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._kept.clear()
        for file in self._files.values():
            file.close()
        for index in self._indexes.values():
            index.close()

    def read(self, where: Location) -> tuple[bytes, Edit | None]:
        """The blob stored at `where`, and how it differs from its delta base (if any)."""
        try:
            header = self._headers.pop(where, None)
            kind, size, start, base = header if header is not None else self._header(where)
            if kind == BLOB:
                data, edit = self._inflate(where[0], start, size), None
            else:
                assert base is not None
                delta = self._inflate(where[0], start, size)
                data, changed = apply_delta(self._rebuild(base), delta)
                edit = Edit(base, changed)
                self._used(base)
        except inflate.errors(OSError, IndexError, ValueError, OverflowError) as error:
            raise PackError(f"damaged pack object at {where}: {error}") from None
        self._keep(where, data)
        return data, edit

    def delta_size(self, where: Location) -> int:
        """How many bytes of delta the blob at `where` is stored as (0: stored whole). Its
        header is kept for the `read` that follows."""
        header = self._headers[where] = self._header(where)
        return 0 if header[0] == BLOB else header[1]

    def adopt(self, where: Location, data: bytes) -> tuple[Location | None, bytes | None]:
        """Take the blob at `where` as git rebuilt it (see `delta_size`): kept for its own
        deltas as if read here. Its delta base, and that base's text if still kept."""
        try:
            header = self._headers.pop(where, None)
            base = (header if header is not None else self._header(where))[3]
        except PackError:  # cut short since git read it: it has no base to settle here
            base = None
        self._keep(where, data)
        if base is None:
            return None, None
        old = self._kept.get(base)
        self._used(base)
        return base, old

    def _rebuild(self, where: Location) -> bytes:
        """The blob at `where`, from what is kept or down its chain of deltas."""
        chain: list[tuple[Location, int, int]] = []  # deltas above the first text found
        while (data := self._kept.get(where)) is None:
            kind, size, start, base = self._header(where)
            if kind == BLOB:
                data = self._inflate(where[0], start, size)
                break
            if base is None or len(chain) > 10_000:
                raise PackError(f"object at {where} is not a blob")
            chain.append((where, start, size))
            where = base
        self._keep(where, data)
        for above, start, size in reversed(chain):
            data = apply_delta(data, self._inflate(above[0], start, size))[0]
            self._keep(above, data)
        return data

    def _header(self, where: Location) -> tuple[int, int, int, Location | None]:
        """(type, inflated size, where the zlib stream starts, delta base or None)."""
        try:
            return self._parse_header(where)
        except (OSError, IndexError, ValueError) as error:  # cut short, unreadable, gone
            raise PackError(f"damaged pack object at {where}: {error}") from None

    def _parse_header(self, where: Location) -> tuple[int, int, int, Location | None]:
        head = self._file(where[0]).read(where[1], HEADER)  # short at a pack's end
        byte = head[0]
        kind, size, shift, at = (byte >> 4) & 7, byte & 15, 4, 0
        while byte & 0x80:
            at += 1
            byte = head[at]
            size |= (byte & 0x7F) << shift
            shift += 7
        at += 1
        if kind == OFS_DELTA:  # base at a smaller offset, in this pack
            byte = head[at]
            back = byte & 0x7F
            while byte & 0x80:
                at += 1
                byte = head[at]
                back = ((back + 1) << 7) | (byte & 0x7F)
            if not 0 < back <= where[1]:
                raise PackError(f"object at {where} has a delta base outside its pack")
            return kind, size, where[1] + at + 1, (where[0], where[1] - back)
        if kind == REF_DELTA:  # base named by its id, in any pack
            name = head[at : at + self._hash_size]
            if len(name) != self._hash_size:
                raise PackError(f"object at {where} is cut short")
            return kind, size, where[1] + at + self._hash_size, self._find(name)
        if kind != BLOB:
            raise PackError(f"object at {where} is not a blob")
        return kind, size, where[1] + at, None

    def _find(self, name: bytes) -> Location:
        for number, pack in enumerate(self._packs):
            index = self._indexes.get(number)
            if index is None:
                index = self._indexes[number] = Index(pack.path, self._hash_size)
                if index.checksum != pack.checksum:
                    raise PackError(f"{pack.path.name} was repacked during the scan")
            offset = index.find(name)
            if offset is not None:
                return number, offset
        raise PackError(f"delta base {name.hex()} is in no pack")

    def _inflate(self, number: int, start: int, size: int) -> bytes:
        # zlib never grows data by more than 1/1024 plus a few bytes, so the stream ends
        # inside this slice; and no more than the header's size (+1, to notice) comes out,
        # whatever the stream holds.
        if size > MAX_OBJECT:
            raise PackError(f"an object at offset {start} claims {size} bytes")
        stream = inflate.decompressobj()
        chunk = self._file(number).read(start, size + (size >> 10) + 64)
        data = stream.decompress(chunk, size + 1)
        if len(data) != size or not stream.eof:
            raise PackError(f"damaged zlib stream at offset {start}")
        return data

    def _file(self, number: int) -> ReadAt:
        file = self._files.get(number)
        if file is None:
            pack = self._packs[number]
            file = ReadAt(pack.path)
            if file.pread(file.size - self._hash_size, self._hash_size) != pack.checksum:
                file.close()
                raise PackError(f"{pack.path.name} was repacked during the scan")
            self._files[number] = file
        return file

    def _keep(self, where: Location, data: bytes) -> None:
        if (where not in self._kept and self._uses[where] > 0
                and self._kept_bytes + len(data) <= self._keep_bytes):
            self._kept[where] = data
            self._kept_bytes += len(data)

    def _used(self, where: Location) -> None:
        self._uses[where] -= 1
        if self._uses[where] <= 0 and where in self._kept:
            self._kept_bytes -= len(self._kept.pop(where))


def apply_delta(base: bytes, delta: bytes) -> tuple[bytes, tuple[tuple[int, int], ...]]:
    """The text `delta` makes of `base`, and the spans of it the edit changed (see `Edit`;
    spans less than `JOIN_GAP` apart are given as one)."""
    at, source = _varint(delta, 0)
    at, target = _varint(delta, at)
    if source != len(base):
        raise PackError("a delta does not fit its base")
    if target > MAX_OBJECT:
        raise PackError(f"a delta claims to make {target} bytes")
    view = memoryview(base)
    pieces: list[memoryview | bytes] = []
    append = pieces.append
    changed: list[tuple[int, int]] = []
    low = high = -JOIN_GAP - 1  # the changed span being grown
    done = 0  # bytes made so far
    follows = 0  # the base offset a copy continuing the last piece would start at
    end = len(delta)
    while at < end:  # the hot loop of a history scan: kept flat
        op = delta[at]
        at += 1
        if op & 0x80:  # copy: bits 0-3 say which offset bytes follow, bits 4-6 size bytes
            offset = size = 0
            for shift in _OFFSET_SHIFTS[op]:
                offset |= delta[at] << shift
                at += 1
            for shift in _SIZE_SHIFTS[op]:
                size |= delta[at] << shift
                at += 1
            size = size or 0x10000
            if offset + size > source:
                raise PackError("a delta copies past the end of its base")
            append(view[offset : offset + size])
            if offset != follows:  # pieces that were apart in the base meet here
                if done > high + JOIN_GAP:
                    if high >= 0:
                        changed.append((low, high))
                    low = done
                high = done
            follows = offset + size
            done += size
        elif op:  # insert the next `op` bytes
            if at + op > end:
                raise PackError("a delta ends inside an insert")
            append(delta[at : at + op])
            at += op
            if done > high + JOIN_GAP:
                if high >= 0:
                    changed.append((low, high))
                low = done
            done += op
            high = done
            follows = -1
        else:
            raise PackError("a delta holds the reserved instruction 0")
    if high >= 0:
        changed.append((low, high))
    data = b"".join(pieces)
    if len(data) != target:
        raise PackError("a delta makes a text of the wrong size")
    return data, tuple(changed)


# Per copy instruction byte: the shifts of the offset and size bytes that follow it.
_OFFSET_SHIFTS = [tuple(8 * bit for bit in range(4) if op & (1 << bit)) for op in range(256)]
_SIZE_SHIFTS = [tuple(8 * bit for bit in range(3) if op & (16 << bit)) for op in range(256)]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A delta header's size: 7 bits a byte, least significant first."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return at, value


def delta_cycles(paths: list[Path], hash_size: int) -> set[str]:
    """The ids of objects whose delta chain never ends (a delta of a delta … of itself):
    git loops on them forever, listing them included, so they must never reach it. Only
    deltas by id (REF_DELTA) can close a cycle (a base by offset comes earlier in its
    pack), and git writes those rarely: a pack with none costs one byte read per object."""
    names: dict[bytes, Location] = {}  # raw id -> where
    bases: dict[Location, Location | bytes | None] = {}  # delta -> its base (id: by name)
    files: dict[int, ReadAt] = {}
    indexes: dict[int, Index] = {}
    by_id = False
    try:
        for number, path in enumerate(paths):
            try:
                index = Index(path, hash_size)
                files[number] = file = ReadAt(path)
                # the type nibble of every entry (a small pack read whole, a big one a
                # block at a time): one byte each, names only if it matters
                kinds = file.bytes_at(index.all_offsets()).translate(_BY_ID)
                by_id = by_id or b"\1" in kinds
            except (OSError, PackError):
                continue
            indexes[number] = index
        if not by_id:
            return set()
        for number, index in indexes.items():
            file = files[number]
            for name, offset in sorted(index.entries(), key=lambda entry: entry[1]):
                names[name] = (number, offset)
                head = file.read(offset, HEADER)
                if head and (head[0] >> 4) & 7 in (REF_DELTA, OFS_DELTA):
                    bases[(number, offset)] = _base(head, number, offset, hash_size)
    except (OSError, IndexError, PackError):
        return set()  # a pack cut short: its objects are unreadable to git as well
    finally:
        for file in files.values():
            file.close()
        for index in indexes.values():
            index.close()
    return _cycling(names, bases)


# A pack entry's first byte -> 1 if its type is REF_DELTA, else 0 (for bytes.translate).
_BY_ID = bytes((byte >> 4) & 7 == REF_DELTA for byte in range(256))


def _cycling(names: dict[bytes, Location],
             bases: dict[Location, Location | bytes | None]) -> set[str]:
    bad: set[Location] = set()
    good: set[Location] = set()
    for start in bases:
        chain: list[Location] = []
        seen: set[Location] = set()
        where: Location | None = start
        while where is not None and where in bases and where not in good and where not in bad:
            if where in seen:
                bad.update(chain)
                break
            seen.add(where)
            chain.append(where)
            base = bases[where]
            where = names.get(base) if isinstance(base, bytes) else base
        else:
            (bad if where in bad else good).update(chain)
    by_place = {place: name for name, place in names.items()}
    return {by_place[place].hex() for place in bad if place in by_place}


def _base(head: bytes, number: int, offset: int, hash_size: int) -> Location | bytes | None:
    """The base of the delta whose entry starts with `head` (at `offset`): its id (by id)
    or where it is (by offset)."""
    at = 0
    kind = (head[at] >> 4) & 7
    while head[at] & 0x80:
        at += 1
    at += 1
    if kind == REF_DELTA:
        return head[at : at + hash_size]
    byte = head[at]
    back = byte & 0x7F
    while byte & 0x80:
        at += 1
        byte = head[at]
        back = ((back + 1) << 7) | (byte & 0x7F)
    return (number, offset - back) if 0 < back <= offset else None
