"""`--verify`: ask each vendor, once per distinct secret, whether a found key still works.

`check_environment` runs before the scan (a bad override fails the run early, exit 2);
`verify_findings` runs after the filters. This package is the only one that touches
the network, and `http` (httpx) is imported only when there is something to send.
Where and how each vendor is asked comes from its shipped file's `verify` section
(`spec`, `endpoints`); what its answer means from `answers`, what a live key opens
from `access`.

Decisions where CONTRACT.md is silent:
- Budget: 30 s for the whole verification by default (a hook must not hang),
  `KEYSCAN_VERIFY_TIMEOUT=<seconds>` to change it; per request 5 s to connect, 10 s to
  read, and each request ends within those 15 s of wall-clock time (verify/deadline.py:
  a server dripping bytes cannot stretch it), never past the budget. A key not answered
  in time is `unknown`, never dropped.
- At most 4 requests in flight per vendor; vendors in parallel (threads).
- `X-RateLimit-Reset`: epoch seconds when >= 1e9, else seconds to wait.
- A secret is sent only if a built-in rule of that verifier matches it whole: a rule
  added by a scanned repository's `.keyscan.yaml` cannot make keyscan send other
  secrets to a vendor, whatever its `verify:` says.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from keyscan.model import Finding, Rule, Verification
from keyscan.verify.endpoints import BUDGET_VARIABLE, Endpoint, load_budget, load_endpoints

if TYPE_CHECKING:
    from keyscan.rules import RuleSet
    from keyscan.verify.http import Settings

Key = tuple[str, str]  # (verifier id, secret)


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise KeyscanError (exit 2) if a `KEYSCAN_*` verification variable is not allowed."""
    env = os.environ if environ is None else environ
    load_endpoints(env)
    load_budget(env)


def verify_findings(
    findings: list[Finding],
    ruleset: RuleSet,
    warn: Callable[[str], None],
    *,
    settings: Settings | None = None,
) -> list[Finding]:
    """Every finding, in order, with `verification` set; one request per distinct secret."""
    rules = {rule.id: rule for rule in ruleset.rules}
    endpoints = settings.endpoints if settings else load_endpoints(os.environ)
    shapes = builtin_shapes()
    results: dict[Key, Verification] = {}
    to_send: dict[str, list[str]] = {}  # vendor -> distinct secrets, in order of first finding
    keys: list[Key | Verification] = []
    for finding in findings:
        reason = _not_sendable(finding, rules.get(finding.rule_id), endpoints, shapes)
        if reason is not None:
            keys.append(reason)
            continue
        key = (str(rules[finding.rule_id].verify), finding.secret)
        if key not in results:
            results[key] = Verification("unknown", None, "not checked")
            to_send.setdefault(key[0], []).append(key[1])
        keys.append(key)
    if to_send:
        results.update(_send_all(to_send, settings))
        _warn_budget(results.values(), warn, settings)
    return [
        finding.replace(verification=key if isinstance(key, Verification) else results[key])
        for finding, key in zip(findings, keys, strict=True)
    ]


def builtin_shapes() -> dict[str, list[re.Pattern[bytes]]]:
    """verifier id -> the patterns of the built-in rules that name it."""
    from keyscan.rules import load_builtin

    shapes: dict[str, list[re.Pattern[bytes]]] = {}
    for rule in load_builtin().rules:
        if rule.verify:
            shapes.setdefault(rule.verify, []).append(rule.pattern)
    return shapes


def matches_whole(pattern: re.Pattern[bytes], secret: str) -> bool:
    data = secret.encode("utf-8", "surrogateescape")
    return any(m.group(1) == data for m in pattern.finditer(data))


def _not_sendable(
    finding: Finding,
    rule: Rule | None,
    endpoints: Mapping[str, Endpoint],
    shapes: Mapping[str, list[re.Pattern[bytes]]],
) -> Verification | None:
    """Why a finding's secret must not be sent (unverifiable), or None to send it."""
    from keyscan.filters.placeholders import is_placeholder

    if rule is None or rule.verify is None:
        return Verification("unverifiable", None, "this rule has no verification endpoint")
    if rule.verify not in endpoints:
        return Verification("unverifiable", None, f"no verifier named {rule.verify!r}")
    if is_placeholder(finding.secret, finding.prefix):
        return Verification("unverifiable", None, "placeholder")
    if not any(matches_whole(p, finding.secret) for p in shapes.get(rule.verify, [])):
        name = endpoints[rule.verify].name
        return Verification("unverifiable", None, f"not shaped like {name}'s keys; not sent")
    if not finding.secret.isascii() or not finding.secret.isprintable() or " " in finding.secret:
        # No vendor issues such a key, and httpx would reject the header with the value inside.
        return Verification("unverifiable", None, "not a value an API key header can carry")
    return None


def _send_all(to_send: dict[str, list[str]], settings: Settings | None) -> dict[Key, Verification]:
    """Vendors in parallel, a few requests in flight per vendor, all within one budget."""
    from keyscan.verify.http import Checker, Settings

    settings = settings or Settings.from_environ()
    deadline = settings.clock.now() + settings.budget
    checkers = {v: Checker(settings.endpoints[v], settings, deadline) for v in to_send}
    pools = {v: ThreadPoolExecutor(settings.in_flight, f"verify-{v}") for v in to_send}
    futures: dict[Key, Future[Verification]] = {}
    try:
        for vendor, secrets in to_send.items():
            for secret in secrets:
                futures[vendor, secret] = pools[vendor].submit(checkers[vendor].check, secret)
        return {key: future.result() for key, future in futures.items()}
    except BaseException:  # Ctrl-C: wake every sleeping thread so the run ends now
        settings.clock.interrupt()
        raise
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        for checker in checkers.values():
            checker.close()


def _warn_budget(
    verdicts: Iterable[Verification], warn: Callable[[str], None], settings: Settings | None
) -> None:
    late = sum(1 for v in verdicts if v.status == "unknown" and "budget" in v.detail)
    if late:
        budget = settings.budget if settings else load_budget(os.environ)
        warn(
            f"{late} key(s) could not be checked within the {budget:g} s verification budget "
            f"and are reported as unknown; set {BUDGET_VARIABLE} to allow more time"
        )
