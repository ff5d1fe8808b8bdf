"""What a vendor's answer means for the key: live, invalid, or unknown with the reason.

A "live" verdict is alarming, so it needs an answer shaped like the API's own JSON
(the vendor file says how: its envelope, the fields a 200 carries): a 200 or 403 HTML
page, or JSON of another shape, is far more often a proxy, a captive portal or a
firewall than the API. Nothing from the body goes into `detail` (error bodies may
echo the key); what a live key opens is read from a 200's body only, by
keyscan.verify.access, which makes every string safe to print.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from keyscan.model import Verification
from keyscan.verify.access import lookup, read_access
from keyscan.verify.spec import Endpoint

LIVE_DETAIL = {
    200: "the key works",
    402: "the key works (the account is out of credits)",
    403: "the key works (it lacks a permission for this endpoint)",
}
NOT_JSON = object()  # the body did not parse


def classify(
    endpoint: Endpoint,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    location_host: str | None,
    secret: str = "",
) -> Verification:
    host = endpoint.host
    if 300 <= status < 400:
        target = location_host or "an unnamed location"
        return Verification("unknown", status, f"redirected to {target}; not followed")
    kind, document = _parse(headers, body)
    if status in endpoint.live:
        if kind != "json":
            return Verification(
                "unknown", status, f"{host} answered {status} with {kind}, not the API's JSON"
            )
        answer, problem = _unwrapped(endpoint, status, document)
        if answer is None:
            return Verification(
                "unknown",
                status,
                f"{host} answered {status} with JSON that is not {endpoint.name}'s ({problem})",
            )
        access = read_access(endpoint.access, answer, secret) if status == 200 else ()
        return Verification("live", status, LIVE_DETAIL.get(status, "the key works"), access)
    if status in endpoint.invalid:
        if kind == "an HTML page":
            return Verification(
                "unknown", status, f"{host} answered {status} with {kind}, not the API's JSON"
            )
        return Verification("invalid", status, "rejected: revoked or never issued")
    why = dict(endpoint.unsure).get(status)
    if why is not None:
        return Verification("unknown", status, f"{host} answered {status}: {why}")
    if status >= 500:
        return Verification("unknown", status, f"server error {status} from {host}")
    return Verification("unknown", status, f"unexpected answer {status} from {host}")


def _unwrapped(
    endpoint: Endpoint, status: int, document: object
) -> tuple[dict[str, object] | None, str]:
    """The answer inside the vendor's envelope, or None and why it is not the vendor's."""
    if not isinstance(document, dict):
        return None, "not an object"
    key = endpoint.envelope
    if key is not None and endpoint.envelope_required and key not in document:
        return None, f"no {key!r} in its envelope"
    if status != 200:
        return document, ""  # an error answer: its shape is enough, its content unused
    if document.get("success") is False:
        return None, "it says success: false"
    answer = document
    if key is not None:
        inner = document.get(key)
        if isinstance(inner, dict):
            answer = inner
        elif endpoint.envelope_required:
            return None, f"its {key!r} is not an object"
    if endpoint.expect and all(lookup(answer, path) is None for path in endpoint.expect):
        return None, f"none of {', '.join(endpoint.expect)}"
    return answer, ""


def _parse(headers: Mapping[str, str], body: bytes) -> tuple[str, object]:
    """("json", the document), or what the body is instead, for the detail."""
    content_type = headers.get("content-type", "").lower()
    text = body.lstrip()
    if "html" in content_type or text[:1] == b"<":
        return "an HTML page", NOT_JSON
    if not text:
        return "an empty body", NOT_JSON
    try:
        return "json", json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "a body that is not JSON", NOT_JSON
