"""The files of an image as saved: a folder (an OCI layout) or a tar file, by name.

Names come from the image's own manifests, so they are hostile: a name is looked up
in the tar's index (nothing on disk is touched) or, for a folder, must stay inside
it (no `..`, no absolute path, no symlink followed: `O_NOFOLLOW` and a real-path
check), and only regular files are read. Links inside a tar (classic `docker save`
links identical layers) are followed inside the tar, a few hops at most. JSON
documents are read up to MAX_JSON bytes.
"""

from __future__ import annotations

import os
import stat
from typing import IO

from keyscan.errors import KeyscanError
from keyscan.sources.tarstream import Entry, TarDamage, clean_name, index

MAX_JSON = 16 << 20
MAX_HOPS = 8


class StoreError(Exception):
    """A name the image refers to cannot be read (missing, outside, not a file)."""


class Store:
    def names(self) -> set[str]:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        with self.open(name) as file:
            data = file.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"{name}: larger than {limit} bytes")
        return data

    def close(self) -> None:
        """Nothing to release by default."""


class FolderStore(Store):
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def names(self) -> set[str]:
        return {
            name for name in ("index.json", "manifest.json", "oci-layout") if self._is_file(name)
        }

    def _is_file(self, name: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(os.path.join(self.root, name)).st_mode)
        except OSError:
            return False

    def open(self, name: str) -> IO[bytes]:
        relative = os.path.normpath(clean_name(name))
        if relative.startswith("..") or os.path.isabs(relative):
            raise StoreError(f"{name}: outside the image")
        path = os.path.join(self.root, relative)
        if not os.path.realpath(path).startswith(self.root + os.sep):
            raise StoreError(f"{name}: outside the image (through a symbolic link)")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
        except OSError as error:
            raise StoreError(f"{name}: {error.strerror or error}") from None
        file = open(fd, "rb")  # noqa: SIM115 (returned)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            file.close()
            raise StoreError(f"{name}: not a regular file")
        return _Region(file, info.st_size)  # type: ignore[return-value]  # read/close/with


class TarStore(Store):
    def __init__(self, path: str, shown: str, temporary: bool = False) -> None:
        self.path = path
        self._temporary = temporary  # removed on close
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close)
        try:
            self._entries = index(self._file)
        except TarDamage as error:
            self.close()
            raise KeyscanError(f"{shown}: a damaged image tarball ({error})") from None

    def names(self) -> set[str]:
        return set(self._entries)

    def _entry(self, name: str) -> Entry:
        name = clean_name(name)
        for _ in range(MAX_HOPS):
            entry = self._entries.get(name)
            if entry is None:
                raise StoreError(f"{name}: not in the image")
            if entry.kind == b"2":  # relative to the link's folder
                name = os.path.normpath(os.path.join(os.path.dirname(name), entry.link))
            elif entry.kind == b"1":
                name = clean_name(entry.link)
            elif entry.kind in (b"0", b"\0", b"7"):
                return entry
            else:
                raise StoreError(f"{name}: not a regular file")
        raise StoreError(f"{name}: too many links")

    def open(self, name: str) -> IO[bytes]:
        entry = self._entry(name)
        file = open(self.path, "rb")  # noqa: SIM115 (returned)
        file.seek(entry.offset)
        return _Region(file, entry.size)  # type: ignore[return-value]  # read/close/with

    def close(self) -> None:
        self._file.close()
        if self._temporary:
            os.unlink(self.path)


class _Region:
    """`size` bytes of a file from where it stands."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self._file = file
        self._left = size
        self.size = size  # as stored (a compressed layer's limit depends on it)

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._file.read(want) if want > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _Region:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(path: str, shown: str) -> Store:
    """The image at `path` (a folder or a tar file, possibly gzip-compressed)."""
    if os.path.isdir(path):
        return FolderStore(path)
    with open(path, "rb") as file:
        head = file.read(264)
    if head[:2] == b"\x1f\x8b":  # `docker save | gzip`: decompressed to a temporary file
        return TarStore(_gunzip(path), shown, temporary=True)
    if head[257:262] != b"ustar":
        raise KeyscanError(
            f"{shown} is not an image: expected a docker save / podman save tarball "
            "or an OCI image layout (folder or tar)"
        )
    return TarStore(path, shown)


def _gunzip(path: str) -> str:
    import gzip
    import shutil
    import tempfile

    handle, target = tempfile.mkstemp(prefix="keyscan-image-", suffix=".tar")
    try:
        with gzip.open(path, "rb") as source, open(handle, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    except (OSError, EOFError) as error:
        os.unlink(target)
        raise KeyscanError(f"{path}: a damaged gzip-compressed image ({error})") from None
    return target
