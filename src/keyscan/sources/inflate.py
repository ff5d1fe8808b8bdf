"""Deflate streams (git's pack objects, zip members, gzip) by the fastest inflater here.

`isal` (python-isal: Intel's ISA-L behind zlib's and gzip's own interfaces) inflates
about twice as fast as zlib on this project's machines (a .tar.gz of the archive
bench: 39 -> 18 ms; the history bench's 13,063 pack objects: 0.26 -> 0.14 s). It is a
dependency wherever it has wheels; without it, zlib and gzip do the same work,
slower. Imported when the first stream is inflated, never on the hook's path.

A zip member is read here rather than by `zipfile.ZipFile.open`, whose inflater is
zlib's: `ZipMember` reads a stored or deflated member's data straight from the
archive's file, in bounded pieces, and checks its CRC-32 and size at the end as
`zipfile` does. Other methods (bzip2, lzma) are left to `zipfile`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import zipfile
    from types import ModuleType
    from typing import IO, Protocol

    from keyscan.sources.archive import Reader

    class Decompressor(Protocol):  # what zlib.decompressobj() and isal's make
        eof: bool
        unconsumed_tail: bytes

        def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...

IN_CHUNK = 64 << 10  # compressed bytes read from the archive at a time
OUT_CHUNK = 256 << 10  # inflated bytes made at a time (small reads are served from them)
LOCAL_HEADER = 30
STORED, DEFLATED = 0, 8  # zipfile.ZIP_STORED, ZIP_DEFLATED (zipfile: only for archives)
METHODS = (STORED, DEFLATED)  # the ones `ZipMember` reads

_module: ModuleType | None = None


def _zlib() -> ModuleType:
    global _module
    if _module is None:
        try:
            from isal import isal_zlib

            _module = isal_zlib
        except ImportError:
            import zlib

            _module = zlib
    return _module


def decompressobj(wbits: int = 15) -> Decompressor:
    """A zlib-compatible decompressor (`wbits` as zlib's: 15 a zlib stream, -15 raw)."""
    made: Decompressor = _zlib().decompressobj(wbits)
    return made


def errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """`more`, and what the inflater raises on damaged data (`zlib.error` or isal's):
    for `except` clauses, which evaluate it only once something was raised."""
    import zlib

    return (*more, zlib.error, _zlib().error)


def gzip_reader(file: Reader) -> Reader:
    """The gzip stream `file` (its members one after the other), inflated. (isal's
    reader calls `readinto` too.)"""
    stream: IO[bytes] = file  # type: ignore[assignment]  # read() is all gzip calls
    try:
        from isal import igzip
    except ImportError:
        import gzip

        return gzip.GzipFile(fileobj=stream, mode="rb")
    return igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[no-untyped-call]


class ZipMember:
    """The data of a stored or deflated member (`info`) of the zip in `source`.

    `source` is shared with the `ZipFile` that listed it: every read seeks to this
    member's own place first. At most `IN_CHUNK` compressed and `OUT_CHUNK` inflated
    bytes are held. Damage raises `zipfile.BadZipFile` or EOFError (or the inflater's
    error) where it is met, a wrong CRC-32 or size once the data before it is served."""

    def __init__(self, source: IO[bytes], info: zipfile.ZipInfo) -> None:
        import zipfile

        source.seek(info.header_offset)
        local = source.read(LOCAL_HEADER)
        if len(local) < LOCAL_HEADER or local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("a member's local header is missing")
        skip = int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        zlib = _zlib()
        self._source = source
        self._at = info.header_offset + LOCAL_HEADER + skip  # the next compressed byte
        self._left = info.compress_size  # compressed bytes not read yet
        self._info = info
        deflated = info.compress_type == DEFLATED
        self._inflater = decompressobj(-15) if deflated else None
        self._crc32 = zlib.crc32
        self._pending = b""  # compressed bytes read, not inflated yet
        self._buffer = b""  # inflated bytes made, not served yet
        self._served = 0
        self._crc = 0
        self._made = 0
        self._ended = False
        self._damage: zipfile.BadZipFile | None = None
        self._bad = zipfile.BadZipFile

    def read(self, size: int = -1) -> bytes:
        if self._served >= len(self._buffer):
            self._buffer, self._served = self._more(max(size, OUT_CHUNK)), 0
        if size < 0 or (self._served == 0 and size >= len(self._buffer)):
            data = self._buffer[self._served :]
        else:
            data = self._buffer[self._served : self._served + size]
        self._served += len(data)
        return data

    def _more(self, want: int) -> bytes:
        """Up to `want` more bytes of the member; b"" at its (checked) end. A wrong
        CRC-32 or size is raised after the data is served: damage never hides a key."""
        if self._damage is not None:
            raise self._damage
        while not self._ended:
            if not self._pending and self._left > 0:
                self._source.seek(self._at)
                step = IN_CHUNK if self._inflater is not None else max(want, IN_CHUNK)
                self._pending = self._source.read(min(self._left, step))
                if not self._pending:
                    raise EOFError("the archive ends inside a member's data")
                self._at += len(self._pending)
                self._left -= len(self._pending)
            if self._inflater is None:
                data, self._pending = self._pending, b""
                self._ended = self._left == 0
            else:
                data = self._inflater.decompress(self._pending, want)
                self._pending = self._inflater.unconsumed_tail
                self._ended = self._inflater.eof
                if not data and not self._ended and not self._pending and self._left == 0:
                    raise EOFError("a member's deflate stream is cut short")
            if data:
                self._crc = self._crc32(data, self._crc)
                self._made += len(data)
            if self._ended:
                self._damage = self._checked()
            if data:
                return data
            if self._damage is not None:
                raise self._damage
        return b""

    def _checked(self) -> zipfile.BadZipFile | None:
        info = self._info
        if self._made != info.file_size:
            return self._bad(f"{self._made} bytes, not the {info.file_size} listed")
        if self._crc != info.CRC:
            return self._bad("a bad CRC-32")
        return None
