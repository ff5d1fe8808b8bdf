"""Hand-built Reports for the reporter tests: fixed findings, keys from a seeded RNG.

The keys exist only at run time; golden files hold the redacted output only.
"""

from __future__ import annotations

import random
import re

from keys import make_key
from keyscan.model import Commit, Finding, Report, Rule, Stats, Vendor, Verification

VENDORS = {
    "posteverywhere": Vendor(
        "posteverywhere",
        "PostEverywhere",
        "Settings > Developer (older docs: Settings > Advanced) > API Keys > Revoke",
    ),
    "repeatposts": Vendor("repeatposts", "RepeatPosts", "Team Settings > API Keys"),
    "powerpost": Vendor("powerpost", "PowerPost", "Settings > API"),
    "autoposting": Vendor(
        "autoposting", "Autoposting", "dashboard, or the `/api-keys` endpoint"
    ),
}


def _rule(rule_id: str, vendor: str, severity: str, prefix: str, verify: bool = True) -> Rule:
    return Rule(
        id=rule_id,
        vendor=vendor,
        severity=severity,
        regex=re.compile(rb"(unused)"),
        keywords=(prefix.encode(),),
        prefixes=(prefix,),
        description=f"{VENDORS[vendor].name} API key",
        verify=vendor if verify else None,
        references=(f"https://docs.example.invalid/{vendor}",),
    )


PE, RP, PP, AP = (
    "pe" + "_live_",
    "rp" + "_live_",
    "pp" + "_live_sk_",
    "sk" + "-social-",
)
RULES = {
    rule.id: rule
    for rule in (
        _rule("posteverywhere-api-key", "posteverywhere", "critical", PE),
        _rule("repeatposts-api-key", "repeatposts", "high", RP),
        _rule("powerpost-api-key", "powerpost", "critical", PP),
        _rule("autoposting-api-key", "autoposting", "medium", AP),
    )
}


def _keys() -> dict[str, str]:
    rng = random.Random(20261127)
    return {
        "pe": make_key("posteverywhere", rng),
        "rp": make_key("repeatposts", rng),
        "pp": make_key("powerpost", rng, length=40),
        "ap": make_key("autoposting", rng, length=24),
    }


KEYS = _keys()
COMMIT = Commit(
    sha="0123456789abcdef0123456789abcdef01234567",
    author_name="Alice Author",
    author_email="alice@example.com",
    date="2023-11-14T22:13:20+00:00",
)


def scan_findings() -> tuple[Finding, ...]:
    return (
        Finding("posteverywhere-api-key", "posteverywhere", "critical", KEYS["pe"],
                "config/settings.py", 12, 9, prefix=PE),
        Finding("repeatposts-api-key", "repeatposts", "high", KEYS["rp"],
                "deploy/secret.yaml", 7, 14, prefix=RP, encoding="base64"),
        Finding("autoposting-api-key", "autoposting", "medium", KEYS["ap"],
                "docs/set up, part 2.md", 3, 1, prefix=AP),
    )  # fmt: skip


# what PostEverywhere's /me says the live key opens (as keyscan.verify.access reads it)
ACCESS = (
    ("organization", "Acme"),
    ("workspace", "Marketing"),
    ("key_name", "Production Backend"),
    ("scopes", ("read", "write")),
    ("last_used_at", "2026-11-30T17:04:51Z"),
)


def git_findings() -> tuple[Finding, ...]:
    return (
        Finding("powerpost-api-key", "powerpost", "critical", KEYS["pp"],
                "app/client.py", 40, 21, prefix=PP, commit=COMMIT,
                verification=Verification("invalid", 401, ""),
                refs=("refs/heads/feature", "refs/stash")),
        Finding("posteverywhere-api-key", "posteverywhere", "critical", KEYS["pe"],
                "config/settings.py", 12, 9, prefix=PE, commit=COMMIT,
                verification=Verification("live", 200, "", ACCESS),
                refs=("refs/heads/main", "refs/tags/v1.0")),
        Finding("autoposting-api-key", "autoposting", "medium", KEYS["ap"],
                "notes.txt", 1, 5, prefix=AP, commit=COMMIT,
                verification=Verification("unknown", None, "timed out after 10 s")),
    )  # fmt: skip


def report(
    findings: tuple[Finding, ...], *, mode: str = "scan", show_secrets: bool = False
) -> Report:
    stats = Stats(
        scanned_bytes=1_234_567,
        files=42,
        commits=0 if mode == "scan" else 17,
        skipped=1,
        suppressed={"placeholder": 2, "baseline": 1},
    )
    return Report(
        findings=findings,
        stats=stats,
        rules=dict(RULES),
        vendors=dict(VENDORS),
        version="0.1.0",
        show_secrets=show_secrets,
        mode=mode,
    )


def empty_report() -> Report:
    return Report(
        findings=(),
        stats=Stats(scanned_bytes=2048, files=3),
        rules=dict(RULES),
        vendors=dict(VENDORS),
        version="0.1.0",
    )
