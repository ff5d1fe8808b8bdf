"""`--verify` against the fake vendor APIs on 127.0.0.1: verdicts, safety, politeness."""

from __future__ import annotations

import random
import re
import socket
import subprocess
import sys

import pytest

from fakevendor import (
    HTML_PAGE,
    VENDORS,
    Answer,
    FakeVendors,
    Recorder,
    document_answer,
    json_answer,
)
from keys import PREFIXES, make_key
from keyscan.errors import KeyscanError
from keyscan.model import Finding, Rule, Verification
from keyscan.rules import RuleSet
from keyscan.verify import check_environment, verify_findings
from keyscan.verify.clock import FakeClock
from keyscan.verify.endpoints import load_endpoints
from keyscan.verify.http import Settings

RNG = random.Random(6)


def rule(vendor: str, verify: str | None = "same") -> Rule:
    return Rule(
        id=f"{vendor}-api-key" if verify else f"{vendor}-named-variable",
        vendor=vendor,
        severity="critical",
        regex=re.compile(rb"(unused)"),
        keywords=(),
        prefixes=PREFIXES[vendor],
        verify=vendor if verify == "same" else verify,
    )


RULESET = RuleSet(
    rules=tuple(rule(v) for v in VENDORS) + tuple(rule(v, None) for v in VENDORS), vendors={}
)


def finding(
    secret: str, vendor: str, *, line: int = 1, path: str = "app.py", named: bool = False
) -> Finding:
    prefix = next((p for p in PREFIXES[vendor] if secret.startswith(p)), "")
    return Finding(
        rule_id=f"{vendor}-named-variable" if named else f"{vendor}-api-key",
        vendor=vendor,
        severity="critical",
        secret=secret,
        path=path,
        line=line,
        column=1,
        prefix=prefix,
    )


def key(vendor: str) -> str:
    return make_key(vendor, RNG)


class Warnings(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


def run(
    findings: list[Finding], fake: FakeVendors | None = None, **overrides: object
) -> tuple[list[Finding], Warnings]:
    """verify_findings with settings from the environment the fixture set, plus overrides."""
    import os

    base = Settings.from_environ(os.environ)
    fields = {"endpoints": base.endpoints, "budget": base.budget, "read_timeout": 2.0}
    fields.update(overrides)
    settings = Settings(**fields)  # type: ignore[arg-type]
    if fake is not None and isinstance(settings.clock, FakeClock):
        fake.clock = settings.clock.now
    warnings = Warnings()
    return verify_findings(findings, RULESET, warnings, settings=settings), warnings


def statuses(findings: list[Finding]) -> list[tuple[str, int | None]]:
    return [(f.verification.status, f.verification.http_status) for f in findings if f.verification]


# --- verdicts -------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_each_vendor_gets_one_get_at_its_path_with_its_auth_header(
    fake_vendor: FakeVendors, vendor: str
) -> None:
    path, header, scheme, _ = VENDORS[vendor]
    live, revoked = key(vendor), key(vendor)
    fake_vendor.answer(live, json_answer(200))
    fake_vendor.answer(revoked, json_answer(401))

    out, _ = run([finding(live, vendor), finding(revoked, vendor)])

    assert statuses(out) == [("live", 200), ("invalid", 401)]
    assert len(fake_vendor.requests) == 2
    for request in fake_vendor.requests:
        assert request.method == "GET"
        assert request.body == b""
        assert "content-length" not in request.headers
        assert request.path.split("?")[0] == path
        assert request.headers[header] == scheme + request.key  # type: ignore[operator]
        assert request.path == path  # no query


# CONTRACT.md's table: live / invalid per vendor; anything else is unknown
STATUS_TABLE = {
    "posteverywhere": ({200, 403}, {401}),
    "repeatposts": ({200, 402, 403}, {401}),
    "powerpost": ({200, 402, 403}, {401}),
    "autoposting": ({200}, {401}),
}


DETAILS = {
    ("repeatposts", 402): "the key works (the account is out of credits)",
    ("powerpost", 403): "the key works (it lacks a permission for this endpoint)",
    # a key without the Read scope still works
    ("posteverywhere", 403): "the key works (it lacks a permission for this endpoint)",
    # not in PostEverywhere's documented answers
    ("posteverywhere", 402): "unexpected answer 402 from 127.0.0.1",
    ("powerpost", 404): "unexpected answer 404 from 127.0.0.1",
    ("autoposting", 402): "unexpected answer 402 from 127.0.0.1",
}


@pytest.mark.parametrize(
    ("vendor", "status"),
    [(v, s) for v in sorted(STATUS_TABLE) for s in (200, 401, 402, 403, 404, 418)],
)
def test_status_table(fake_vendor: FakeVendors, vendor: str, status: int) -> None:
    live, invalid = STATUS_TABLE[vendor]
    expected = "live" if status in live else "invalid" if status in invalid else "unknown"
    secret = key(vendor)
    fake_vendor.answer(secret, json_answer(status))  # the vendor's own JSON for the status
    [out], _ = run([finding(secret, vendor)])
    assert out.verification is not None
    assert (out.verification.status, out.verification.http_status) == (expected, status)
    assert out.verification.detail == DETAILS.get((vendor, status), out.verification.detail)
    assert (out.verification.access is None) == (expected != "live")


def test_autoposting_403_is_unknown_and_says_why(fake_vendor: FakeVendors) -> None:
    # Its CLI reads 403 as "rejected", but its auth middleware also answers 403 for
    # restricted keys: neither live nor invalid can be claimed.
    secret = key("autoposting")
    fake_vendor.answer(secret, json_answer(403))
    [out], _ = run([finding(secret, "autoposting")])
    assert out.verification == Verification(
        "unknown",
        403,
        "127.0.0.1 answered 403: it answers 403 both for keys it rejects as malformed and "
        "for restricted keys, so keyscan cannot tell which this is",
    )


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (json_answer(500), "server error 500 from 127.0.0.1"),
        (HTML_PAGE, "127.0.0.1 answered 200 with an HTML page, not the API's JSON"),
        (Answer(403, {"Content-Type": "text/html"}, b"<html>blocked</html>"), "HTML page"),
        (Answer(200, {"Content-Type": "application/json"}, b""), "an empty body"),
        (Answer(200, {"Content-Type": "text/plain"}, b"OK"), "not JSON"),
    ],
)
def test_unknown_answers_say_why(fake_vendor: FakeVendors, answer: Answer, detail: str) -> None:
    secret = key("powerpost")
    fake_vendor.answer(secret, answer)
    [out], _ = run([finding(secret, "powerpost")])
    assert out.verification is not None
    assert out.verification.status == "unknown"
    assert detail in out.verification.detail


PE_ENVELOPE_ONLY = {"error": None, "meta": {"request_id": "r1"}}


@pytest.mark.parametrize(
    ("vendor", "status", "document", "detail"),
    [
        ("posteverywhere", 200, PE_ENVELOPE_ONLY, "no 'data' in its envelope"),
        ("posteverywhere", 403, {"error": {"message": "forbidden"}}, "no 'data' in its envelope"),
        ("posteverywhere", 200, {"data": [], "error": None}, "its 'data' is not an object"),
        ("posteverywhere", 200, [{"data": {}}], "not an object"),
        ("powerpost", 200, {"ok": True}, "none of balance"),
        ("powerpost", 200, {"data": {"balance": 4}}, "none of balance"),  # PowerPost is bare
        ("powerpost", 402, "payment required", "not an object"),
        ("autoposting", 200, {"success": False, "data": {"orgId": "o"}}, "success: false"),
        ("autoposting", 200, {"status": "ok"}, "none of orgId, authType, userId, id"),
        ("repeatposts", 200, 1180, "not an object"),
    ],
)
def test_json_not_shaped_like_the_vendors_api_is_unknown(
    fake_vendor: FakeVendors, vendor: str, status: int, document: object, detail: str
) -> None:
    secret = key(vendor)
    fake_vendor.answer(secret, document_answer(status, document))
    [out], _ = run([finding(secret, vendor)])
    name = {"posteverywhere": "PostEverywhere", "powerpost": "PowerPost"}.get(vendor, "")
    assert out.verification is not None
    assert out.verification.status == "unknown"
    assert out.verification.access is None
    assert f"answered {status} with JSON that is not {name}" in out.verification.detail
    assert detail in out.verification.detail


@pytest.mark.parametrize(
    ("vendor", "document"),
    [
        ("autoposting", {"orgId": "org_bare", "authType": "api_key"}),  # not wrapped
        ("autoposting", {"success": True, "data": {"orgId": "org_bare"}}),
        ("repeatposts", {"data": {"credits": 5}}),
        ("repeatposts", {"credits": 5}),
    ],
)
def test_wrapped_and_bare_answers_are_both_read(
    fake_vendor: FakeVendors, vendor: str, document: object
) -> None:
    secret = key(vendor)
    fake_vendor.answer(secret, document_answer(200, document))
    [out], _ = run([finding(secret, vendor)])
    assert out.verification is not None and out.verification.status == "live"
    expected = {"autoposting": ("organization", "org_bare"), "repeatposts": ("credits", 5)}
    assert out.verification.access == (expected[vendor],)


def test_one_request_per_distinct_secret_and_every_finding_kept_in_order(
    fake_vendor: FakeVendors,
) -> None:
    shared, other = key("repeatposts"), key("posteverywhere")
    fake_vendor.answer(shared, json_answer(200))
    fake_vendor.answer(other, json_answer(401))
    findings = [finding(shared, "repeatposts", line=n, path=f"f{n}.py") for n in range(50)]
    findings.insert(7, finding(other, "posteverywhere"))

    out, _ = run(findings)

    assert [(f.path, f.line, f.secret) for f in out] == [
        (f.path, f.line, f.secret) for f in findings
    ]
    assert len(fake_vendor.requests_for(shared)) == 1
    assert len(fake_vendor.requests_for(other)) == 1
    assert out[7].verification == Verification("invalid", 401, "rejected: revoked or never issued")
    assert {f.verification.status for i, f in enumerate(out) if i != 7} == {"live"}  # type: ignore[union-attr]


def test_placeholders_and_rules_without_endpoint_are_never_sent(fake_vendor: FakeVendors) -> None:
    placeholder = PREFIXES["posteverywhere"][0] + "0" * 32
    named = "Zq8" + key("powerpost")[-20:]  # a vendor-named variable's format-less value
    out, _ = run([finding(placeholder, "posteverywhere"), finding(named, "powerpost", named=True)])
    assert [f.verification for f in out] == [
        Verification("unverifiable", None, "placeholder"),
        Verification("unverifiable", None, "this rule has no verification endpoint"),
    ]
    assert fake_vendor.requests == []


def test_a_config_rule_cannot_send_other_secrets_to_a_vendor(fake_vendor: FakeVendors) -> None:
    # A scanned repository's .keyscan.yaml adds a rule that says `verify: powerpost` for
    # something that is not a PowerPost key: it must not reach PowerPost.
    foreign = make_key("repeatposts", RNG)
    custom = Rule(
        id="custom-token",
        vendor="powerpost",
        severity="high",
        regex=re.compile(rb"(unused)"),
        keywords=(),
        verify="powerpost",
    )
    ruleset = RuleSet(rules=(*RULESET.rules, custom), vendors={})
    stray = finding(foreign, "powerpost").replace(rule_id="custom-token", prefix="")
    [out] = verify_findings([stray], ruleset, Warnings())
    assert out.verification == Verification(
        "unverifiable", None, "not shaped like PowerPost's keys; not sent"
    )
    assert fake_vendor.requests == []


# --- safety ---------------------------------------------------------------------------------


def test_a_redirect_is_unknown_and_its_target_never_reached(
    fake_vendor: FakeVendors, redirect_target: Recorder
) -> None:
    secret = key("autoposting")
    fake_vendor.answer(secret, Answer(302, {"Location": redirect_target.url + "/collect"}))
    [out], _ = run([finding(secret, "autoposting")])
    assert out.verification == Verification("unknown", 302, "redirected to 127.0.0.1; not followed")
    assert redirect_target.hits == []
    assert len(fake_vendor.requests) == 1


def test_keys_go_only_to_their_own_vendors_host(monkeypatch: pytest.MonkeyPatch) -> None:
    servers = {vendor: FakeVendors() for vendor in VENDORS}
    try:
        for vendor, server in servers.items():
            monkeypatch.setenv(f"KEYSCAN_{vendor.upper()}_API_BASE", server.base(vendor))
        keys = {vendor: [key(vendor) for _ in range(3)] for vendor in VENDORS}
        findings = [finding(s, v) for v, secrets in keys.items() for s in secrets]
        out, _ = run(findings)
        assert {f.verification.status for f in out} == {"invalid"}  # type: ignore[union-attr]
        for vendor, server in servers.items():
            assert sorted(r.key for r in server.requests) == sorted(keys[vendor])  # type: ignore[type-var]
            assert {r.vendor for r in server.requests} == {vendor}
    finally:
        for server in servers.values():
            server.close()


def test_a_slow_vendor_times_out_as_unknown(fake_vendor: FakeVendors) -> None:
    secret = key("repeatposts")
    fake_vendor.answer(secret, Answer(200, delay=1.5))
    [out], _ = run([finding(secret, "repeatposts")], read_timeout=0.3)
    assert out.verification == Verification(
        "unknown", None, "no answer from 127.0.0.1 within the timeout"
    )


def test_a_network_error_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYSCAN_POWERPOST_API_BASE", "http://127.0.0.1:9/api/v1")  # nothing there
    [out], _ = run([finding(key("powerpost"), "powerpost")])
    assert out.verification == Verification(
        "unknown", None, "network error: could not connect to 127.0.0.1"
    )


def test_no_secret_in_any_detail_or_warning(
    fake_vendor: FakeVendors, redirect_target: Recorder
) -> None:
    answers = [
        json_answer(200),
        json_answer(401),
        json_answer(500),
        HTML_PAGE,
        Answer(200, delay=1.0),
        Answer(302, {"Location": redirect_target.url + "/x"}),
        json_answer(429, Retry_After="99999"),
    ]
    secrets = [key("repeatposts") for _ in answers]
    for secret, answer in zip(secrets, answers, strict=True):
        fake_vendor.answer(secret, answer)
    out, warnings = run([finding(s, "repeatposts") for s in secrets], read_timeout=0.3)
    texts = [str(f.verification) for f in out] + list(warnings)
    for secret in secrets:
        assert not any(secret in text or secret[-20:] in text for text in texts)
    assert len({f.verification.status for f in out}) == 3  # type: ignore[union-attr]


# --- the override variables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://gateway.example.com/api/v1", "plain http:// is allowed only for loopback"),
        ("http://10.0.0.8:8080/api/v1", "plain http:// is allowed only for loopback"),
        ("ftp://127.0.0.1/api", "must be an https:// URL"),
        ("127.0.0.1:8080/api/v1", "must be an https:// URL"),
        ("https://user:pw@gateway.example.com/api/v1", "must not hold credentials"),
        ("https://gateway.example.com/api/v1?next=x", "must not have a query"),
        ("https://gateway.example.com:99999/api", "not a valid URL"),
    ],
)
def test_a_disallowed_override_fails_with_one_line(value: str, problem: str) -> None:
    with pytest.raises(KeyscanError) as error:
        check_environment({"KEYSCAN_POSTEVERYWHERE_API_BASE": value})
    message = str(error.value)
    assert message.startswith("KEYSCAN_POSTEVERYWHERE_API_BASE: ")
    assert problem in message and "\n" not in message
    assert "pw@" not in message


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("https://gateway.example.com/pe/", "https://gateway.example.com/pe/me"),
        ("http://localhost:8080/api/v1", "http://localhost:8080/api/v1/me"),
        ("http://[::1]:8080/api/v1", "http://[::1]:8080/api/v1/me"),
        ("http://127.1.2.3/api/v1", "http://127.1.2.3/api/v1/me"),
    ],
)
def test_an_allowed_override_replaces_the_base(value: str, url: str) -> None:
    check_environment({"KEYSCAN_POSTEVERYWHERE_API_BASE": value})
    assert load_endpoints({"KEYSCAN_POSTEVERYWHERE_API_BASE": value})["posteverywhere"].url == url


@pytest.mark.parametrize(
    ("vendor", "path"),
    [
        ("posteverywhere", "/me"),
        ("repeatposts", "/credits"),
        ("powerpost", "/account/credits"),
        ("autoposting", "/auth/profile"),
    ],
)
def test_the_override_replaces_the_part_before_each_endpoints_path(vendor: str, path: str) -> None:
    variable = f"KEYSCAN_{vendor.upper()}_API_BASE"
    endpoints = load_endpoints({variable: "http://127.0.0.1:8080/gateway/"})
    assert endpoints[vendor].url == "http://127.0.0.1:8080/gateway" + path
    others = {v: e.host for v, e in endpoints.items() if v != vendor}
    assert "127.0.0.1" not in others.values()


def test_default_endpoints_are_the_vendors_https_hosts() -> None:
    urls = {v: e.url for v, e in load_endpoints({}).items()}
    assert urls == {  # CONTRACT.md's table, written out: not read from the vendor files
        "posteverywhere": "https://app.posteverywhere.ai/api/v1/me",
        "repeatposts": "https://api.repeatposts.com/v1/credits",
        "powerpost": "https://powerpost.ai/api/v1/account/credits",
        "autoposting": "https://app.autoposting.ai/api-proxy/auth/profile",
    }
    endpoints = load_endpoints({})
    assert {v: (e.header, e.scheme) for v, e in endpoints.items()} == {
        "posteverywhere": ("Authorization", "Bearer "),
        "repeatposts": ("X-API-Key", ""),
        "powerpost": ("x-api-key", ""),
        "autoposting": ("Authorization", "Bearer "),
    }
    assert {v: (set(e.live), set(e.invalid)) for v, e in endpoints.items()} == STATUS_TABLE


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf"])
def test_a_bad_budget_variable_fails(value: str) -> None:
    with pytest.raises(KeyscanError, match=r"^KEYSCAN_VERIFY_TIMEOUT must be a number of seconds"):
        check_environment({"KEYSCAN_VERIFY_TIMEOUT": value})


# --- the test session itself ----------------------------------------------------------------


def test_the_network_guard_blocks_everything_but_loopback() -> None:
    with pytest.raises(OSError, match="test network guard"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(OSError, match="test network guard"):
        socket.getaddrinfo("app.posteverywhere.ai", 443)


def test_httpx_is_not_imported_on_the_hooks_start_up_path() -> None:
    code = (
        "import sys, keyscan.cli, keyscan.pipeline, keyscan.verify\n"
        "from keyscan.commands import register_all\n"
        "register_all(keyscan.cli.cli)\n"
        "print('httpx' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
