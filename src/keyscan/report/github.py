"""`--format github`: GitHub Actions workflow commands, shown as annotations on the PR diff.

    ::error file=config/settings.py,line=12,col=9,title=PostEverywhere API key::…

GitHub's escaping rules: in the message `%`, CR and LF are percent-encoded; in
a property value `:` and `,` are too (they would end the value). Without this,
a file name with a comma would cut the annotation short, and a newline in a
message could start a second, forged workflow command.
"""

from __future__ import annotations

from keyscan.model import Finding, Report
from keyscan.report.common import (
    finding_message,
    printable,
    summary_line,
    vendor_name,
)

_COMMAND = {"critical": "error", "high": "error", "medium": "warning", "low": "notice"}


def render(report: Report) -> str:
    lines = [_annotation(report, finding) for finding in report.findings]
    lines.append(f"keyscan: {summary_line(report)}.")  # a plain log line, not a command
    return "\n".join(lines) + "\n"


def _annotation(report: Report, finding: Finding) -> str:
    name = vendor_name(report, finding.vendor)
    message = finding_message(report, finding)
    properties = {
        "file": finding.path,
        "line": str(finding.line),
        "col": str(finding.column),
        "title": f"{name} API key",
    }
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    command = _COMMAND.get(finding.severity, "error")
    return f"::{command} {joined}::{escape_data(message)}"


def escape_data(text: str) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return printable(text)  # what is left: ESC and other controls that could fake log output


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
