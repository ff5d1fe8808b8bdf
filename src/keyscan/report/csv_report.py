"""`--format csv` (`keyscan inventory`): one row per finding, for spreadsheets.

A cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`,
`@`, a tab or a carriage return: a hostile repository's file name can) is
prefixed with `'`, as OWASP advises; control characters are escaped as elsewhere.
"""

from __future__ import annotations

import csv
import io

from keyscan.model import Finding, Report
from keyscan.report.common import printable

COLUMNS = (
    "repository", "first_seen", "last_seen", "status", "http_status", "vendor", "rule_id",
    "severity", "secret", "secret_sha256", "path", "line", "column", "encoding", "commit",
    "author_name", "author_email", "date", "refs", "fingerprint",
)


def render(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for finding in report.findings:
        writer.writerow([_cell(value) for value in _row(finding, report.show_secrets)])
    return out.getvalue()


def _row(finding: Finding, show_secrets: bool) -> list[object]:
    verification = finding.verification
    commit = finding.commit
    return [
        finding.repository or "", finding.first_seen or "", finding.last_seen or "",
        verification.status if verification else "unverified",
        verification.http_status if verification and verification.http_status else "",
        finding.vendor, finding.rule_id, finding.severity, finding.redacted(show_secrets),
        finding.secret_sha256, finding.path, finding.line, finding.column,
        finding.encoding or "", commit.sha if commit else "",
        commit.author_name if commit else "", commit.author_email if commit else "",
        commit.date if commit else "", " ".join(finding.refs), finding.fingerprint,
    ]


def _cell(value: object) -> str:
    text = printable(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
