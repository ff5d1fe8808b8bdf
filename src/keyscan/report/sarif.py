"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

What GitHub reads: each rule's short/full description and help (shown on the
alert), `properties.security-severity` (a number as a string: >= 9.0 critical,
>= 7.0 high, >= 4.0 medium, else low), result locations relative to the
repository (`uriBaseId` %SRCROOT%), and `partialFingerprints` to match an alert
across runs: ours is `Finding.fingerprint` (rule, path, secret hash), so an alert
survives edits that move the key.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from keyscan.model import SEVERITIES, Finding, Report, Rule
from keyscan.report.common import finding_message, json_safe, revoke_text, vendor_name

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "keyscanSecretFingerprint/v1"
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


# GitHub rejects a run with more results than this; the most severe are kept and the
# rest are counted in a notification (and the JSON report has them all).
MAX_RESULTS = 25_000


def render(report: Report) -> str:
    return json_safe(json.dumps(sarif_log(report), indent=2, ensure_ascii=False)) + "\n"


def sarif_log(report: Report, max_results: int = MAX_RESULTS) -> dict[str, Any]:
    rules = sorted(report.rules.values(), key=lambda rule: rule.id)
    index = {rule.id: number for number, rule in enumerate(rules)}
    descriptors = [_descriptor(report, rule) for rule in rules]
    for finding in report.findings:  # a finding of a rule no longer in the set still needs one
        if finding.rule_id not in index:
            index[finding.rule_id] = len(descriptors)
            descriptors.append(_bare_descriptor(report, finding))
    kept = _most_severe(report.findings, max_results)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "keyscan",
                "version": report.version,
                "semanticVersion": report.version,
                # no informationUri: keyscan cannot know where its user hosts it (README)
                "rules": descriptors,
            }
        },
        "invocations": [_invocation(len(report.findings) - len(kept), max_results)],
        "columnKind": "unicodeCodePoints",  # our columns count characters
        "results": [_result(report, f, index[f.rule_id]) for f in kept],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _most_severe(findings: tuple[Finding, ...], limit: int) -> list[Finding]:
    if len(findings) <= limit:
        return list(findings)
    rank = {severity: number for number, severity in enumerate(SEVERITIES)}
    by_severity = sorted(range(len(findings)), key=lambda i: rank.get(findings[i].severity, 0))
    chosen = set(by_severity[:limit])
    return [finding for i, finding in enumerate(findings) if i in chosen]  # report order


def _invocation(left_out: int, limit: int) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if left_out:
        text = (
            f"{left_out} finding{'' if left_out == 1 else 's'} left out: GitHub code scanning "
            f"accepts at most {limit} results per run; --format json lists them all."
        )
        notification = {"level": "warning", "message": {"text": text}}
        invocation["toolExecutionNotifications"] = [notification]
    return invocation


def _descriptor(report: Report, rule: Rule) -> dict[str, Any]:
    name = vendor_name(report, rule.vendor)
    revoke = revoke_text(report, rule.vendor)
    short = _sentence(rule.description) if rule.description else f"{name} API key"
    full = f"{short} ({rule.id}). Anyone who can read the code or its history can use it."
    links = [ref for ref in rule.references if ref.startswith(("https://", "http://"))]
    help_text = (
        f"{full}\n\nRevoke it ({revoke}), "
        "create a new one, and load it from the environment or a secret store. Deleting "
        "the line does not remove the key from git history.\n\n"
        "Not a key? Add 'keyscan:allow' on the line, or an 'allow' entry in .keyscan.yaml."
    )
    markdown = (
        f"{full}\n\n"
        f"1. **Revoke it**: {revoke}.\n"
        "2. Create a new key and load it from the environment or a secret store.\n"
        "3. Deleting the line does not remove the key from git history.\n\n"
        "Not a key? Add `keyscan:allow` on the line, or an `allow` entry in `.keyscan.yaml`."
        + "".join(f"\n\n[{link}]({link})" for link in links[:1])
    )
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.replace(".", "-").split("-")),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": markdown},
        "defaultConfiguration": {"level": _LEVEL.get(rule.severity, "error")},
        "properties": _properties(rule.severity, rule.vendor),
    }
    if links:
        descriptor["helpUri"] = links[0]
    return descriptor


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:].rstrip(".")


def _bare_descriptor(report: Report, finding: Finding) -> dict[str, Any]:
    name = vendor_name(report, finding.vendor)
    return {
        "id": finding.rule_id,
        "shortDescription": {"text": f"{name} API key"},
        "properties": _properties(finding.severity, finding.vendor),
    }


def _properties(severity: str, vendor: str) -> dict[str, Any]:
    return {
        "security-severity": _SECURITY_SEVERITY.get(severity, "9.5"),
        "tags": ["security", "secret", "api-key", vendor],
        "precision": "high",
    }


def _result(report: Report, finding: Finding, rule_index: int) -> dict[str, Any]:
    message = finding_message(report, finding)
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL.get(finding.severity, "error"),
        "message": {"text": message},
        "locations": [_location(finding)],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
    }
    properties = _result_properties(finding)
    if properties:
        result["properties"] = properties
    return result


def _location(finding: Finding) -> dict[str, Any]:
    path = finding.path
    if path.startswith("/"):  # an absolute path given to `keyscan scan`: no base to resolve
        artifact = {"uri": "file://" + quote(path, safe="/", errors="surrogateescape")}
    else:
        artifact = {"uri": quote(path, safe="/", errors="surrogateescape"), "uriBaseId": SRCROOT}
    return {
        "physicalLocation": {
            "artifactLocation": artifact,
            "region": {"startLine": finding.line, "startColumn": finding.column},
        }
    }


def _result_properties(finding: Finding) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if finding.encoding:
        properties["encoding"] = finding.encoding
    if finding.commit is not None:
        properties["commit"] = finding.commit.sha
        properties["author"] = finding.commit.author_name
        properties["date"] = finding.commit.date
    if finding.verification is not None:
        properties["verification"] = finding.verification.status
    return properties
