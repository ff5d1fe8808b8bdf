"""`--format text` (the default): for a person reading a terminal or a CI log.

Each finding, live keys first; then what to do next (which depends on the
command: a staged key has not been committed yet, a pre-push key has not left
the machine); then a one-line summary.
"""

from __future__ import annotations

from keyscan.model import Finding, Report
from keyscan.report.common import (
    access_text,
    is_live,
    printable_lines,
    revoke_text,
    summary_line,
    vendor_name,
    verification_text,
)

SHORT_SHA = 10


def render(report: Report) -> str:
    """Every line escaped on its own (`printable_lines`): no byte of a path, ref or commit
    message can end a line early or start a workflow command under GitHub Actions."""
    lines: list[str] = []
    findings = sorted(report.findings, key=lambda f: not is_live(f))  # stable: live first
    for finding in findings:
        lines.extend([*_finding(report, finding), ""])
    if findings:
        lines.extend([*_next_steps(report), ""])
    lines.append(f"keyscan: {summary_line(report)}.")
    return printable_lines(lines) + "\n"


def _finding(report: Report, finding: Finding) -> list[str]:
    lines = [
        f"{finding.path}:{finding.line}:{finding.column}: "
        f"{vendor_name(report, finding.vendor)} API key ({finding.rule_id}, {finding.severity})",
        f"  key:      {finding.redacted(report.show_secrets)}"
        + (f" ({finding.encoding}-encoded in the file)" if finding.encoding else ""),
    ]
    if finding.commit is not None:
        commit = finding.commit
        lines.append(
            f"  commit:   {commit.sha[:SHORT_SHA]} by {commit.author_name} "
            f"<{commit.author_email}> on {commit.date}"
        )
    if finding.image is not None:
        lines.extend(_image_lines(report, finding))
    if finding.refs:
        lines.append(f"  refs:     {', '.join(finding.refs)}")
    if finding.repository is not None:
        seen = f"first seen {finding.first_seen}" + (" (new)" if finding.new else "")
        lines.append(f"  repo:     {finding.repository} ({seen})")
    if finding.verification is not None:
        lines.append(f"  status:   {verification_text(finding.verification)}")
        opens = access_text(finding.verification.access)
        if opens:
            lines.append(f"  opens:    {opens}")
    lines.append(f"  revoke:   {revoke_text(report, finding.vendor)}")
    return lines


def _image_lines(report: Report, finding: Finding) -> list[str]:
    lines = [f"  image:    {finding.image}"]
    if finding.layer is None:
        lines.append("  layer:    none: in the image configuration (ENV, CMD, LABEL, RUN lines)")
    else:
        note = report.layer_notes.get(finding.layer)
        lines.append(f"  layer:    {finding.layer}" + (f" ({note})" if note else ""))
    return lines


def _next_steps(report: Report) -> list[str]:
    steps = [*_fix_steps(report), *_false_positive_steps(report.mode)]
    return ["What to do next:", *(f"  - {step}" for step in steps)]


def _fix_steps(report: Report) -> list[str]:
    live = sum(1 for f in report.findings if is_live(f))
    if report.mode == "staged":
        paths = " ".join(_shell_quoted(sorted({f.path for f in report.findings})))
        return [
            f"Not committed yet: take the key out and stage the file again (git add {paths}), "
            f"or unstage it (git restore --staged {paths}); load the key from the "
            "environment or a secret store instead.",
            "If the key was ever pushed or shared, revoke it where shown above.",
        ]
    if report.mode == "pre-push":
        return [
            "Not pushed yet: rewrite the commits before pushing "
            "(git rebase -i, edit the commit that added the key), then push again.",
            "If the key was ever pushed or shared elsewhere, revoke it where shown above.",
        ]
    if report.mode == "image":
        return [
            "Revoke the key first, where shown above: rebuilding the image without it is not "
            "enough once the image was pushed (every pulled copy and the registry keep the "
            "layer or configuration that holds it).",
            "Then rebuild without the key (pass it at run time, or as a build secret: "
            "RUN --mount=type=secret), and delete the old tags and digests from the registry.",
        ]
    steps = [
        f"Revoke the live keys first ({live}): anyone who has them can use them now."
        if live
        else "Treat each key as leaked: revoke it where shown above and create a new one.",
        "Move the new key out of the code (environment variable or secret store)."]
    if report.mode != "scan" or any(f.commit for f in report.findings):
        steps.append(
            "Deleting the line does not remove the key from git history: revoke it, "
            "then rewrite history (git filter-repo) if the repository is shared."
        )
    return steps


def _false_positive_steps(mode: str) -> list[str]:
    # A baseline is made once over everything: fingerprints (rule, secret, path) match
    # across scan modes that report repository-relative paths. Hooks take no options,
    # so the advice names the config key that every command reads, not --baseline.
    source = {"scan": "scan .", "image": "image"}.get(mode, "git")
    return [
        "Not a real key? Add 'keyscan:allow' on its line, list it under 'allow' in "
        ".keyscan.yaml (paths, regexes, or secrets: [\"sha256:<secret_sha256 from "
        "--format json>\"]), or accept today's findings: "
        f"'keyscan {source} --format json --output .keyscan-baseline.json', then "
        "'baseline: .keyscan-baseline.json' in .keyscan.yaml (hooks and CI read it there).",
    ]


def _shell_quoted(paths: list[str]) -> list[str]:
    import shlex  # only for the staged advice

    return [shlex.quote(path) for path in paths]
