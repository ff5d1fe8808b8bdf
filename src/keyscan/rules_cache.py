"""The shipped rule files, parsed ahead of time, so a hook run does not pay for PyYAML.

Importing and running PyYAML costs ~15-20 ms, more than the rest of a `keyscan staged`
run on a small change. So `rules/parsed.marshal`, beside the YAML files and shipped in
the wheel with them, holds what PyYAML makes of each file, with each file's size and
CRC-32, and the width of each of their patterns (the fewest bytes a match spans, which
the engine needs and which costs the regex parser ~3 ms to work out). It is written only
when every rule in the files loads (each pattern compiled, with one group), so a rule
taken from it compiles its pattern when first used (`keyscan.rules`).

It is `marshal` data (version 4: dicts, lists, strings, numbers, as every Python 3 since
3.4 reads them), not JSON: `marshal` is loaded with the interpreter, and importing `json`
cost the hook ~1.5 ms. The data is zlib-compressed (~0.4 ms to import): marshal writes
strings back to back, so a placeholder from a rule's examples would run into the next
bytes and look like a key to any scanner of this repository, ours included. Data that
does not load, or does not have the copy's shape, is parsed around like a stale copy.

A load reads the YAML files' bytes (cheap) and uses the copy only when every name, size
and CRC matches; otherwise (a rule file edited in a checkout and the copy not rewritten)
it parses the YAML, which is slower but never wrong. `tests/test_rules_cache.py` fails
while the copy is stale: `python -m keyscan.rules_cache` rewrites it.

There is no cache in the user's folders any more: a parsed copy there could be rewritten
by anything that can write the cache (a shared CI cache is enough), and a rewritten copy
made `keyscan scan` exit 0 on a real key. The copy here is trusted exactly as far as the
rule files next to it are. The CRC is not a defence against tampering (whoever can
rewrite it can rewrite the YAML); it keeps a checkout's edit from being ignored.
"""

from __future__ import annotations

import binascii
import marshal  # loaded at every interpreter's start-up: free here
import sys
from collections.abc import Sequence
from pathlib import Path

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SHIPPED = "parsed.marshal"
VERSION = 4  # marshal's: the newest that every supported Python reads
FORMAT = 2  # bump when the copy's shape changes (2: the patterns' widths)


def load_yaml_files(paths: Sequence[Path]) -> list[Any]:
    """`[yaml.safe_load(path.read_bytes()) for path in paths]`, from the shipped copy when
    it is the copy of exactly these files. Parse errors propagate from PyYAML."""
    return load_files(paths)[0]


def load_files(paths: Sequence[Path]) -> tuple[list[Any], dict[str, int] | None]:
    """(`load_yaml_files(paths)`, pattern -> width): the widths when the documents come
    from the shipped copy, else None (parsed from the YAML, nothing known of them)."""
    contents = [path.read_bytes() for path in paths]
    if paths:
        shipped = _shipped(paths[0].parent / SHIPPED, paths, contents)
        if shipped is not None:
            return shipped
    return [_parse(data) for data in contents], None


def _shipped(copy: Path, paths: Sequence[Path], contents: list[bytes]
             ) -> tuple[list[Any], dict[str, int]] | None:
    try:
        data = copy.read_bytes()
    except OSError:
        return None  # none shipped (a checkout that never wrote one): parse
    import zlib

    try:
        document = marshal.loads(zlib.decompress(data))
    except (EOFError, ValueError, TypeError, zlib.error):  # not such data (or cut short)
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    files = document.get("files")
    if not isinstance(files, list) or len(files) != len(paths):
        return None
    for entry, path, content in zip(files, paths, contents, strict=True):
        if not isinstance(entry, dict) or entry.get("stamp") != _stamp(path.name, content):
            return None
    widths = document.get("widths")
    if not isinstance(widths, dict) or not all(
        isinstance(width, int) and not isinstance(width, bool) and width >= 0
        for width in widths.values()
    ):
        return None
    return [entry.get("document") for entry in files], widths


def _stamp(name: str, content: bytes) -> str:
    return f"{name}:{len(content)}:{binascii.crc32(content):08x}"


def _parse(data: bytes) -> Any:
    import yaml  # only when no copy matches

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(data, Loader=loader)  # a safe loader (C if built)


def shipped_copy(paths: Sequence[Path]) -> bytes:
    """`parsed.marshal` for the rule files `paths` (sorted by name). Raises KeyscanError,
    as a load of them would, if any rule in them is invalid."""
    from keyscan.rules import from_documents  # checks every rule, compiles every pattern

    files = []
    for path in paths:
        content = path.read_bytes()
        files.append({"stamp": _stamp(path.name, content), "document": _parse(content)})
    ruleset = from_documents([file["document"] for file in files],
                             [f"rules/{path.name}" for path in paths])
    widths = {rule.pattern.pattern.decode("utf-8"): rule.width for rule in ruleset.rules}
    import zlib

    data = marshal.dumps({"format": FORMAT, "files": files, "widths": widths}, VERSION)
    return zlib.compress(data, 9)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m keyscan.rules_cache [FOLDER]`: rewrite FOLDER/parsed.marshal (default: the
    repository's rules/)."""
    args = list(sys.argv[1:] if argv is None else argv)
    folder = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "rules"
    paths = sorted(folder.glob("*.yaml"), key=lambda path: path.name)
    (folder / SHIPPED).write_bytes(shipped_copy(paths))
    print(f"wrote {folder / SHIPPED} ({len(paths)} rule files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
