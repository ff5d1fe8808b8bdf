"""Findings a user should not see: placeholders, `allow` entries, a baseline.

Nothing is dropped silently: every suppressed finding is counted in
`stats.suppressed[reason]`, and the reports show those counts.
"""

from __future__ import annotations

from collections.abc import Iterable

from keyscan.filters.allowlist import Allowlist
from keyscan.filters.placeholders import is_placeholder
from keyscan.model import Finding, Stats

__all__ = ["apply_filters"]


def apply_filters(
    findings: Iterable[Finding],
    *,
    allowlist: Allowlist,
    baseline: frozenset[str],
    include_placeholders: bool,
    stats: Stats,
) -> list[Finding]:
    """The findings to report; the reason for each one left out is counted in `stats`."""
    kept = []
    for finding in findings:
        reason = _reason(finding, allowlist, baseline, include_placeholders)
        if reason is None:
            kept.append(finding)
        else:
            stats.suppressed[reason] = stats.suppressed.get(reason, 0) + 1
    return kept


def _reason(
    finding: Finding, allowlist: Allowlist, baseline: frozenset[str], include_placeholders: bool
) -> str | None:
    # A placeholder is not a key at all, so say so before any user rule claims it.
    if not include_placeholders and is_placeholder(finding.secret, finding.prefix):
        return "placeholder"
    reason = allowlist.reason(finding)
    if reason is not None:
        return reason
    if baseline and finding.fingerprint in baseline:
        return "baseline"
    return None
