"""A vendor's `verify` section (rules/<vendor>.yaml) -> the `Endpoint` keyscan checks keys at.

The section, as the shipped vendor files write it:

    verify:
      base: https://app.posteverywhere.ai/api/v1   # KEYSCAN_<VENDOR>_API_BASE replaces it
      path: /me                  # below the base, kept when the base is replaced
      header: Authorization      # the header the key goes in
      scheme: Bearer             # optional: the word before the key ("Bearer KEY")
      live: [200, 403]           # statuses that prove the key works
      invalid: [401]             # statuses that prove it does not
      unsure: {"403": "why"}     # optional: statuses (quoted) that prove nothing, and why
      limits: [[30, 60]]         # optional: published limits, requests per seconds
      envelope: {key: data, required: true}   # optional: how answers are wrapped
      expect: [balance]          # optional: a 200 carries at least one of these fields
      access: {organization: [organization.name], ...}   # optional: what a live key opens

Only the shipped files are read (see keyscan.rules.load_builtin); a mistake in one
is keyscan's bug, reported as KeyscanError naming the vendor and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keyscan.errors import KeyscanError
from keyscan.model import Vendor
from keyscan.verify.access import FIELDS

_KEYS = {
    "base", "path", "header", "scheme", "live", "invalid", "unsure", "limits", "envelope",
    "expect", "access",
}  # fmt: skip
_VENDOR_ID = re.compile(r"[a-z][a-z0-9]*\Z")  # becomes KEYSCAN_<VENDOR>_API_BASE
_HEADER = re.compile(r"[A-Za-z0-9-]+\Z")
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)+\Z")


@dataclass(frozen=True, slots=True)
class Endpoint:
    vendor: str
    name: str  # display name, for messages
    base: str  # scheme://host[:port][/prefix], no trailing slash; replaced by the variable
    path: str  # the endpoint below `base`
    header: str  # the auth header
    scheme: str  # "Bearer " or "" (the key goes after it)
    live: frozenset[int]
    invalid: frozenset[int]
    # (requests, seconds) the vendor publishes; the client stays under every one
    limits: tuple[tuple[int, float], ...] = ()
    unsure: tuple[tuple[int, str], ...] = ()  # statuses that prove nothing: (status, why)
    envelope: str | None = None  # the key answers are wrapped in ({"data": …})
    envelope_required: bool = False  # every answer of the API has it
    expect: tuple[str, ...] = ()  # field paths; a 200 carries at least one
    access: tuple[tuple[str, tuple[str, ...]], ...] = ()  # access field -> answer paths

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


def endpoint_from(vendor: Vendor) -> Endpoint:
    """The Endpoint a vendor's `verify` section describes; KeyscanError if it is malformed."""
    spec = vendor.verify
    if spec is None:
        raise _bad(vendor, "is missing")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise _bad(vendor, f"has an unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    if not _VENDOR_ID.match(vendor.id):
        raise _bad(vendor, "needs a vendor id of lowercase letters and digits")
    base, path = spec.get("base"), spec.get("path")
    if not isinstance(base, str) or not _is_https_base(base):
        raise _bad(vendor, "base must be an https:// URL without query or trailing slash")
    if not isinstance(path, str) or not _PATH.match(path):
        raise _bad(vendor, "path must start with '/' and hold only URL path characters")
    header, scheme = spec.get("header"), spec.get("scheme", "")
    if not isinstance(header, str) or not _HEADER.match(header):
        raise _bad(vendor, "header must be a header name")
    if not isinstance(scheme, str) or not re.fullmatch(r"[A-Za-z]*", scheme):
        raise _bad(vendor, "scheme must be a word such as Bearer, or absent")
    live, invalid = _statuses(vendor, spec, "live"), _statuses(vendor, spec, "invalid")
    unsure = _unsure(vendor, spec.get("unsure", {}))
    if not live or live & invalid or {status for status, _ in unsure} & (live | invalid):
        raise _bad(vendor, "live, invalid and unsure must be disjoint, with a live status")
    envelope, required = _envelope(vendor, spec.get("envelope"))
    return Endpoint(
        vendor=vendor.id,
        name=vendor.name,
        base=base,
        path=path,
        header=header,
        scheme=f"{scheme} " if scheme else "",
        live=live,
        invalid=invalid,
        limits=_limits(vendor, spec.get("limits", [])),
        unsure=unsure,
        envelope=envelope,
        envelope_required=required,
        expect=_field_paths(vendor, "expect", spec.get("expect", [])),
        access=_access(vendor, spec.get("access", {})),
    )


def _bad(vendor: Vendor, problem: str) -> KeyscanError:
    return KeyscanError(f"rules/{vendor.id}.yaml: vendor verify {problem}")


def _is_https_base(base: str) -> bool:
    try:
        parts = urlsplit(base)
        parts.port  # noqa: B018  # raises on a bad port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and not (parts.query or parts.fragment or parts.username or base.endswith("/"))
    )


def _statuses(vendor: Vendor, spec: Mapping[str, Any], key: str) -> frozenset[int]:
    values = spec.get(key)
    if not isinstance(values, list) or not all(_is_status(value) for value in values):
        raise _bad(vendor, f"{key} must be a list of HTTP statuses")
    return frozenset(values)


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 200 <= value <= 599


def _unsure(vendor: Vendor, value: object) -> tuple[tuple[int, str], ...]:
    # a status may be written quoted (`"403":`): the text of a status is that status
    pairs = value.items() if isinstance(value, dict) else [(None, None)]
    statuses = [(int(s) if isinstance(s, str) and s.isdigit() else s, why) for s, why in pairs]
    if not all(_is_status(status) and isinstance(why, str) and why for status, why in statuses):
        raise _bad(vendor, "unsure must map HTTP statuses to the reason they prove nothing")
    return tuple(sorted(statuses))  # type: ignore[arg-type]


def _limits(vendor: Vendor, value: object) -> tuple[tuple[int, float], ...]:
    limits: list[tuple[int, float]] = []
    for item in value if isinstance(value, list) else [None]:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], int)
            and isinstance(item[1], (int, float))
            and item[0] > 0
            and item[1] > 0
        ):
            raise _bad(vendor, "limits must be a list of [requests, seconds] pairs")
        limits.append((item[0], float(item[1])))
    return tuple(limits)


def _envelope(vendor: Vendor, value: object) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    if (
        not isinstance(value, dict)
        or set(value) != {"key", "required"}
        or not isinstance(value["key"], str)
        or not isinstance(value["required"], bool)
    ):
        raise _bad(vendor, "envelope must be {key: <field>, required: true|false}")
    return value["key"], value["required"]


def _field_paths(vendor: Vendor, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(path, str) and _FIELD_PATH.match(path) for path in value
    ):
        raise _bad(vendor, f"{key} must be a list of answer fields such as api_key.name")
    return tuple(value)


def _access(vendor: Vendor, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise _bad(vendor, "access must map access fields to lists of answer fields")
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise _bad(vendor, f"access has an unknown field {unknown[0]!r} ({', '.join(FIELDS)})")
    return tuple(
        (field, _field_paths(vendor, f"access {field}", value[field]))
        for field in FIELDS
        if field in value
    )
