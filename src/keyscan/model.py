"""The values that flow through a scan: Fragment in, Finding out.

sources -> engine -> filters -> verify -> report. Every stage takes and returns
these values; nothing here does I/O.

Frozen values (`Stats` aside), but not dataclasses as elsewhere in keyscan: the
pre-commit hook imports this module on every commit, and importing `dataclasses`
(it imports inspect, ast, dis, tokenize: ~9 ms) and generating the hook's
dataclasses (~0.5 ms each) took ~20 ms of its 63 ms (issue #5). So the values the
hook uses, here and in the modules it imports, are plain classes on `Value`, which
gives what callers used of the dataclasses: equality and hash over the fields, a
repr, and `replace`. Fields are `Final`, so mypy rejects assigning one.
"""

from __future__ import annotations

import functools  # loaded by `re` and `enum` at every start-up: free here

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any, ClassVar, Final, TypeVar

    _V = TypeVar("_V", bound="Value")

SEVERITIES = ("critical", "high", "medium", "low")


class Value:
    """A frozen dataclass's behaviour over the fields: `__slots__`, which `__init__` sets."""

    __slots__: tuple[str, ...] = ()
    _fields: ClassVar[tuple[str, ...]] = ()  # in the order `__init__` takes them

    def __init_subclass__(cls) -> None:
        code = cls.__dict__["__init__"].__code__  # each value has its own, typed `__init__`
        cls._fields = code.co_varnames[1 : code.co_argcount]
        assert sorted(cls._fields) == sorted(cls.__slots__), f"{cls.__name__}: fields differ"

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def replace(self: _V, **changes: object) -> _V:
        """A copy with `changes` (field name -> value), like `dataclasses.replace`."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        return type(self)(**{name: changes.get(name, getattr(self, name)) for name in self._fields})

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"


class Commit(Value):
    """The commit a finding was introduced in (git modes only)."""

    __slots__ = ("author_email", "author_name", "date", "sha")

    def __init__(self, sha: str, author_name: str, author_email: str, date: str) -> None:
        self.sha: Final = sha
        self.author_name: Final = author_name
        self.author_email: Final = author_email
        self.date: Final = date  # author date, ISO 8601 with offset


class Fragment(Value):
    """Bytes to scan and where they came from."""

    __slots__ = ("commit", "data", "path")

    def __init__(self, data: bytes, path: str, commit: Commit | None = None) -> None:
        self.data: Final = data
        self.path: Final = path  # as reported: normalised, '/'-separated; '-' for stdin
        self.commit: Final = commit


class Rule(Value):
    """One detection rule (see rules/*.yaml).

    A shipped rule's pattern is kept as written and compiled when the engine first needs
    it (`pattern`): compiling the shipped patterns costs a hook run ~3 ms, and most runs
    meet no keyword. Patterns from a config come compiled (RE2, checked when loaded)."""

    __slots__ = (
        "description",
        "entropy",
        "examples",
        "id",
        "keywords",
        "negative_examples",
        "prefixes",
        "priority",
        "references",
        "regex",
        "severity",
        "vendor",
        "verify",
        "width",
    )

    def __init__(
        self,
        id: str,
        vendor: str,
        severity: str,
        regex: bytes | re.Pattern[bytes],
        keywords: tuple[bytes, ...],
        prefixes: tuple[str, ...] = (),
        description: str = "",
        verify: str | None = None,
        priority: int = 100,
        entropy: float = 0.0,
        references: tuple[str, ...] = (),
        examples: tuple[str, ...] = (),
        negative_examples: tuple[str, ...] = (),
        width: int | None = None,
    ) -> None:
        self.id: Final = id
        self.vendor: Final = vendor  # vendor id, e.g. "posteverywhere"
        self.severity: Final = severity
        self.regex: Final = regex  # the pattern as written (a shipped rule's), or compiled
        self.keywords: Final = keywords  # lowercase literals; the regex runs only near one
        self.prefixes: Final = prefixes  # literal prefixes of the secret (redaction, placeholders)
        self.description: Final = description
        self.verify: Final = verify  # verifier id (vendor module), or None
        self.priority: Final = priority  # where two rules match the same text, the higher wins
        self.entropy: Final = entropy  # minimum Shannon entropy of the secret, bits per character
        self.references: Final = references
        self.examples: Final = examples
        self.negative_examples: Final = negative_examples
        # the fewest bytes a match spans (0: the regex parser cannot tell); None: not
        # worked out yet (the engine does, from the pattern)
        self.width: Final = width

    @property
    def pattern(self) -> re.Pattern[bytes]:
        """The compiled pattern: exactly one capture group, the secret."""
        regex = self.regex
        return compiled(regex) if isinstance(regex, bytes) else regex


@functools.cache
def compiled(pattern: bytes) -> re.Pattern[bytes]:
    """A shipped pattern, compiled once per process (what `Rule.pattern` gives)."""
    import re

    return re.compile(pattern)


class Vendor(Value):
    """A vendor, from its file (rules/<id>.yaml): the one place a vendor lives."""

    __slots__ = ("id", "name", "revoke", "verify")

    def __init__(
        self, id: str, name: str, revoke: str, verify: dict[str, Any] | None = None
    ) -> None:
        self.id: Final = id
        self.name: Final = name  # display name, e.g. "PostEverywhere"
        self.revoke: Final = revoke  # where to revoke a key, from the vendor's docs
        # how its keys are checked, as its shipped file says (read by keyscan.verify.endpoints);
        # None for a vendor that is not verified or that a user's config named
        self.verify: Final = verify


class Verification(Value):
    __slots__ = ("access", "detail", "http_status", "status")

    def __init__(
        self,
        status: str,
        http_status: int | None = None,
        detail: str = "",
        access: tuple[tuple[str, object], ...] | None = None,
    ) -> None:
        self.status: Final = status  # live | invalid | unknown | unverifiable
        self.http_status: Final = http_status
        self.detail: Final = detail
        # what a live key opens: (field, value) pairs in the contract's order, or None
        self.access: Final = access


class Finding(Value):
    """One secret found: the one type that flows from the engine to every reporter."""

    __slots__ = (
        "column",
        "commit",
        "encoding",
        "first_seen",
        "image",
        "last_seen",
        "layer",
        "line",
        "new",
        "path",
        "prefix",
        "refs",
        "repository",
        "rule_id",
        "secret",
        "secret_hash",
        "severity",
        "vendor",
        "verification",
    )

    def __init__(
        self,
        rule_id: str,
        vendor: str,
        severity: str,
        secret: str,
        path: str,
        line: int,
        column: int,
        prefix: str = "",
        encoding: str | None = None,
        commit: Commit | None = None,
        verification: Verification | None = None,
        refs: tuple[str, ...] = (),
        image: str | None = None,
        layer: str | None = None,
        repository: str | None = None,
        first_seen: str | None = None,
        last_seen: str | None = None,
        new: bool | None = None,
        secret_hash: str | None = None,
    ) -> None:
        self.rule_id: Final = rule_id
        self.vendor: Final = vendor
        self.severity: Final = severity
        self.secret: Final = secret  # the whole secret: render only through `redact`
        self.path: Final = path
        self.line: Final = line  # 1-based
        self.column: Final = column  # 1-based, in characters of the line
        self.prefix: Final = prefix  # the known prefix the secret starts with ("" if none)
        self.encoding: Final = encoding  # None, or how the secret was hidden ("base64")
        self.commit: Final = commit
        self.verification: Final = verification
        self.refs: Final = refs  # git modes: refs that reach the introducing commit, sorted
        self.image: Final = image  # `keyscan image`: the IMAGE argument
        self.layer: Final = layer  # `keyscan image`: "sha256:…" of the layer, None for config
        self.repository: Final = repository  # `keyscan audit`: the repository as given
        self.first_seen: Final = first_seen  # `keyscan audit`: ISO 8601, from the inventory
        self.last_seen: Final = last_seen
        self.new: Final = new  # `keyscan audit`: first seen in this audit
        # Set when `secret` holds only the redacted form (a finding read back from the
        # inventory, which never stores a whole secret): the whole secret's sha256.
        self.secret_hash: Final = secret_hash

    @property
    def secret_sha256(self) -> str:
        if self.secret_hash is not None:
            return self.secret_hash
        import hashlib  # here, not at the top: ~3 ms (OpenSSL) a hook run with no finding skips

        return hashlib.sha256(self.secret.encode("utf-8", "surrogateescape")).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Depends only on rule, secret and path: survives moved lines and rewritten history."""
        import hashlib  # see secret_sha256

        material = "\0".join((self.rule_id, self.path, self.secret_sha256))
        return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()[:32]

    def redacted(self, show_secrets: bool = False) -> str:
        if self.secret_hash is not None:
            return self.secret  # already redacted: the whole secret is not known here
        return self.secret if show_secrets else redact(self.secret, self.prefix)

    def without_secret(self) -> Finding:
        """This finding holding only the redacted secret and its hash (what may be stored)."""
        if self.secret_hash is not None:
            return self
        return self.replace(secret=redact(self.secret, self.prefix), secret_hash=self.secret_sha256)


def redact(secret: str, prefix: str = "") -> str:
    """The known prefix, `…`, and the last 4 characters; no tail for short bodies."""
    if not (prefix and secret.startswith(prefix)):
        prefix = ""
    body = secret[len(prefix) :]
    tail = body[-4:] if len(body) >= 16 else ""
    return f"{prefix}…{tail}"


class Stats(Value):
    """What a source read; mutated by sources while they stream, read by reporters."""

    __slots__ = (
        "commits",
        "failed_repositories",
        "files",
        "scanned_bytes",
        "skipped",
        "suppressed",
        "unreadable",
    )
    __hash__ = None  # type: ignore[assignment]  # mutable: no hash, as a plain dataclass

    def __init__(
        self,
        scanned_bytes: int = 0,
        files: int = 0,
        commits: int = 0,
        skipped: int = 0,
        suppressed: dict[str, int] | None = None,
        unreadable: int = 0,
        failed_repositories: int = 0,
    ) -> None:
        self.scanned_bytes = scanned_bytes
        self.files = files
        self.commits = commits
        self.skipped = skipped  # unreadable or odd files, each with a warning on stderr
        self.suppressed: dict[str, int] = {} if suppressed is None else suppressed  # reason -> n
        self.unreadable = unreadable  # git objects / inputs that could not be read (exit != 0)
        self.failed_repositories = failed_repositories  # `keyscan audit`: could not be scanned


class Report(Value):
    """All a reporter needs; reporters are pure functions Report -> str."""

    __slots__ = (
        "findings",
        "layer_notes",
        "mode",
        "rules",
        "show_secrets",
        "stats",
        "vendors",
        "version",
    )

    def __init__(
        self,
        findings: tuple[Finding, ...],
        stats: Stats,
        rules: dict[str, Rule],
        vendors: dict[str, Vendor],
        version: str,
        show_secrets: bool = False,
        mode: str = "scan",
        layer_notes: dict[str, str] | None = None,
    ) -> None:
        self.findings: Final = findings
        self.stats: Final = stats
        self.rules: Final = rules
        self.vendors: Final = vendors
        self.version: Final = version
        self.show_secrets: Final = show_secrets
        self.mode: Final = mode  # the command: scan | git | staged | pre-push | ci (the advice)
        # `keyscan image`: layer digest -> "layer 2 of 5, added by: RUN …" (secrets redacted)
        self.layer_notes: Final = layer_notes or {}
