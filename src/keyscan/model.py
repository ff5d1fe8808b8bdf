"""The values that flow through a scan: Fragment in, Finding out.

sources -> engine -> filters -> verify -> report. Every stage takes and returns
these frozen values; nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True, slots=True)
class Commit:
    """The commit a finding was introduced in (git modes only)."""

    sha: str
    author_name: str
    author_email: str
    date: str  # author date, ISO 8601 with offset


@dataclass(frozen=True, slots=True)
class Fragment:
    """Bytes to scan and where they came from."""

    data: bytes
    path: str  # as reported: normalised, '/'-separated; '-' for stdin
    commit: Commit | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled detection rule (see rules/*.yaml)."""

    id: str
    vendor: str  # vendor id, e.g. "posteverywhere"
    severity: str
    pattern: re.Pattern[bytes]  # exactly one capture group: the secret
    keywords: tuple[bytes, ...]  # lowercase literals; the regex runs only near one of them
    prefixes: tuple[str, ...] = ()  # known literal prefixes of the secret (redaction, placeholders)
    description: str = ""
    verify: str | None = None  # verifier id (vendor module), or None
    priority: int = 100  # where two rules match the same text, the higher wins
    entropy: float = 0.0  # minimum Shannon entropy of the secret, bits per character
    references: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    negative_examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Vendor:
    id: str
    name: str  # display name, e.g. "PostEverywhere"
    revoke: str  # where to revoke a key, from the vendor's docs


@dataclass(frozen=True, slots=True)
class Verification:
    status: str  # live | invalid | unknown | unverifiable
    http_status: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    vendor: str
    severity: str
    secret: str  # the whole secret: render only through `redact`
    path: str
    line: int  # 1-based
    column: int  # 1-based, in characters of the line
    prefix: str = ""  # the known prefix the secret starts with ("" if none)
    encoding: str | None = None  # None, or how the secret was hidden ("base64")
    commit: Commit | None = None
    verification: Verification | None = None

    @property
    def secret_sha256(self) -> str:
        import hashlib  # here, not at the top: ~3 ms (OpenSSL) a hook run with no finding skips

        return hashlib.sha256(self.secret.encode("utf-8", "surrogateescape")).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Depends only on rule, secret and path: survives moved lines and rewritten history."""
        import hashlib  # see secret_sha256

        material = "\0".join((self.rule_id, self.path, self.secret_sha256))
        return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()[:32]

    def redacted(self, show_secrets: bool = False) -> str:
        return self.secret if show_secrets else redact(self.secret, self.prefix)


def redact(secret: str, prefix: str = "") -> str:
    """The known prefix, `…`, and the last 4 characters; no tail for short bodies."""
    if not (prefix and secret.startswith(prefix)):
        prefix = ""
    body = secret[len(prefix) :]
    tail = body[-4:] if len(body) >= 16 else ""
    return f"{prefix}…{tail}"


@dataclass(slots=True)
class Stats:
    """What a source read; mutated by sources while they stream, read by reporters."""

    scanned_bytes: int = 0
    files: int = 0
    commits: int = 0
    skipped: int = 0  # unreadable or odd files, each with a warning on stderr
    suppressed: dict[str, int] = field(default_factory=dict)  # reason -> count


@dataclass(frozen=True, slots=True)
class Report:
    """All a reporter needs; reporters are pure functions Report -> str."""

    findings: tuple[Finding, ...]
    stats: Stats
    rules: dict[str, Rule]
    vendors: dict[str, Vendor]
    version: str
    show_secrets: bool = False
    mode: str = "scan"  # the command: scan | git | staged | pre-push | ci (shapes the advice)
