"""Wording the reports share: vendor names, where to revoke, the one-line summary."""

from __future__ import annotations

import re

from keyscan.model import Finding, Report, Verification

# control characters (a file name can hold ESC sequences that rewrite a terminal) and the
# surrogates that stand for undecodable bytes of a path. Patterns, not compiled regexes:
# `re` compiles and caches them on first use, so the hook does not pay ~0.3 ms at import.
_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\udc80-\udcff]"
_SURROGATE = "[\udc80-\udcff]"


def printable(text: str) -> str:
    """`text` safe to show a person: each control character or raw byte as `\\xNN`."""
    return re.sub(_UNPRINTABLE, _escape, text)


def printable_lines(text: str) -> str:
    """Like `printable`, keeping the newlines that separate lines."""
    return "\n".join(printable(line) for line in text.split("\n"))


def json_safe(text: str) -> str:
    """JSON text with undecodable path bytes as `\\udcNN` escapes, so it stays valid UTF-8."""
    return re.sub(_SURROGATE, lambda match: f"\\u{ord(match.group()):04x}", text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}"


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


def summary_line(report: Report) -> str:
    """`2 findings in 14 files (1.2 MB); 3 suppressed (2 baseline, 1 placeholder)`."""
    stats = report.stats
    count = len(report.findings)
    head = f"{_plural(count, 'finding')}" if count else "no keys found"
    scope = [_plural(stats.files, "file")]
    if report.mode in ("git", "pre-push", "ci") or stats.commits:
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
