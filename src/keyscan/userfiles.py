"""Reading a file a user or a scanned repository names (a config, a baseline), safely.

Only a regular file is read, opened without blocking (a FIFO named as a config would
otherwise wait forever for a writer, `/dev/zero` would fill memory), and never past a
size limit. Each problem comes back as a phrase the caller puts in its own one-line error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnreadableFile(Exception):
    """`str(error)` is the problem, e.g. "is a folder, not a file"."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of regular file `path`, at most `limit` of them, else UnreadableFile."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableFile("not found") from None
    except OSError as error:
        raise UnreadableFile(f"cannot be read ({error.strerror or error})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise UnreadableFile("is a folder, not a file")
        raise UnreadableFile("is not a regular file (a FIFO, device or socket)")
    with open(fd, "rb") as handle:  # owns fd from here
        try:
            data = handle.read(limit + 1)
        except OSError as error:
            raise UnreadableFile(f"cannot be read ({error.strerror or error})") from None
    if len(data) > limit:
        raise UnreadableFile(f"is over {limit >> 20} MiB" if limit >= 1 << 20
                             else f"is over {limit} bytes")
    return data
