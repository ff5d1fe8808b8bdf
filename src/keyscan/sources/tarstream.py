"""Members of a tar stream, read forward only, never trusting a header.

Not `tarfile`: it reads a pax or GNU long-name header's claimed size in one piece (a
header claiming 1 TB is a 1 TB allocation) and needs to seek. Here every read is
bounded, a member's data is handed out as a reader over the stream itself (nothing
is held but the current window), and skipping a member reads and discards, so a
size that lies costs what the stream really holds, no more.

Formats: v7/ustar/GNU/pax headers (ustar prefix, base-256 sizes, GNU `L` long names,
pax `path` and `size`). Only regular files have content; links, folders and devices
are passed over.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from keyscan.sources.archive import Reader

BLOCK = 512
MAX_HEADER_DATA = 1 << 20  # a pax or long-name record longer than this is damage, not a name
SKIP_CHUNK = 1 << 20
REGULAR = (b"0", b"\0", b"7")


class TarDamage(Exception):
    """The stream is not a readable tar from here on."""


class TarMember:
    """One regular file of the stream; `read` serves its data, at most `size` bytes."""

    def __init__(self, stream: Reader, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._stream = stream
        self._left = size

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        data = self._stream.read(want)
        if not data:
            raise TarDamage(f"{self.name}: the stream ends inside the member")
        self._left -= len(data)
        return data

    def finish(self) -> None:
        """Read past what is left of the data and its padding."""
        _discard(self._stream, self._left + (-self.size % BLOCK))
        self._left = 0


def members(stream: Reader) -> Iterator[TarMember]:
    """Every regular file, in stream order. Raises TarDamage where the stream breaks;
    the caller must consume (or leave) each member before asking for the next."""
    for block, kind, size, name, _link in _headers(stream):
        if name.endswith("/"):  # a v7 folder: a regular type, a name ending in '/'
            kind = b"5"
        if kind == b"S":  # old GNU sparse: more map blocks may follow; the data is the chunks
            extended = block[482]
            while extended:
                extended = _exact(stream, BLOCK)[504]
        if kind in REGULAR or kind == b"S":
            member = TarMember(stream, name, size)
            yield member
            member.finish()
        else:
            _discard(stream, size + (-size % BLOCK) if kind not in (b"1", b"2") else 0)


def _headers(stream: Reader) -> Iterator[tuple[bytes, bytes, int, str, str]]:
    """(header block, type, data size, name, link target) of every entry, with the
    pax and GNU long-name records before it folded in; the stream is left at the
    entry's data, which the caller reads or skips before asking for the next."""
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    while True:
        block = _exact(stream, BLOCK, allow_eof=True)
        if not block or block == bytes(BLOCK):
            return  # end of archive (a missing second zero block is common and harmless)
        _check_sum(block)
        kind = block[156:157]
        size = _number(block[124:136])
        if kind in (b"x", b"g", b"L", b"K"):
            if size > MAX_HEADER_DATA:
                raise TarDamage(f"a header record claims {size} bytes")
            data = _exact(stream, size + (-size % BLOCK))[:size]
            if kind == b"L":
                long_name = _text(data.split(b"\0", 1)[0])
            elif kind == b"K":
                long_link = _text(data.split(b"\0", 1)[0])
            elif kind == b"x":
                pax = _pax(data)
            continue
        name = pax.get("GNU.sparse.name") or pax.get("path") or long_name or _name(block)
        link = pax.get("linkpath") or long_link or _text(block[157:257].split(b"\0", 1)[0])
        if "size" in pax:
            size = _pax_size(pax["size"])
        long_name, long_link, pax = None, None, {}
        yield block, kind, size, name, link


def _name(block: bytes) -> str:
    name = block[0:100].split(b"\0", 1)[0]
    if block[257:262] == b"ustar" and block[257:263] != b"ustar ":  # POSIX, not old GNU
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return _text(name)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # base-256 (GNU), big-endian, sign bit set
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise TarDamage("a header's size is not a number") from None


def _check_sum(block: bytes) -> None:
    stored = block[148:156].split(b"\0", 1)[0].strip()
    try:
        expected = int(stored, 8)
    except ValueError:
        raise TarDamage("a header's checksum is not a number") from None
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if expected != unsigned:
        signed = unsigned - 256 * sum(1 for b in block[:148] + block[156:] if b > 127)
        if expected != signed:
            raise TarDamage("a header's checksum does not match")


def _pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    while data:
        length_text = data.partition(b" ")[0]
        try:
            length = int(length_text)
        except ValueError:
            raise TarDamage("a pax record is malformed") from None
        if length <= len(length_text):
            raise TarDamage("a pax record is malformed")
        record = data[len(length_text) + 1 : length]
        key, _, value = record.rstrip(b"\n").partition(b"=")
        records[_text(key)] = _text(value)
        data = data[length:]
    return records


def _pax_size(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TarDamage("a pax size is not a number") from None


def _exact(stream: Reader, size: int, allow_eof: bool = False) -> bytes:
    data = stream.read(size)
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            if allow_eof and not data:
                return b""
            raise TarDamage("the stream ends inside a header")
        data += more
    return data


def _discard(stream: Reader, size: int) -> None:
    while size > 0:
        data = stream.read(min(size, SKIP_CHUNK))
        if not data:
            raise TarDamage("the stream ends inside a member")
        size -= len(data)


class Entry:
    """Where an entry of a tar file lies (for random access to a file on disk)."""

    __slots__ = ("kind", "link", "offset", "size")

    def __init__(self, kind: bytes, offset: int, size: int, link: str) -> None:
        self.kind = kind  # b"0" regular, b"1" hard link, b"2" symlink, ...
        self.offset = offset  # of the data, from the start of the file
        self.size = size
        self.link = link  # a link's target, as stored


def index(file: Reader, max_entries: int = 1 << 20) -> dict[str, Entry]:
    """Every entry of a seekable tar file, by name ('./' and '/' stripped; first wins);
    data is seeked over, not read. Raises TarDamage where the file breaks."""
    import os

    entries: dict[str, Entry] = {}
    end = file.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
    file.seek(0)  # type: ignore[attr-defined]
    for _block, kind, size, name, link in _headers(file):
        if len(entries) >= max_entries:
            raise TarDamage(f"more than {max_entries} entries")
        offset = file.tell()  # type: ignore[attr-defined]
        stored = size if kind not in (b"1", b"2") else 0
        if offset + stored > end:
            raise TarDamage(f"{name}: the file ends inside it")
        entries.setdefault(clean_name(name), Entry(kind, offset, stored, link))
        file.seek(offset + stored + (-stored % BLOCK))  # type: ignore[attr-defined]
    return entries


def clean_name(name: str) -> str:
    while name.startswith(("/", "./")):
        name = name[1:] if name.startswith("/") else name[2:]
    return name
