"""Report -> Markdown for a GitHub Actions job summary ($GITHUB_STEP_SUMMARY).

Pure. Always redacted, even with --show-secrets: the run page of a public
repository is public, and this text is written as a side effect the user did
not ask for by name.
"""

from __future__ import annotations

import html

from keyscan.model import Finding, Report
from keyscan.report.common import access_text, printable


def render_step_summary(report: Report, scanned: str) -> str:
    """A heading, what was scanned, and a table of the findings (or a line saying none)."""
    count = len(report.findings)
    lines = [f"### keyscan: {_plural(count, 'secret')} found", ""]
    lines.append(f"Scanned {_text(scanned)}: {_stats(report)}.")
    lines.append("")
    if not report.findings:
        lines.append("No secrets found.")
        return "\n".join(lines) + "\n"
    verified = any(finding.verification is not None for finding in report.findings)
    status = " Status |" if verified else ""
    lines.append(f"| Vendor | Key | File | Line | Commit |{status} Revoke it at |")
    lines.append(f"|---|---|---|---:|---|{'---|' if verified else ''}---|")
    lines.extend(_row(finding, report, verified) for finding in report.findings)
    lines.append("")
    lines.append(
        "Revoke each key at its vendor first, then remove it from the code; "
        "a key that reached a pushed commit stays in the history."
    )
    return "\n".join(lines) + "\n"


def _row(finding: Finding, report: Report, verified: bool) -> str:
    vendor = report.vendors.get(finding.vendor)
    key = finding.redacted(show_secrets=False)
    if finding.encoding:
        key += f" ({finding.encoding})"
    commit = finding.commit.sha[:12] if finding.commit else ""
    cells = [
        _text(vendor.name if vendor else finding.vendor),
        f"<code>{_text(key)}</code>",
        _text(finding.path),
        str(finding.line),
        f"<code>{commit}</code>" if commit else "",
    ]
    if verified:
        cells.append(_status(finding))
    cells.append(_text(vendor.revoke if vendor else ""))
    return "| " + " | ".join(cells) + " |"


def _status(finding: Finding) -> str:
    """`**live**: opens org Acme, key 'Production Backend', …`, or the status alone."""
    verification = finding.verification
    if verification is None:
        return "not verified"
    opens = access_text(verification.access)
    status = f"**{verification.status}**" if verification.status == "live" else verification.status
    return f"{status}: opens {_text(opens)}" if opens else status


def _text(value: str) -> str:
    """Literal text in a table cell: no Markdown, no HTML, no cell breaks from odd paths."""
    one_line = printable(" ".join(value.split()))  # and no control character or `##[`
    escaped = html.escape(one_line, quote=False).replace("|", "&#124;")
    for char in "\\`*_[]~":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def _stats(report: Report) -> str:
    stats = report.stats
    return f"{_plural(stats.commits, 'commit')}, {_plural(stats.files, 'file')}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
