"""Where each vendor's keys are checked (CONTRACT.md, "Verification"), and the time allowed.

Each vendor's endpoint is the `verify` section of its shipped file (rules/<vendor>.yaml,
read by keyscan.verify.spec). The only way to point a vendor elsewhere is
`KEYSCAN_<VENDOR>_API_BASE` in the environment: a config file in a scanned repository
must never be able to send keys to a host of its choosing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from keyscan.errors import KeyscanError
from keyscan.model import Vendor
from keyscan.verify.spec import Endpoint, endpoint_from

__all__ = ["BUDGET_VARIABLE", "Endpoint", "is_loopback", "load_budget", "load_endpoints"]

BUDGET_VARIABLE = "KEYSCAN_VERIFY_TIMEOUT"
DEFAULT_BUDGET = 30.0  # seconds for the whole of --verify: a hook must never hang on a vendor


def load_endpoints(
    environ: Mapping[str, str], vendors: Mapping[str, Vendor] | None = None
) -> dict[str, Endpoint]:
    """vendor id -> Endpoint, from the `verify` sections of the shipped vendor files (or of
    `vendors`, for tests), with every `KEYSCAN_<VENDOR>_API_BASE` applied; KeyscanError on a
    bad one."""
    if vendors is None:
        from keyscan.rules import load_builtin

        vendors = load_builtin().vendors
    endpoints: dict[str, Endpoint] = {}
    for vendor in vendors.values():
        if vendor.verify is None:
            continue
        endpoint = endpoint_from(vendor)
        value = environ.get(endpoint.variable, "").strip()
        if value:
            endpoint = replace(endpoint, base=_checked_base(endpoint.variable, value))
        endpoints[vendor.id] = endpoint
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
