"""What a vendor's answer means for the key: live, invalid, or unknown with the reason.

A "live" verdict is alarming, so it needs the API's own JSON: a 200 or 403 HTML
page is far more often a proxy, a captive portal or a firewall than the API.
Nothing from the body goes into `detail`: error bodies may echo the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from keyscan.model import Verification
from keyscan.verify.endpoints import Endpoint

LIVE_DETAIL = {
    200: "the key works",
    402: "the key works (the account is out of credits)",
    403: "the key works (it lacks a permission for this endpoint)",
}


def classify(
    endpoint: Endpoint,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    location_host: str | None,
) -> Verification:
    host = endpoint.host
    if 300 <= status < 400:
        target = location_host or "an unnamed location"
        return Verification("unknown", status, f"redirected to {target}; not followed")
    kind = _body_kind(headers, body)
    if status in endpoint.live:
        if kind != "json":
            return Verification(
                "unknown", status, f"{host} answered {status} with {kind}, not the API's JSON"
            )
        return Verification("live", status, LIVE_DETAIL.get(status, "the key works"))
    if status in endpoint.invalid:
        if kind == "an HTML page":
            return Verification(
                "unknown", status, f"{host} answered {status} with {kind}, not the API's JSON"
            )
        return Verification("invalid", status, "rejected: revoked or never issued")
    if status >= 500:
        return Verification("unknown", status, f"server error {status} from {host}")
    return Verification("unknown", status, f"unexpected answer {status} from {host}")


def _body_kind(headers: Mapping[str, str], body: bytes) -> str:
    content_type = headers.get("content-type", "").lower()
    text = body.lstrip()
    if "html" in content_type or text[:1] == b"<":
        return "an HTML page"
    if not text:
        return "an empty body"
    try:
        json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return "a body that is not JSON"
    return "json"
