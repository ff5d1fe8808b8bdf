"""A file read by offset (`os.pread`), never mapped: for pack files and their indexes.

A mapped file that is cut short while it is mapped kills the process that touches
a page past its new end (SIGBUS: no Python handler can run, no worker survives
it to be retried). Read by offset, the same file reads short instead, which the
pack reader takes as damage and hands to git (`packfile.PackError`). Reads in
increasing order are served from one block, so a pack read in pack order costs a
system call per `BLOCK`, not per object.
"""

from __future__ import annotations

import os
import stat
from bisect import bisect_left
from operator import itemgetter
from pathlib import Path

BLOCK = 256 << 10  # bytes read at once for small reads in increasing order
WHOLE = 64 << 20  # `bytes_at` reads a file up to this size whole


class ReadAt:
    """A regular file, read by offset; `size` as it was when opened."""

    __slots__ = ("_block", "_fd", "_start", "size")

    def __init__(self, path: Path) -> None:
        self._fd = -1
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO never blocks
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(0, f"{path.name} is not a regular file")
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self.size = info.st_size
        self._start = 0
        self._block = b""

    def read(self, at: int, size: int) -> bytes:
        """The `size` bytes at `at`, fewer only past the file's end (as it is now). For
        reads in increasing order: a small one is served from the block it falls in."""
        offset = at - self._start
        if offset >= 0 and offset + size <= len(self._block):
            return self._block[offset : offset + size]
        if size > BLOCK // 2:
            return os.pread(self._fd, size, at)
        self._block = block = os.pread(self._fd, BLOCK, at)
        self._start = at
        return block[:size]

    def bytes_at(self, offsets: list[int]) -> bytes:
        """The byte at each of `offsets` (in any order), leaving out those past the file's
        end (as it is now). A file of up to `WHOLE` bytes is read whole, and the bytes are
        picked out in one C call; a bigger one a block at a time, its offsets sorted."""
        if not offsets:
            return b""
        if self.size <= WHOLE:
            data = os.pread(self._fd, self.size, 0)
            if max(offsets) >= len(data):  # cut short since it was opened
                offsets = [offset for offset in offsets if offset < len(data)]
            if len(offsets) < 2:  # (itemgetter gives one item itself, not in a tuple)
                return bytes(data[offset] for offset in offsets)
            return bytes(itemgetter(*offsets)(data))
        offsets = sorted(offsets)
        found: list[bytes] = []
        done, count = 0, len(offsets)
        while done < count:
            start = offsets[done]
            block = os.pread(self._fd, BLOCK, start)
            end = bisect_left(offsets, start + len(block), done)
            if end == done:
                break
            found.append(bytes(map(block.__getitem__, [o - start for o in offsets[done:end]])))
            done = end
        return b"".join(found)

    def pread(self, at: int, size: int) -> bytes:
        """The `size` bytes at `at` (fewer past the end), the block left as it is: for
        reads that jump about (a binary search)."""
        return os.pread(self._fd, size, at)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._block = b""

    def __del__(self) -> None:
        self.close()
