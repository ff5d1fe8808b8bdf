"""`--format json`: exactly the schema of CONTRACT.md (field order included), for scripts.

Beyond the contract, `summary` carries `skipped_files`, `unreadable` (git objects that
could not be read: the exit status is then never 0) and `suppressed`
({reason: count}) so that nothing is left out silently.
"""

from __future__ import annotations

import json
from typing import Any

from keyscan.model import Finding, Report, Verification
from keyscan.report.common import access_dict, json_safe


def render(report: Report) -> str:
    document = {
        "tool": {"name": "keyscan", "version": report.version},
        "findings": [finding_dict(f, report.show_secrets, report.mode) for f in report.findings],
        "summary": summary_dict(report),
    }
    return json_safe(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


GIT_MODES = ("git", "pre-push", "ci", "audit", "inventory")  # findings carry `refs`
AUDIT_MODES = ("audit", "inventory")  # findings carry the inventory's marks


def finding_dict(finding: Finding, show_secrets: bool, mode: str = "scan") -> dict[str, Any]:
    commit = finding.commit
    document = {
        "rule_id": finding.rule_id,
        "vendor": finding.vendor,
        "severity": finding.severity,
        "secret": finding.redacted(show_secrets),
        "secret_sha256": finding.secret_sha256,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "encoding": finding.encoding,
        "commit": commit.sha if commit else None,
        "author_name": commit.author_name if commit else None,
        "author_email": commit.author_email if commit else None,
        "date": commit.date if commit else None,
        "fingerprint": finding.fingerprint,
        "verification": _verification(finding.verification),
    }
    if finding.image is not None:  # `keyscan image`
        document["image"] = finding.image
        document["layer"] = finding.layer
    if mode in GIT_MODES:
        document["refs"] = list(finding.refs)
    if mode in AUDIT_MODES:
        document["repository"] = finding.repository
        document["first_seen"] = finding.first_seen
        document["last_seen"] = finding.last_seen
        document["new"] = finding.new
    return document


def summary_dict(report: Report) -> dict[str, Any]:
    stats = report.stats
    summary = {
        "findings": len(report.findings),
        "scanned_bytes": stats.scanned_bytes,
        "files": stats.files,
        "commits": stats.commits,
        "skipped_files": stats.skipped,
        "unreadable": stats.unreadable,
        "suppressed": dict(sorted(stats.suppressed.items())),
    }
    if report.mode == "audit":
        summary["failed_repositories"] = stats.failed_repositories
    return summary


def _verification(verification: Verification | None) -> dict[str, Any] | None:
    if verification is None:
        return None
    return {
        "status": verification.status,
        "http_status": verification.http_status,
        "detail": verification.detail,
        "access": access_dict(verification.access),
    }
