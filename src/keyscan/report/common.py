"""Wording the reports share: vendor names, where to revoke, the one-line summary."""

from __future__ import annotations

import re

from keyscan.model import Finding, Report, Verification

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# Control characters (a file name can hold a newline that forges a report line, or ESC
# sequences that rewrite a terminal), the Unicode line and paragraph separators, and the
# surrogates that stand for undecodable bytes of a path. Patterns, not compiled regexes:
# `re` compiles and caches them on first use, so the hook does not pay ~0.3 ms at import.
_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]"
_JSON_RAW = "[\u2028\u2029\udc80-\udcff]"  # what JSON text may hold raw, but should not
# GitHub's runner reads `##[command]` anywhere in a line (its legacy syntax) and
# `::command::` at the start of one, after any whitespace (`TrimStart`).
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LEGACY_COMMAND = "##["
_SAFE_LEGACY = "#\\x23["


def printable(text: str) -> str:
    """`text` safe to show inside one line: each control character or raw byte as `\\xNN`,
    and no `##[` (a workflow command anywhere in a GitHub Actions log line).

    The one escaping of text taken from the input (paths, ref names, commit messages,
    rule fields, server answers) for every line-oriented format and every stderr line.
    """
    text = re.sub(_UNPRINTABLE, _escape, text)
    return text.replace(_LEGACY_COMMAND, _SAFE_LEGACY) if _LEGACY_COMMAND in text else text


def printable_line(text: str) -> str:
    """`printable`, for text that starts a line: it cannot start a `::` workflow command."""
    text = printable(text)
    body = text.lstrip()
    if body.startswith("::"):
        cut = len(text) - len(body)
        return text[:cut] + "\\x3a" + text[cut + 1:]
    return text


def printable_lines(lines: Iterable[str]) -> str:
    """Lines (each built from fields, none holding its own newline) as safe text."""
    return "\n".join(printable_line(line) for line in lines)


def json_safe(text: str) -> str:
    """JSON text with undecodable path bytes as `\\udcNN` escapes, so it stays valid UTF-8,
    the line separators U+2028/9 escaped (old JavaScript parsers end a line there),
    and `##[` written `#\\u0023[` (the same string), so the runner reads no command in it."""
    if _has_json_raw(text):
        text = re.sub(_JSON_RAW, lambda match: f"\\u{ord(match.group()):04x}", text)
    return text.replace(_LEGACY_COMMAND, "#\\u0023[")


def _has_json_raw(text: str) -> bool:
    """Whether `text` holds a character of `_JSON_RAW`: asked of the str itself (its search
    and its UTF-8 encoder are C loops; the regex took ~14 ms on an audit's 1.6 MB report),
    and only then the regex runs."""
    if text.isascii():
        return False
    if "\u2028" in text or "\u2029" in text:
        return True
    try:
        text.encode("utf-8")  # fails on any surrogate, those of _JSON_RAW among them
    except UnicodeEncodeError:
        return True
    return False


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a raw byte of an undecodable path
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def vendor_name(report: Report, vendor: str) -> str:
    known = report.vendors.get(vendor)
    return known.name if known else vendor


def revoke_text(report: Report, vendor: str) -> str:
    """Where to revoke a key of `vendor`, from its docs; a plain hint when unknown."""
    known = report.vendors.get(vendor)
    if known and known.revoke:
        return f"{known.name}: {known.revoke}"
    return f"in {vendor_name(report, vendor)}'s dashboard, where its API keys are managed"


def finding_message(report: Report, finding: Finding) -> str:
    """One finding as a sentence, for annotations and SARIF results (redacted by default)."""
    key = finding.redacted(report.show_secrets)
    encoded = f" ({finding.encoding}-encoded)" if finding.encoding else ""
    message = f"{vendor_name(report, finding.vendor)} API key {key}{encoded} ({finding.rule_id})."
    if finding.commit is not None:
        message += f" Introduced in {finding.commit.sha[:10]} by {finding.commit.author_name}."
    if finding.verification is not None:
        message += f" Verification: {verification_text(finding.verification)}."
        opens = access_text(finding.verification.access)
        if opens:
            message += f" Opens: {opens}."
    return message + f" Revoke it: {revoke_text(report, finding.vendor)}."


def is_live(finding: Finding) -> bool:
    return finding.verification is not None and finding.verification.status == "live"


def verification_text(verification: Verification) -> str:
    """`live (HTTP 200)`, `unknown: timed out`, … for a person."""
    text = verification.status
    if verification.http_status is not None:
        text += f" (HTTP {verification.http_status})"
    if verification.detail:
        text += f": {verification.detail}"
    return text


# how each access field reads in one line, in the contract's order
_ACCESS_LABELS = {
    "organization": "org {}",
    "workspace": "workspace {}",
    "key_name": "key '{}'",
    "scopes": "scopes {}",
    "last_used_at": "last used {}",
    "expires_at": "expires {}",
    "credits": "credits {}",
}
_DATE_TIME = "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+(?:Z|[+-][0-9:]+)?"


def access_text(access: tuple[tuple[str, object], ...] | None) -> str:
    """What a live key opens, in one line: `org Acme, key 'Production Backend', scopes
    read+write, last used 2026-11-30` ("" when the vendor said nothing).

    The values were made safe to print when they were read (keyscan.verify.access).
    """
    parts = []
    for field, value in access or ():
        label = _ACCESS_LABELS.get(field)
        if label is None:
            continue
        if isinstance(value, tuple):
            shown = "+".join(str(item) for item in value)
        elif field.endswith("_at") and isinstance(value, str) and re.fullmatch(_DATE_TIME, value):
            shown = value[:10]  # the day is what decides how urgent; JSON keeps the whole
        else:
            shown = str(value)
        parts.append(label.format(shown))
    return ", ".join(parts)


def access_dict(access: tuple[tuple[str, object], ...] | None) -> dict[str, object] | None:
    """`access` as the JSON report's object (lists for scopes); None when not live."""
    if access is None:
        return None
    return {field: list(value) if isinstance(value, tuple) else value for field, value in access}


def summary_line(report: Report) -> str:
    """`2 findings in 14 files (1.2 MB); 3 suppressed (2 baseline, 1 placeholder)`."""
    stats = report.stats
    count = len(report.findings)
    head = f"{_plural(count, 'finding')}" if count else "no keys found"
    if report.mode == "inventory":
        repositories = len({f.repository for f in report.findings})
        return f"{head} in the inventory ({_plural(repositories, 'repository')})".replace(
            "repositorys", "repositories")
    scope = [_plural(stats.files, "file")]
    if report.mode in ("git", "pre-push", "ci", "audit") or stats.commits:
        scope.append(_plural(stats.commits, "commit"))
    parts = [f"{head} in {', '.join(scope)} ({human_bytes(stats.scanned_bytes)} scanned)"]
    suppressed = sum(stats.suppressed.values())
    if suppressed:
        reasons = ", ".join(
            f"{n} {reason}" for reason, n in sorted(stats.suppressed.items(), key=_by_count)
        )
        parts.append(f"{suppressed} suppressed ({reasons})")
    if stats.skipped:
        parts.append(f"{_plural(stats.skipped, 'file')} skipped (see the warnings)")
    if stats.failed_repositories:
        parts.append(f"{_plural(stats.failed_repositories, 'repository')} failed "
                     "(see the warnings)".replace("repositorys", "repositories"))
    if stats.unreadable and report.mode == "image":  # a part that is not its digest too
        parts.append(f"{_plural(stats.unreadable, 'image part')} unreadable or altered "
                     "(see the warnings)")
    elif stats.unreadable:
        parts.append(f"{_plural(stats.unreadable, 'git object')} unreadable (see the warnings)")
    return "; ".join(parts)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])
