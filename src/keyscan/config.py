"""`.keyscan.yaml` -> `Config`: validated, so a typo fails the run instead of silently allowing.

Schema (every key optional; anything else is an error naming the file and the key):

    baseline: path.json          # a --baseline for every command (relative to this file)
    rules: [...]                 # extra rules, same shape as rules/*.yaml
    disable: [rule-id, ...]
    allow:
      paths: [glob, ...]         # see keyscan.filters.allowlist for the glob rules
      regexes: [regex, ...]      # searched in the secret
      secrets: ["sha256:<64 hex>", ...]

The config lives in the scanned repository, so it is untrusted: it can add rules
and suppress findings, but nothing in it can change where keys are sent for
verification (such keys fall under the general unknown-key error). Nor can it hang or
exhaust a run: only a regular file of at most `MAX_BYTES` is read (a FIFO or a device
never is), a default `.keyscan.yaml` that is a symlink out of the scanned folder is
refused unread, YAML aliases may not expand the document past `MAX_NODES` nodes or
`MAX_DEPTH` levels ("billion laughs"), and its patterns are compiled by
`keyscan.patterns` (linear-time matching).
"""

from __future__ import annotations

import re
from pathlib import Path

from keyscan.errors import KeyscanError
from keyscan.model import Rule, Value

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

TOP_KEYS = ("baseline", "rules", "disable", "allow")
ALLOW_KEYS = ("paths", "regexes", "secrets")
_SHA256 = re.compile(r"sha256:([0-9a-fA-F]{64})")
MAX_BYTES = 1 << 20  # a config is a page of YAML; 1 MiB is far past any real one
MAX_NODES = 100_000  # YAML nodes once every alias is expanded
MAX_DEPTH = 64  # nesting levels


class Config(Value):
    __slots__ = ("allow_paths", "allow_regexes", "allow_secrets", "baseline", "disable", "rules")

    def __init__(
        self,
        rules: tuple[Rule, ...] = (),
        disable: frozenset[str] = frozenset(),
        allow_paths: tuple[str, ...] = (),
        allow_regexes: tuple[re.Pattern[str], ...] = (),
        allow_secrets: frozenset[str] = frozenset(),
        baseline: Path | None = None,
    ) -> None:
        self.rules: Final = rules
        self.disable: Final = disable
        self.allow_paths: Final = allow_paths
        self.allow_regexes: Final = allow_regexes
        self.allow_secrets: Final = allow_secrets  # lowercase hex sha256
        self.baseline: Final = baseline  # resolved against the config file's folder


def load_config(path: Path | None, explicit: bool) -> Config:
    """Read and validate a config; a missing default `.keyscan.yaml` is an empty config."""
    if path is None or (not explicit and not path.exists()):
        return Config()
    if not explicit:
        _refuse_escape(path)
    document = _parse(path, _read(path))
    if document is None:
        return Config()
    if not isinstance(document, dict):
        expected = f"expected a mapping of {_keys(TOP_KEYS)}"
        raise _error(path, f"the top level is a {_kind(document)}, {expected}")
    _reject_unknown(path, document, TOP_KEYS, "at top level")
    allow = _mapping(path, document.get("allow"), "allow")
    _reject_unknown(path, allow, ALLOW_KEYS, "under 'allow'")
    rules = _rules(path, document)
    return Config(
        rules=rules,
        disable=_disable(path, document.get("disable"), rules),
        allow_paths=tuple(_paths(path, allow.get("paths"))),
        allow_regexes=tuple(_regexes(path, allow.get("regexes"))),
        allow_secrets=frozenset(_secrets(path, allow.get("secrets"))),
        baseline=_baseline(path, document.get("baseline")),
    )


def _refuse_escape(path: Path) -> None:
    """A scanned repository's `.keyscan.yaml` may not be a symlink out of it: keyscan would
    read (and quote, in an error) a file the repository's author chose, such as a secret."""
    if not path.is_symlink():
        return
    folder = path.parent.resolve()
    target = path.resolve()
    if target != folder and folder not in target.parents:
        raise _error(
            path,
            "is a symlink to a file outside the scanned folder, so it was not read "
            "(copy the config into the repository, or pass it with --config)",
        )


def _read(path: Path) -> str:
    """The config's text: a regular file of at most MAX_BYTES, opened without blocking."""
    from keyscan.userfiles import UnreadableFile, read_bounded

    try:
        data = read_bounded(path, MAX_BYTES)
    except UnreadableFile as problem:
        hints = {"not found": "check the --config path",
                 "is a folder, not a file": "give a YAML file"}
        hint = hints.get(str(problem), "a config is a short YAML file: check the path")
        what = "config file" if str(problem) == "not found" else "config"
        raise _error(path, f"{what} {problem} ({hint})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyscanError(f"{path}: config is not UTF-8 text (save it as UTF-8)") from None


def _parse(path: Path, text: str) -> object:
    import yaml  # only when a config exists: PyYAML's import is a sixth of a hook run

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # no Python objects
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(path, node)  # before anything is built from it
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        where = ""
        mark = getattr(error, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(error, "problem", None) or "syntax error"
        raise _error(path, f"invalid YAML{where}: {_one_line(problem)} (fix the syntax)") from None
    finally:
        loader.dispose()


def _check_expansion(path: Path, root: Any) -> None:
    """Refuse a node graph whose aliases expand past MAX_NODES, or nest past MAX_DEPTH.

    Iterative, and each node's expanded size is counted once (aliases share nodes), so
    the check itself costs no more than the file's own size."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_NODES:
                raise _error(path, f"YAML aliases expand it past {MAX_NODES} nodes: "
                                   "write the values out (a config needs no aliases)")
            continue
        if key in sizes:
            continue
        if depth > MAX_DEPTH:
            raise _error(path, f"YAML nested more than {MAX_DEPTH} levels deep")
        open_nodes.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise _error(path, "a YAML alias refers to itself: write the values out")
            stack.append((child, depth + 1, False))


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]
    return []


def _reject_unknown(
    path: Path, mapping: dict[Any, Any], known: tuple[str, ...], where: str
) -> None:
    for key in mapping:
        if key not in known:
            raise _error(path, f"unknown key {_show(key)} {where} (expected: {', '.join(known)})")


def _rules(path: Path, document: dict[Any, Any]) -> tuple[Rule, ...]:
    raw = document.get("rules")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _error(path, f"'rules' must be a list of rules, not a {_kind(raw)}")
    for number, item in enumerate(raw, start=1):
        if isinstance(item, dict) and "verify" in item:
            # a rule that verifies could send one vendor's key to another vendor's host
            raise _error(
                path,
                f"unknown key 'verify' in rule {number} (a config's rules are never verified: "
                "remove it)",
            )
    from keyscan.rules import parse_rules

    # parse_rules raises KeyscanError naming the file and the rule at fault
    return parse_rules(raw, str(path))


def _disable(path: Path, value: object, extra: tuple[Rule, ...]) -> frozenset[str]:
    """Rule ids to turn off; a typo is an error, or it would silently disable nothing."""
    ids = _strings(path, value, "disable")
    if not ids:
        return frozenset()
    from keyscan.rules import load_builtin

    known = {rule.id for rule in load_builtin().rules} | {rule.id for rule in extra}
    for rule_id in ids:
        if rule_id not in known:
            import difflib  # only to suggest a fix for a typo

            close = difflib.get_close_matches(rule_id, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "run 'keyscan rules' to list them"
            raise _error(path, f"disable: unknown rule id {_show(rule_id)} ({hint})")
    return frozenset(ids)


def _baseline(path: Path, value: object) -> Path | None:
    """The baseline file hooks use (they take no options): beside the config, inside its
    folder, so a scanned repository's config cannot point keyscan at files elsewhere."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _error(path, f"'baseline' must be a file name, not {_show(value)}")
    relative = Path(value)
    if relative.is_absolute() or ".." in relative.parts:
        raise _error(
            path, f"baseline {_show(value)} must be a relative path inside the config's folder"
        )
    return path.parent / relative


def _mapping(path: Path, value: object, name: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        expected = f"a mapping of {_keys(ALLOW_KEYS)}"
        raise _error(path, f"'{name}' must be {expected}, not a {_kind(value)}")
    return value


def _strings(path: Path, value: object, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _error(path, f"'{name}' must be a list of strings, not a {_kind(value)}")
    for item in value:
        if not isinstance(item, str) or not item:
            raise _error(path, f"'{name}' must hold non-empty strings, found {_show(item)}")
    return value


def _paths(path: Path, value: object) -> list[str]:
    globs = _strings(path, value, "allow.paths")
    from keyscan.filters.allowlist import compile_glob

    for glob in globs:
        try:
            compile_glob(glob)
        except ValueError as error:
            raise _error(path, f"bad glob {_show(glob)} in allow.paths: {error}") from None
    return globs


def _regexes(path: Path, value: object) -> list[re.Pattern[str]]:
    patterns = _strings(path, value, "allow.regexes")
    if not patterns:
        return []
    from keyscan.patterns import compile_untrusted  # RE2: no pattern can hang a scan

    # named by position, not echoed: an allow regex may spell out a whole key
    return [
        compile_untrusted(
            pattern, f"{path}: bad regex in allow.regexes (entry {number})", as_bytes=False
        )
        for number, pattern in enumerate(patterns, start=1)
    ]


def _secrets(path: Path, value: object) -> list[str]:
    hashes = []
    for entry in _strings(path, value, "allow.secrets"):
        match = _SHA256.fullmatch(entry.strip())
        if match is None:
            # never echo the entry: a user may have pasted the secret itself here
            raise _error(
                path,
                "allow.secrets entries must be \"sha256:<64 hex>\" (the secret_sha256 "
                "of a finding in --format json), not the secret itself",
            )
        hashes.append(match.group(1).lower())
    return hashes


def _error(path: Path, problem: str) -> KeyscanError:
    return KeyscanError(f"{path}: {problem}")


def _keys(keys: tuple[str, ...]) -> str:
    return ", ".join(keys)


def _kind(value: object) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "number"}
    return names.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    """A short quote of what the user wrote; cut so that a pasted key never shows whole."""
    text = _one_line(str(value))
    text = text if len(text) <= 20 else text[:16] + "…"
    return repr(text) if isinstance(value, str) else text


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
