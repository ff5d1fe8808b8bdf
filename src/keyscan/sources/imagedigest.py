"""An image's parts against their digests: `keyscan image` checks what it reads.

An image names each part by the hash of its content: an OCI layout's (and a newer
`docker save`'s) blobs are `blobs/<algorithm>/<hex>`, a classic `docker save` names
its configuration `<sha256>.json` and knows each layer by its `diff_id` (the sha256
of the layer's tar). A part whose content hashes otherwise is damaged or was altered
after it was built (`docker load` would refuse it): it is still scanned, since a
damaged part never hides what it holds, and the caller warns once, naming it.
"""

from __future__ import annotations

import hashlib
import re
from typing import IO, Any

_BLOB = re.compile(r"blobs/(sha256|sha512)/([0-9a-f]{64}|[0-9a-f]{128})")
_CONFIG = re.compile(r"([0-9a-f]{64})\.json")  # a classic docker save's configuration
CHUNK = 1 << 20


def named(name: str) -> str | None:
    """The digest (`sha256:<hex>`) that the store name `name` says its content has."""
    if match := _BLOB.fullmatch(name):
        return f"{match.group(1)}:{match.group(2)}"
    if match := _CONFIG.fullmatch(name):
        return f"sha256:{match.group(1)}"
    return None


def of(data: bytes, digest: str) -> str:
    """The digest of `data`, by the algorithm `digest` names."""
    algorithm = digest.partition(":")[0]
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class Hashed:
    """A stored part read through: hashed as it is read (`finish` reads what its reader
    left, and gives the digest of the whole). `size`: as the store has it."""

    def __init__(self, stream: IO[bytes], digest: str) -> None:
        self._stream = stream
        self._algorithm = digest.partition(":")[0]
        self._hash: Any = hashlib.new(self._algorithm)
        self.size = getattr(stream, "size", 0)

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._hash.update(data)
        return data

    def finish(self) -> str:
        while piece := self._stream.read(CHUNK):
            self._hash.update(piece)
        return f"{self._algorithm}:{self._hash.hexdigest()}"
