"""Where each vendor's keys are checked, and what its answers mean (CONTRACT.md, "Verification").

The table is the vendors' own API docs, condensed. The only way to point a vendor
elsewhere is `KEYSCAN_<VENDOR>_API_BASE` in the environment: a config file in a
scanned repository must never be able to send keys to a host of its choosing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from keyscan.errors import KeyscanError

BUDGET_VARIABLE = "KEYSCAN_VERIFY_TIMEOUT"
DEFAULT_BUDGET = 30.0  # seconds for the whole of --verify: a hook must never hang on a vendor


@dataclass(frozen=True, slots=True)
class Endpoint:
    vendor: str
    name: str  # display name, for messages
    base: str  # scheme://host[:port][/prefix], no trailing slash; replaced by the variable
    path: str  # the endpoint below `base`, with its query
    header: str  # the auth header
    scheme: str  # "Bearer " or "" (the key goes after it)
    live: frozenset[int]
    invalid: frozenset[int]
    # (requests, seconds) the vendor publishes; the client stays under every one
    limits: tuple[tuple[int, float], ...] = ()

    @property
    def variable(self) -> str:
        return f"KEYSCAN_{self.vendor.upper()}_API_BASE"

    @property
    def url(self) -> str:
        return self.base + self.path

    @property
    def host(self) -> str:
        return urlsplit(self.base).hostname or ""

    def auth(self, secret: str) -> dict[str, str]:
        return {self.header: self.scheme + secret}


# 402: out of credits, 403: lacks a scope; either way the key works
_LIVE = frozenset({200, 402, 403})
_INVALID = frozenset({401})

ENDPOINTS: dict[str, Endpoint] = {
    e.vendor: e
    for e in (
        Endpoint(
            "posteverywhere",
            "PostEverywhere",
            "https://app.posteverywhere.ai/api/v1",
            "/accounts",
            "Authorization",
            "Bearer ",
            live=frozenset({200, 403}),  # PostEverywhere has no paid-credits 402 on this endpoint
            invalid=_INVALID,
            limits=((30, 60.0), (500, 3600.0)),
        ),
        Endpoint(
            "repeatposts",
            "RepeatPosts",
            "https://api.repeatposts.com/v1",
            "/credits",
            "X-API-Key",
            "",
            _LIVE,
            _INVALID,
        ),
        Endpoint(
            "powerpost",
            "PowerPost",
            "https://powerpost.ai/api/v1",
            "/account/credits",
            "x-api-key",
            "",
            _LIVE,
            _INVALID,
        ),
        Endpoint(
            "autoposting",
            "Autoposting",
            "https://app.autoposting.ai/api-proxy",
            "/posts?limit=1",
            "Authorization",
            "Bearer ",
            _LIVE,
            _INVALID,
        ),
    )
}


def load_endpoints(environ: Mapping[str, str]) -> dict[str, Endpoint]:
    """The table with every `KEYSCAN_<VENDOR>_API_BASE` applied; KeyscanError on a bad one."""
    endpoints = dict(ENDPOINTS)
    for vendor, endpoint in ENDPOINTS.items():
        value = environ.get(endpoint.variable, "").strip()
        if value:
            endpoints[vendor] = replace(endpoint, base=_checked_base(endpoint.variable, value))
    return endpoints


def load_budget(environ: Mapping[str, str]) -> float:
    value = environ.get(BUDGET_VARIABLE, "").strip()
    if not value:
        return DEFAULT_BUDGET
    try:
        budget = float(value)
    except ValueError:
        budget = -1.0
    if not 0 < budget <= 86400:
        raise KeyscanError(
            f"{BUDGET_VARIABLE} must be a number of seconds between 0 and 86400, "
            f"e.g. {BUDGET_VARIABLE}=120; fix or unset it"
        )
    return budget


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked_base(variable: str, value: str) -> str:
    """The base URL if it is allowed. Messages never echo the value: it may hold credentials."""

    def fail(problem: str) -> KeyscanError:
        return KeyscanError(f"{variable}: {problem}; fix or unset it")

    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise fail("not a valid URL") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise fail("must be an https:// URL (http:// only for 127.0.0.1, ::1 or localhost)")
    if parts.scheme == "http" and not is_loopback(host):
        raise fail("plain http:// is allowed only for loopback hosts (127.0.0.1, ::1, localhost)")
    if parts.username is not None or parts.password is not None:
        raise fail("must not hold credentials (user:password@)")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise fail("must not have a query or fragment: give the part before the endpoint path")
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise fail("must not contain spaces or control characters")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
