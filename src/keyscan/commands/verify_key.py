"""`keyscan verify-key`: is this one key live? Read from stdin, never from argv.

A key typed as an argument lands in shell history and in `ps` output, so there is
no positional argument: anything given there is refused without being echoed.
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING

import click

from keyscan.errors import KeyscanError
from keyscan.report.common import json_safe, printable

if TYPE_CHECKING:
    from keyscan.model import Finding
    from keyscan.rules import RuleSet

MAX_KEY = 4096  # longer than any key; stdin past this is a file, not a key
EXIT = {"live": 0, "invalid": 1}  # anything else: could not tell, 2
ARGV_REFUSED = (
    "keys on the command line land in shell history; pipe it: "
    "printf '%s' \"$KEY\" | keyscan verify-key"
)


@click.command("verify-key")
@click.argument("refused", nargs=-1, metavar="", expose_value=True)
@click.option("--vendor", "vendor_id", metavar="ID", help="Skip detection: the key's vendor id.")
@click.option(
    "--format", "format_", type=click.Choice(("text", "json")), default="text", help="Output."
)
def command(refused: tuple[str, ...], vendor_id: str | None, format_: str) -> int:
    """Check whether one key, read from stdin, still works.

    \b
        printf '%s' "$KEY" | keyscan verify-key

    Exit status: 0 live, 1 invalid, 2 could not tell (unknown, unverifiable,
    unrecognised) or the run failed. KEYSCAN_VERIFY_TIMEOUT (seconds, default 30)
    bounds the wait; KEYSCAN_<VENDOR>_API_BASE points a vendor at a gateway.
    """
    if refused:
        raise KeyscanError(ARGV_REFUSED)
    from keyscan.pipeline import warn
    from keyscan.rules import load_builtin
    from keyscan.verify import check_environment, verify_findings

    check_environment()
    ruleset = load_builtin()
    _check_vendor(vendor_id, ruleset)
    secret = _read_key()
    finding = _finding_for(secret, ruleset, vendor_id)
    [checked] = verify_findings([finding], ruleset, warn=warn)
    _print(checked, ruleset, format_)
    status = checked.verification.status if checked.verification else "unknown"
    return EXIT.get(status, 2)


def _check_vendor(vendor_id: str | None, ruleset: RuleSet) -> None:
    verifiable = sorted(v.id for v in ruleset.vendors.values() if v.verify is not None)
    if vendor_id is not None and vendor_id not in verifiable:
        # Echo the value only if it cannot be a key pasted into the wrong place.
        named = f" {vendor_id!r}" if re.fullmatch(r"[a-z]{1,20}", vendor_id) else ""
        raise KeyscanError(f"unknown vendor{named}; use one of: {', '.join(verifiable)}")


def _read_key() -> str:
    stdin = sys.stdin
    if stdin.isatty():
        import getpass

        text = getpass.getpass("key (not echoed): ", stream=sys.stderr)
    else:
        text = stdin.read(MAX_KEY + 1)
    if len(text) > MAX_KEY:
        raise KeyscanError(f"stdin holds more than {MAX_KEY} characters; pipe one key")
    words = text.split()
    if not words:
        raise KeyscanError("no key on stdin; pipe it: printf '%s' \"$KEY\" | keyscan verify-key")
    if len(words) > 1:
        raise KeyscanError(f"stdin holds {len(words)} words; pipe exactly one key")
    return words[0]


def _finding_for(secret: str, ruleset: RuleSet, vendor_id: str | None) -> Finding:
    """The key as a finding of the most specific built-in rule that matches it whole."""
    from keyscan.model import Finding
    from keyscan.verify import matches_whole

    candidates = [
        rule
        for rule in ruleset.rules
        if rule.verify
        and (vendor_id is None or rule.verify == vendor_id)
        and matches_whole(rule.pattern, secret)
    ]
    if not candidates:
        # Keys go only to their own vendor: one whose shape no rule knows goes nowhere.
        name = ruleset.vendors[vendor_id].name if vendor_id else ""
        what = f"{'an' if name[:1] in 'AEIOU' else 'a'} {name} key" if name else "any vendor's key"
        raise KeyscanError(
            f"the key does not look like {what}; nothing was sent (known formats: 'keyscan rules')"
        )
    rule = max(candidates, key=lambda r: r.priority)
    prefix = next((p for p in rule.prefixes if secret.startswith(p)), "")
    return Finding(
        rule_id=rule.id,
        vendor=rule.vendor,
        severity=rule.severity,
        secret=secret,
        path="-",
        line=1,
        column=1,
        prefix=prefix,
    )


def _print(finding: Finding, ruleset: RuleSet, format_: str) -> None:
    from keyscan.report.common import access_dict, access_text

    verification = finding.verification
    vendor = ruleset.vendors.get(finding.vendor)
    status = verification.status if verification else "unknown"
    result = {
        "key": finding.redacted(),
        "vendor": finding.vendor,
        "status": status,
        "http_status": verification.http_status if verification else None,
        "detail": verification.detail if verification else "",
        "access": access_dict(verification.access) if verification else None,
        "revoke": vendor.revoke if vendor and status == "live" else None,
    }
    if format_ == "json":
        click.echo(json_safe(json.dumps(result, indent=2)))  # no `##[` in a CI log
        return
    name = f"{vendor.name} ({finding.vendor})" if vendor else finding.vendor
    lines = [
        ("key", result["key"]),
        ("vendor", name),
        ("status", status.upper() if status == "live" else status),
        ("http", verification.http_status if verification else None),
        ("detail", result["detail"]),
        ("opens", access_text(verification.access) if verification else ""),
        ("revoke", result["revoke"]),
    ]
    for label, value in lines:
        if value not in (None, ""):
            click.echo(f"{label + ':':8}{printable(str(value))}")
