"""Rules are data: load and validate `rules/*.yaml` (and the `rules:` of `.keyscan.yaml`).

A vendor file (`rules/<vendor id>.yaml`) is the one place a vendor lives: who it is,
where its keys are revoked, how they are verified, and its rules:

    vendor:
      id: powerpost
      name: PowerPost
      revoke: "Settings > API"
      verify: {base: ..., path: ..., header: ..., live: [...], ...}  # keyscan.verify.endpoints
    rules:
      - id: powerpost-api-key
        severity: critical
        pattern: '...'        # exactly one capture group: the secret
        keywords: [pp_live_sk_]
        verify: powerpost     # this rule's keys are checked as the vendor's `verify` says

A vendor's `verify` is kept as written here and read only by `keyscan.verify`, only
from the files shipped with keyscan (`load_builtin`): the pre-commit hook never pays
for it, and no scanned repository's config or user rule file can say where keys go.
Adding a vendor is adding its file (and its tests); nothing else names the vendors.

`keywords` are literals (matched case-insensitively) that every match contains:
the engine runs a rule's pattern only from 256 bytes before a keyword to 768
bytes after it. `prefixes` are literal starts of the secret, used for
redaction, placeholders and finding the key inside base64. `priority` decides
which rule reports text that two rules match (higher wins); `entropy` is the
secret's minimum Shannon entropy in bits per character.

Every problem a user can cause (unknown keys, wrong types, a bad regex) raises
`KeyscanError` naming the file, the rule and the fix.

A hook run takes the shipped files from their parsed copy (`rules_cache.py`), which
also holds each pattern's width (the fewest bytes a match spans, which the engine
needs): written only for files whose every pattern compiled, so those patterns are
compiled when first used (`Rule.pattern`), never at load. Parsed from the YAML, they
are compiled and checked at once, as a config's are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from keyscan.errors import KeyscanError
from keyscan.model import SEVERITIES, Rule, Value, Vendor, compiled

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.abc import Traversable
    from typing import Any, Final

_RULE_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "vendor": str,
    "severity": str,
    "description": str,
    "pattern": str,
    "keywords": list,
    "prefixes": list,
    "verify": str,
    "priority": int,
    "entropy": (int, float),
    "references": list,
    "examples": list,
    "negative_examples": list,
}
_REQUIRED = ("id", "severity", "pattern", "keywords")
_VENDOR_KEYS = {"id", "name", "revoke", "verify"}
_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")


class RuleSet(Value):
    """The rules a scan uses and the vendors they name (display name, where to revoke)."""

    __slots__ = ("rules", "vendors")

    def __init__(self, rules: tuple[Rule, ...], vendors: dict[str, Vendor]) -> None:
        self.rules: Final = rules
        self.vendors: Final = vendors

    def extended(self, extra: Sequence[Rule]) -> RuleSet:
        """Add `extra`; an extra rule with an existing id replaces that rule."""
        by_id = {rule.id: rule for rule in self.rules}
        by_id.update((rule.id, rule) for rule in extra)
        vendors = dict(self.vendors)
        for rule in extra:
            # a user's own vendor: reporters still need a name to show
            vendors.setdefault(rule.vendor, Vendor(id=rule.vendor, name=rule.vendor, revoke=""))
        return RuleSet(tuple(by_id.values()), vendors)

    def without(self, ids: Collection[str]) -> RuleSet:
        """Drop the rules `ids`; an unknown id is an error (a typo would disable nothing)."""
        known = {rule.id for rule in self.rules}
        for rule_id in ids:
            if rule_id not in known:
                raise KeyscanError(
                    f"disable: unknown rule id {rule_id!r}: run 'keyscan rules' to list rule ids"
                )
        return RuleSet(tuple(r for r in self.rules if r.id not in ids), dict(self.vendors))


def _rules_folder() -> Traversable:
    """Where the shipped rule files are.

    Installed from the wheel on a file system, that is the folder next to this module:
    exactly what `importlib.resources.files` returns there, without the ~5 ms its import
    costs every hook run. A source checkout (editable install) has them at `<repo>/rules`,
    also found without importlib.resources (which would import typing, ~3 ms). Anything
    else (a zip import) goes through importlib.resources.
    """
    package = Path(__file__).resolve().parent
    if (package / "rules").is_dir():
        return package / "rules"
    if package.is_dir():  # a package folder without them: importlib.resources would say the same
        return package.parents[1] / "rules"
    from importlib import resources

    packaged = resources.files("keyscan") / "rules"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "rules"


@functools.cache
def load_builtin() -> RuleSet:
    """The shipped rules: `keyscan/rules/*.yaml` in the wheel, `<repo>/rules` in a checkout."""
    return load_folder(_rules_folder())


def load_folder(folder: Traversable) -> RuleSet:
    """Every vendor file in `folder`, in name order (the shipped folder, or a test's)."""
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".yaml")),
        key=lambda entry: entry.name,
    )
    names = [f"rules/{entry.name}" for entry in entries]
    docs: list[object] | None = None
    widths: Mapping[str, int] | None = None
    if all(isinstance(entry, Path) for entry in entries):
        from keyscan import rules_cache  # parsed files cached: a hook run skips PyYAML

        try:
            docs, widths = rules_cache.load_files([Path(str(entry)) for entry in entries])
        except Exception:  # a YAML error: parsed again below, to name the file at fault
            docs = None
    if docs is None:
        docs = [
            _parse_yaml(entry.read_text(encoding="utf-8"), name)
            for entry, name in zip(entries, names, strict=True)
        ]
    return from_documents(docs, names, widths)


def from_documents(docs: Sequence[object], names: Sequence[str],
                   widths: Mapping[str, int] | None = None) -> RuleSet:
    """The vendor files `names` (`rules/<id>.yaml`), parsed. `widths`: pattern -> width,
    from the parsed copy; those patterns are compiled when first used, any other now."""
    rules: list[Rule] = []
    vendors: dict[str, Vendor] = {}
    for doc, name in zip(docs, names, strict=True):
        ruleset = _from_document(doc, name, shipped=True, widths=widths)
        if any(name != f"rules/{vendor_id}.yaml" for vendor_id in ruleset.vendors):
            raise KeyscanError(f"{name}: a vendor's file is named rules/<its id>.yaml")
        rules.extend(ruleset.rules)
        vendors.update(ruleset.vendors)
    return RuleSet(tuple(rules), vendors)


def load_rule_file(path: Path) -> RuleSet:
    """One rule file (the format of `rules/*.yaml`); its `vendor:` is optional."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
        raise KeyscanError(f"cannot read rule file {path}: {reason}: check the path") from None
    except UnicodeDecodeError:
        raise KeyscanError(f"{path}: rule file is not UTF-8 text: save it as UTF-8") from None
    return _from_document(_parse_yaml(text, str(path)), str(path))


def _parse_yaml(text: str, source: str) -> object:
    import yaml  # only on a cache miss or for a user's file: it costs ~20 ms to import

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KeyscanError(f"{source}: not valid YAML{where}: fix the syntax") from None


def _from_document(doc: object, source: str, *, shipped: bool = False,
                   widths: Mapping[str, int] | None = None) -> RuleSet:
    if not isinstance(doc, dict):
        raise KeyscanError(f"{source}: expected a mapping with 'vendor' and 'rules'")
    unknown = sorted(set(doc) - {"vendor", "rules"})
    if unknown:
        raise KeyscanError(f"{source}: unknown key {unknown[0]!r}: a rule file has vendor, rules")
    vendors: dict[str, Vendor] = {}
    vendor = None
    if "vendor" in doc:
        vendor = _parse_vendor(doc["vendor"], source)
        vendors[vendor.id] = vendor
    rules = parse_rules(doc.get("rules"), source, vendor=vendor, shipped=shipped, widths=widths)
    return RuleSet(rules, vendors)


def _parse_vendor(doc: object, source: str) -> Vendor:
    if not isinstance(doc, dict) or not {"id", "name", "revoke"} <= set(doc) <= _VENDOR_KEYS:
        raise KeyscanError(f"{source}: vendor needs id, name and revoke (and may have verify)")
    if not all(isinstance(doc[key], str) and doc[key] for key in ("id", "name", "revoke")):
        raise KeyscanError(f"{source}: vendor id, name and revoke must be non-empty strings")
    verify = doc.get("verify")
    if verify is not None and not isinstance(verify, dict):
        raise KeyscanError(f"{source}: vendor verify must be a mapping (url, header, statuses)")
    return Vendor(id=doc["id"], name=doc["name"], revoke=doc["revoke"], verify=verify)


def parse_rules(
    doc: object, source: str, vendor: Vendor | None = None, *, shipped: bool = False,
    widths: Mapping[str, int] | None = None,
) -> tuple[Rule, ...]:
    """Validate and compile a `rules:` list; `vendor` (the file's) is the default for rules
    that name none, and the only verifier a rule may name, if the vendor has `verify`.

    Patterns of rules keyscan did not ship (`shipped=False`: a config's, a user's file)
    are compiled by `keyscan.patterns` (RE2: linear time, bounded size). A shipped
    pattern in `widths` (the parsed copy's) is compiled when first used."""
    if not isinstance(doc, list):
        raise KeyscanError(f"{source}: 'rules' must be a list of rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for number, item in enumerate(doc, start=1):
        rule = _parse_rule(item, f"{source}: rule {number}", vendor, shipped, widths)
        if rule.id in seen:
            raise KeyscanError(f"{source}: rule {number}: id {rule.id!r} is used twice")
        seen.add(rule.id)
        rules.append(rule)
    return tuple(rules)


def _parse_rule(item: object, where: str, file_vendor: Vendor | None, shipped: bool,
                widths: Mapping[str, int] | None) -> Rule:
    if not isinstance(item, dict):
        raise KeyscanError(f"{where}: expected a mapping with id, severity, pattern, keywords")
    rule_id = item.get("id")
    if isinstance(rule_id, str):
        where = f"{where} ({rule_id})"
    for key, value in item.items():
        expected = _RULE_KEYS.get(key)
        if expected is None:
            known = ", ".join(_RULE_KEYS)
            raise KeyscanError(f"{where}: unknown key {key!r}: a rule has {known}")
        if not isinstance(value, expected) or isinstance(value, bool):
            raise KeyscanError(f"{where}: {key} has the wrong type: {_type_hint(key)}")
    for key in _REQUIRED:
        if key not in item:
            raise KeyscanError(f"{where}: {key} is missing")
    if not _ID.match(item["id"]):
        raise KeyscanError(f"{where}: id must be lowercase letters, digits, '-', '_' or '.'")
    vendor = item.get("vendor", file_vendor.id if file_vendor else None)
    if not vendor:
        raise KeyscanError(f"{where}: vendor is missing")
    if item["severity"] not in SEVERITIES:
        raise KeyscanError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    verifier = file_vendor.id if file_vendor and file_vendor.verify is not None else None
    if item.get("verify") is not None and (item["verify"] != verifier or vendor != verifier):
        allowed = f"{verifier!r} (this file's vendor)" if verifier else "absent"
        raise KeyscanError(f"{where}: verify must be {allowed}: a rule's keys are checked only "
                           "as its own vendor file's verify section says")
    lists = {key: _strings(item, key, where) for key in _RULE_KEYS if _RULE_KEYS[key] is list}
    if not lists["keywords"] or not all(lists["keywords"]):
        raise KeyscanError(f"{where}: keywords needs at least one non-empty literal")
    pattern = item["pattern"]
    regex: bytes | re.Pattern[bytes]
    width = widths.get(pattern) if shipped and widths is not None else None
    if width is not None:  # the parsed copy's: it compiled when the copy was written
        regex = pattern.encode("utf-8")
    else:
        regex = _compile(pattern, where, shipped)
        width = min_width(regex)
        if shipped:
            regex = pattern.encode("utf-8")  # as from the copy (compiled: `compiled`'s cache)
    return Rule(
        id=item["id"],
        vendor=vendor,
        severity=item["severity"],
        regex=regex,
        keywords=tuple(word.lower().encode() for word in lists["keywords"]),
        prefixes=tuple(lists["prefixes"]),
        description=item.get("description", ""),
        verify=item.get("verify"),
        priority=item.get("priority", 100),
        entropy=float(item.get("entropy", 0.0)),
        references=tuple(lists["references"]),
        examples=tuple(lists["examples"]),
        negative_examples=tuple(lists["negative_examples"]),
        width=width,
    )


def _strings(item: dict[str, Any], key: str, where: str) -> list[str]:
    values = item.get(key, [])
    if not all(isinstance(value, str) for value in values):
        raise KeyscanError(f"{where}: {key} must be a list of strings")
    return list(values)


def _compile(pattern: str, where: str, shipped: bool) -> re.Pattern[bytes]:
    regex: re.Pattern[bytes]
    if shipped:
        try:
            regex = compiled(pattern.encode("utf-8"))
        except re.error as error:
            raise KeyscanError(f"{where}: pattern is not a valid regex: {error}") from None
    else:
        from keyscan.patterns import compile_untrusted

        regex = compile_untrusted(pattern, where, as_bytes=True)
    if regex.groups != 1:
        raise KeyscanError(
            f"{where}: pattern has {regex.groups} capture groups; "
            "it needs exactly one (the secret): use (?:...) for the others"
        )
    return regex


def min_width(pattern: re.Pattern[bytes]) -> int:
    """The fewest bytes a match of `pattern` spans (0 if the regex parser cannot tell)."""
    import importlib

    try:  # the stdlib's own regex parser: `re._parser` from 3.11, `sre_parse` before
        parser = importlib.import_module("re._parser")
    except ImportError:  # pragma: no cover - Python 3.10
        parser = importlib.import_module("sre_parse")
    try:
        return int(parser.parse(pattern.pattern, pattern.flags).getwidth()[0])
    except Exception:  # a private API: if it ever changes, search all base64
        return 0


def _type_hint(key: str) -> str:
    expected = _RULE_KEYS[key]
    if expected is list:
        return "a list of strings"
    if expected is int:
        return "an integer"
    if expected is str:
        return "a string"
    return "a number"
