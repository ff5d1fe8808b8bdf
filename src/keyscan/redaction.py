"""Key-shaped text in a message, redacted: what a pasted key becomes in an error or warning.

A key typed where a path, revision, option or file was expected (`keyscan scan KEY`,
`--range KEY`, `scan --KEY`) comes back in the message naming the mistake. `safe_message`
is what every stderr line goes through (`errors.report_error`, `pipeline.warn`): the
built-in rules find the keys, as in a scan, and each is shown as a report shows it
(prefix, `…`, last 4); then `report.common.printable` escapes what could forge a line.

Cheap when there is nothing to find: the rules' keywords are looked for first, and the
engine runs only when one occurs (PyYAML-free: the rules come from their cache).
"""

from __future__ import annotations


def safe_message(text: str) -> str:
    """`text` with every key-shaped part redacted and no way to start a new line."""
    from keyscan.report.common import printable

    return printable(redact_keys(text))


def redact_keys(text: str) -> str:
    """`text` with each secret a built-in rule finds in it replaced by its redacted form."""
    from keyscan.rules import load_builtin

    rules = load_builtin().rules
    lowered = text.lower().encode("utf-8", "surrogateescape")
    if not any(word in lowered for rule in rules for word in rule.keywords):
        return text
    from keyscan.engine import Engine
    from keyscan.model import Fragment

    data = text.encode("utf-8", "surrogateescape")
    found = Engine(rules).scan(Fragment(data=data, path="-"))
    for finding in sorted(found, key=lambda f: -len(f.secret)):  # longest first
        text = text.replace(finding.secret, finding.redacted())
    return text
