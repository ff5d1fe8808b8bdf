"""Parsed rule files, cached so a hook run does not pay for PyYAML.

Importing and running PyYAML costs ~15-20 ms, more than the rest of a
`keyscan staged` run on a small change. The parsed documents are cached with
`marshal` (built in, nothing to import) under the user's cache directory, keyed
by the files' names and bytes, the cache format and the Python version, so an
edited rule file or a new interpreter simply misses. The key is not hashed with
hashlib (importing it loads OpenSSL, ~3 ms of every hook run): an entry is named
by a CRC-32 of the key and holds the whole key, which a hit must equal, so even
an edit that keeps the CRC misses. The cache is an optimisation only: a
directory that cannot be written, or a damaged entry, falls back to parsing.
"""

from __future__ import annotations

import binascii
import contextlib
import marshal
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT = 2  # bump when the cached value's shape changes


def cache_dir() -> Path:
    """$KEYSCAN_CACHE_DIR, else $XDG_CACHE_HOME/keyscan, else ~/.cache/keyscan."""
    explicit = os.environ.get("KEYSCAN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "keyscan"


def load_yaml_files(paths: Sequence[Path]) -> list[Any]:
    """`[yaml.safe_load(path.read_bytes()) for path in paths]`, from the cache when it can.

    Parse errors are not cached: they propagate from PyYAML as they would without it.
    """
    contents = [path.read_bytes() for path in paths]
    key = (FORMAT, tuple(sys.version_info[:2]), tuple(path.name for path in paths), tuple(contents))
    crc = binascii.crc32(b"%d:%d.%d" % (FORMAT, *sys.version_info[:2]))
    for path, data in zip(paths, contents, strict=True):
        crc = binascii.crc32(b"\0%s\0%d\0" % (path.name.encode("utf-8", "surrogateescape"),
                                               len(data)), crc)
        crc = binascii.crc32(data, crc)
    entry = cache_dir() / f"rules-{crc:08x}.marshal"
    try:
        cached = marshal.loads(entry.read_bytes())
        if (isinstance(cached, tuple) and len(cached) == 2 and cached[0] == key
                and isinstance(cached[1], list) and len(cached[1]) == len(paths)):
            return cached[1]
    except (OSError, ValueError, EOFError, TypeError):
        pass  # missing or damaged: parse and (re)write below
    parsed = [_parse(data) for data in contents]
    _store(entry, (key, parsed))
    return parsed


def _parse(data: bytes) -> Any:
    import yaml  # only on a cache miss

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(data, Loader=loader)  # a safe loader (C if built)


def _store(entry: Path, value: tuple[Any, list[Any]]) -> None:
    try:
        blob = marshal.dumps(value)
    except ValueError:
        return  # a value marshal cannot hold (e.g. a YAML date): just don't cache
    temp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(blob)
        os.replace(temp, entry)  # atomic: a concurrent hook reads the old state or the new
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
