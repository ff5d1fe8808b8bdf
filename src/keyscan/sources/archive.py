"""Archives inside files: a stream in, its members' streams out, nested.

Recognised by content, never by name (`kind_of`): the zip family (jar, war, whl,
apk, nupkg, docx… are zips), tar, and gzip/bzip2/xz around anything. Pure
expansion: `expand` yields a `Leaf` for every member that is not an archive itself
(a reader the caller scans) and a `Problem` for everything skipped (the caller warns
and counts it). Nothing here knows about rules or the engine.

Paths: `outer!inner!member`, one `!` per container. Compression is not a level of
its own: `a.tar.gz!lib/x`, and a lone `notes.txt.gz` is reported at its own path
(its content has no name of its own). Depth: a file is depth 0, a member of it depth
1; an archive at `max_depth` is not opened (its bytes are scanned as they are).

Hostile input costs bounded time and memory: every read is bounded, sizes claimed
by headers are never trusted or allocated, every byte a decompressor yields counts
against `max_bytes` for the outermost archive (zip bombs, overlapping-entry bombs and
quines run out of it), overlapping zip entries are refused, a zip nested in a
stream is spooled to a temporary file past SPOOL_MEMORY, and a damaged member or
archive is one `Problem` while the rest is still expanded.

The caller must read each `Leaf` to its end (or leave it) before asking for the
next item: members of a tar stream are served straight off the stream.
"""

from __future__ import annotations

from keyscan.model import Value

# Not `from typing import TYPE_CHECKING`: see model.py (the hook imports this module).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Final, Protocol
    from zipfile import ZipInfo

    class Reader(Protocol):
        def read(self, size: int = ..., /) -> bytes: ...

HEAD = 264  # enough to recognise every kind: tar's magic is at offset 257
CHUNK = 1 << 20
SPOOL_MEMORY = 16 << 20  # a nested zip is held in memory up to this, then on disk
MAX_CENTRAL_DIRECTORY = 32 << 20  # ~700k entries: beyond, the entry list alone is the bomb
MAX_DEPTH = 8
MAX_BYTES = 1 << 30


class Limits(Value):
    __slots__ = ("max_bytes", "max_depth")

    def __init__(self, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> None:
        self.max_depth: Final = max_depth  # --max-archive-depth
        self.max_bytes: Final = max_bytes  # --max-decompressed-bytes, per outermost archive


def kind_of(head: bytes) -> str | None:
    """"zip", "tar", "gzip", "bzip2", "xz", or None: what the first HEAD bytes say."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh" and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bzip2"
    if head[257:262] == b"ustar":
        return "tar"
    return None


class Leaf:
    """A member to scan: `read` never raises; damage shows as the end of the data."""

    def __init__(self, path: str, stream: Reader) -> None:
        self.path = path
        self.failure: str | None = None  # why reading stopped early
        self._stream = stream

    def read(self, size: int = CHUNK) -> bytes:
        if self.failure is not None:
            return b""
        try:
            return self._stream.read(size)
        except _errors() as error:
            self.failure = _reason(error)
            return b""


class Problem(Value):
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message: Final = message  # one warning, naming what was skipped


def expand(stream: Reader, path: str, limits: Limits) -> Iterator[Leaf | Problem]:
    """The members of `stream` (an archive or not: a plain file is one Leaf, itself)."""
    run = _Run(limits, path)
    try:
        yield from _open(_Peekable(stream), path, 0, run)
    except (_Stop, _Broken):
        return


class _Stop(Exception):
    """The budget of the outermost archive is spent: nothing more is read."""


class _Broken(Exception):
    """A tar stream broke inside a member; its Problem was already yielded."""


class _Run:
    def __init__(self, limits: Limits, top: str) -> None:
        self.limits = limits
        self.top = top
        self.left = limits.max_bytes
        self.exhausted = False


class _Budgeted:
    """What a decompressor yields, counted against the outermost archive's budget."""

    def __init__(self, inner: Reader, run: _Run) -> None:
        self._inner = inner
        self._run = run

    def read(self, size: int = CHUNK) -> bytes:
        run = self._run
        if run.left <= 0:
            if not run.exhausted and self._inner.read(1):
                run.exhausted = True
            return b""
        data = self._inner.read(min(size if size >= 0 else CHUNK, run.left))
        run.left -= len(data)
        return data


class _Peekable:
    """A stream whose first HEAD bytes are known before it is read. Damage met just
    after them is raised once they have been read: it never hides them."""

    def __init__(self, stream: Reader) -> None:
        self._stream = stream
        self._seekable = _seekable(stream)
        self.head, self._damage = _fill(stream, HEAD)
        self._served = 0
        if self._seekable is not None and self._damage is None:
            self._seekable.seek(-len(self.head), 1)
            self._served = len(self.head)

    def read(self, size: int = CHUNK) -> bytes:
        if self._served < len(self.head):
            data = self.head[self._served : self._served + size]
            self._served += len(data)
            return data
        if self._damage is not None:
            damage, self._damage = self._damage, None
            raise damage
        return self._stream.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # (what isal's gzip reads with)
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def source(self) -> IO[bytes] | None:
        """The stream itself when it can seek (a zip is read from its end)."""
        return self._seekable


def _open(stream: _Peekable, path: str, depth: int, run: _Run) -> Iterator[Leaf | Problem]:
    kind = kind_of(stream.head)
    if kind is None or run.limits.max_depth == 0:
        yield from _leaf(stream, path, run)
    elif depth >= run.limits.max_depth:
        yield Problem(
            f"{path}: an archive nested deeper than --max-archive-depth "
            f"{run.limits.max_depth}; not opened (its bytes were scanned as they are)"
        )
        yield from _leaf(stream, path, run)
    elif kind == "zip":
        yield from _zip(stream, path, depth, run)
    elif kind == "tar":
        yield from _tar(stream, path, depth, run)
    else:
        try:
            inner = _Peekable(_Budgeted(_decompressor(kind, stream), run))
        except _errors() as error:
            yield from _damaged(run, path, f"a damaged {kind} stream ({_reason(error)})")
            return
        yield from _open(inner, path, depth, run)  # compression is not a level of its own


def _leaf(stream: _Peekable, path: str, run: _Run) -> Iterator[Leaf | Problem]:
    leaf = Leaf(path, stream)
    yield leaf
    if run.exhausted:
        yield from _spent(run, path)
    if leaf.failure is not None:
        yield Problem(f"{path}: damaged ({leaf.failure}); the rest of it was not scanned")
        raise _Broken


def _member(
    reader: Reader, path: str, depth: int, run: _Run
) -> Iterator[Leaf | Problem]:
    try:
        stream = _Peekable(reader)
    except _errors() as error:
        yield from _damaged(run, path, f"damaged ({_reason(error)})")
        raise _Broken from None
    yield from _open(stream, path, depth, run)


def _zip(stream: _Peekable, path: str, depth: int, run: _Run) -> Iterator[Leaf | Problem]:
    import zipfile

    from keyscan.sources.inflate import METHODS, ZipMember

    source = stream.source()
    try:
        if source is None:
            source = _spool(stream, run)
        _check_central_directory(source)
        archive = zipfile.ZipFile(source)
    except _errors() as error:
        if run.exhausted:
            yield from _spent(run, path)
        yield Problem(
            f"{path}: a damaged zip archive ({_reason(error)}); "
            "its bytes were scanned as they are"
        )
        if source is not None:
            source.seek(0)
            yield from _leaf(_Peekable(source), path, run)
        return
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        overlapping = _overlapping(infos)
        if overlapping:
            first = next(info.filename for info in infos if id(info) in overlapping)
            yield Problem(
                f"{path}: {len(overlapping)} members overlap others' data (a zip bomb), "
                f"the first {_clean(first)}; skipped"
            )
        for info in infos:
            name = f"{path}!{_clean(info.filename)}"
            if info.flag_bits & 0x1:
                yield Problem(f"{name}: an encrypted member; skipped")
                continue
            if id(info) in overlapping:
                continue
            try:
                if info.compress_type in METHODS:  # (the common ones, inflated faster)
                    member = _Budgeted(ZipMember(source, info), run)
                    yield from _member(member, name, depth + 1, run)
                else:
                    with archive.open(info) as other:
                        yield from _member(_Budgeted(other, run), name, depth + 1, run)
            except _Broken:
                continue
            except _errors() as error:
                yield from _damaged(run, name, f"damaged ({_reason(error)}); skipped")


def _tar(stream: _Peekable, path: str, depth: int, run: _Run) -> Iterator[Leaf | Problem]:
    from keyscan.sources.tarstream import members

    try:
        for member in members(stream):
            name = f"{path}!{_clean(member.name)}"
            yield from _member(member, name, depth + 1, run)
    except _Broken:
        return
    except _errors() as error:
        reason = _reason(error)
        yield from _damaged(run, path, f"a damaged tar ({reason}); the rest of it was not scanned")


def _damaged(run: _Run, path: str, what: str) -> Iterator[Problem]:
    if run.exhausted:
        yield from _spent(run, path)
    yield Problem(f"{path}: {what}")


def _spent(run: _Run, path: str) -> Iterator[Problem]:
    yield Problem(
        f"{path}: {run.top} expands past --max-decompressed-bytes "
        f"({run.limits.max_bytes} bytes); the rest of {run.top} was not scanned"
    )
    raise _Stop


def _decompressor(kind: str, stream: _Peekable) -> Reader:
    file: IO[bytes] = stream  # type: ignore[assignment]  # read() is all they call
    if kind == "gzip":
        from keyscan.sources.inflate import gzip_reader

        return gzip_reader(stream)
    if kind == "bzip2":
        import bz2

        return bz2.BZ2File(file)
    import lzma

    return lzma.LZMAFile(file)


def _spool(stream: _Peekable, run: _Run) -> IO[bytes]:
    import tempfile

    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 (returned)
    while data := stream.read(CHUNK):
        spool.write(data)
    if run.exhausted:
        raise OSError(0, "past the decompressed-bytes limit")
    spool.seek(0)
    return spool


def _check_central_directory(source: IO[bytes]) -> None:
    """Refuse a central directory so big that listing it is the bomb."""
    end = source.seek(0, 2)
    tail_start = max(0, end - (1 << 16) - 22)
    source.seek(tail_start)
    tail = source.read()
    at = tail.rfind(b"PK\x05\x06")
    if at >= 0 and len(tail) >= at + 16:
        size = int.from_bytes(tail[at + 12 : at + 16], "little")
        if size > MAX_CENTRAL_DIRECTORY and size != 0xFFFFFFFF:
            raise OSError(0, f"a central directory of {size} bytes")
    source.seek(0)


def _overlapping(infos: list[ZipInfo]) -> set[int]:
    """Entries whose local header lies inside an earlier entry's data."""
    bad: set[int] = set()
    end = -1
    for info in sorted(infos, key=lambda info: info.header_offset):
        start = info.header_offset
        if start < end:
            bad.add(id(info))
            continue
        end = start + 30 + info.compress_size
    return bad


def _clean(name: str) -> str:
    while name.startswith(("/", "./")):
        name = name[1:] if name.startswith("/") else name[2:]
    return name or "(unnamed)"


def _seekable(stream: object) -> IO[bytes] | None:
    seekable = getattr(stream, "seekable", None)
    try:
        return stream if seekable is not None and seekable() else None  # type: ignore[return-value]
    except (OSError, ValueError):
        return None


def _fill(stream: Reader, size: int) -> tuple[bytes, BaseException | None]:
    """Up to `size` bytes, and the damage that stopped them short (raised if none came)."""
    data = stream.read(size)
    while data and len(data) < size:
        try:
            more = stream.read(size - len(data))
        except _errors() as error:
            return data, error
        if not more:
            break
        data += more
    return data, None


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


_ERRORS: tuple[type[BaseException], ...] = ()


def _errors() -> tuple[type[BaseException], ...]:
    """What hostile or damaged archive bytes raise (imported on first use)."""
    global _ERRORS
    if not _ERRORS:
        import lzma
        import struct
        import zipfile

        from keyscan.sources.inflate import errors
        from keyscan.sources.tarstream import TarDamage

        _ERRORS = errors(  # with zlib's and the inflater's
            OSError,
            EOFError,
            ValueError,
            OverflowError,
            NotImplementedError,
            RuntimeError,
            IndexError,
            KeyError,
            lzma.LZMAError,
            struct.error,
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            TarDamage,
        )
    return _ERRORS
