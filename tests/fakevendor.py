"""A fake of the four vendors' APIs on 127.0.0.1, for tests and the benchmark.

It answers at the documented paths with the documented auth headers and the
vendors' own JSON (their envelopes, and what `/me`, `/auth/profile` and the credit
endpoints return, including a person's e-mail that keyscan must never print),
serves each registered key the answers it was given (200/401/402/403, 429 with or
without hints, 500, slow, HTML, redirects, any document), optionally enforces rate
limits, and records every request so tests can check what keyscan sent.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# vendor -> (endpoint path, auth header (lowercase), scheme before the key, base below the host).
# Written from the vendors' docs and SDKs, not read from rules/*.yaml: the fake checks them.
VENDORS: dict[str, tuple[str, str, str, str]] = {
    "posteverywhere": ("/api/v1/me", "authorization", "Bearer ", "/api/v1"),
    "repeatposts": ("/v1/credits", "x-api-key", "", "/v1"),
    "powerpost": ("/api/v1/account/credits", "x-api-key", "", "/api/v1"),
    "autoposting": ("/api-proxy/auth/profile", "authorization", "Bearer ", "/api-proxy"),
}
# In every answer that names a person: an address that keyscan must never print.
OWNER_EMAIL = "dana.owner" + "@acme-social.example"
META = {"request_id": "req_01JF3K9Q2W", "timestamp": "2026-12-01T09:30:00Z"}
# What each vendor answers a key it accepts (CONTRACT.md, "Verification").
OK_BODIES: dict[str, object] = {
    # GET /api/v1/me: {"data": …, "error": null, "meta": …} (its SDK's ApiResponse)
    "posteverywhere": {
        "data": {
            "api_key": {
                "id": "key_8f2c",
                "name": "Production Backend",
                "scopes": ["read", "write"],
                "last_used_at": "2026-11-30T17:04:51Z",
                "expires_at": None,
                "created_at": "2026-02-11T10:00:00Z",
            },
            "organization": {"id": 4411, "name": "Acme", "plan": "business"},
            "workspace": {"id": 97, "name": "Marketing"},
            "user": {"name": "Dana Owner", "email": OWNER_EMAIL},
            "quota": {"posts_per_month": 5000, "used": 1210},
        },
        "error": None,
        "meta": META,
    },
    "repeatposts": {"credits": 1180, "plan": "agency"},
    "powerpost": {"balance": 47},  # its docs: "Response: {"balance": 47}"
    # GET /api-proxy/auth/profile (its CLI's whoami): {"success": true, "data": {…}}
    "autoposting": {
        "success": True,
        "data": {
            "userId": "usr_5d1e",
            "orgId": "org_acme_social",
            "authType": "api_key",
            "email": OWNER_EMAIL,
        },
    },
}
ERRORS = {
    401: ("unauthorized", "Invalid or revoked API key"),
    402: ("payment_required", "Insufficient credits"),
    403: ("forbidden", "API key lacks the required scope"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal", "Something went wrong"),
}


def body_for(vendor: str | None, status: int) -> object:
    """The JSON a vendor answers with `status`, in its own envelope."""
    if status == 200:
        return OK_BODIES.get(vendor or "", {"ok": True})
    code, message = ERRORS.get(status, ("error", "Error"))
    if vendor == "posteverywhere":
        return {"data": None, "error": {"message": message, "code": code}, "meta": META}
    if vendor == "autoposting":
        if status == 403:  # better-auth's answer to a malformed key
            return {"success": False, "error": {"code": "FORBIDDEN", "message": "Invalid API key"}}
        return {"success": False, "error": {"code": code.upper(), "message": message}}
    return {"error": {"code": code, "message": message}}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # None: the vendor's JSON body for `status`
    delay: float = 0.0  # seconds before answering (a hung vendor)


def json_answer(status: int, **headers: str) -> Answer:
    """The vendor's own JSON for `status`, with `headers` (X_RateLimit_Reset=…)."""
    return Answer(status, {k.replace("_", "-"): v for k, v in headers.items()})


def document_answer(status: int, document: object) -> Answer:
    """An answer with this JSON document as its body."""
    return Answer(status, {"Content-Type": "application/json"}, json.dumps(document).encode())


HTML_PAGE = Answer(200, {"Content-Type": "text/html"}, b"<!doctype html><title>Sign in</title>")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # lowercase names
    body: bytes
    vendor: str | None
    key: str | None  # the key taken from the vendor's auth header
    at: float  # server clock


class FakeVendors:
    """The server: `url`, `base(vendor)`, `env()`; register keys with `answer(key, *answers)`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.vendors = dict(VENDORS)  # `add_vendor` adds one (a new vendor file's test)
        self.requests: list[Request] = []
        self.answers: dict[str, list[Answer]] = {}
        self.limits: dict[str, list[tuple[int, float]]] = {}
        self.violations = 0  # requests that arrived over a configured limit
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def base(self, vendor: str) -> str:
        return self.url + self.vendors[vendor][3]

    def env(self) -> dict[str, str]:
        return {f"KEYSCAN_{v.upper()}_API_BASE": self.base(v) for v in self.vendors}

    def add_vendor(self, vendor: str, path: str, header: str, scheme: str, base: str) -> None:
        """Serve one more vendor at `path` (below the host), its key in `header`."""
        self.vendors[vendor] = (path, header.lower(), scheme, base)

    def answer(self, key: str, *answers: Answer) -> None:
        """Serve `answers` to `key` in turn, the last one for good. Unknown keys get a 401."""
        self.answers[key] = list(answers)

    def requests_for(self, key: str) -> list[Request]:
        return [r for r in self.requests if r.key == key]

    def respond(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            if request.vendor is None:
                return Answer(404, {}, b'{"error": "not found"}')
            over = self._over_limit(request.vendor, request.at)
            if over is not None:
                return over
            if request.key is None:
                return Answer(401)
            queue = self.answers.get(request.key, [Answer(401)])
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            return self._with_limit_headers(request.vendor, request.at, answer)

    def _with_limit_headers(self, vendor: str, now: float, answer: Answer) -> Answer:
        """X-RateLimit-* of the tightest window, as APIs with limits send on every answer."""
        limits = self.limits.get(vendor)
        if not limits:
            return answer
        seen = self._seen[vendor]
        count, period = min(
            limits, key=lambda lim: lim[0] - sum(1 for t in seen if t > now - lim[1])
        )
        recent = [t for t in seen if t > now - period]
        remaining = max(0, count - len(recent))
        reset = math.ceil(recent[0] + period - now) if recent else 0
        headers = {
            "X-RateLimit-Limit": str(count),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(max(reset, 1)),
            **answer.headers,
        }
        return Answer(answer.status, headers, answer.body, answer.delay)

    def _over_limit(self, vendor: str, now: float) -> Answer | None:
        limits = self.limits.get(vendor)
        if not limits:
            return None
        seen = self._seen.setdefault(vendor, deque())
        longest = max(period for _, period in limits)
        while seen and seen[0] <= now - longest:
            seen.popleft()
        for count, period in limits:
            recent = [t for t in seen if t > now - period]
            if len(recent) >= count:
                self.violations += 1
                wait = max(1, math.ceil(recent[-count] + period - now))
                return json_answer(
                    429,
                    Retry_After=str(wait),
                    X_RateLimit_Remaining="0",
                    X_RateLimit_Reset=str(wait),
                )
        seen.append(now)
        return None


def _handler(fake: FakeVendors) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = urlsplit(self.path).path
            vendor = next((v for v, spec in fake.vendors.items() if spec[0] == path), None)
            key = None
            if vendor is not None:
                _, header, scheme, _ = fake.vendors[vendor]
                value = headers.get(header, "")
                if value.startswith(scheme) and len(value) > len(scheme):
                    key = value[len(scheme) :]
            request = Request(self.command, self.path, headers, body, vendor, key, fake.clock())
            answer = fake.respond(request)
            if answer.delay:
                time.sleep(answer.delay)
            payload = answer.body
            if payload is None:
                payload = json.dumps(body_for(vendor, answer.status)).encode()
            try:
                self.send_response(answer.status)
                if not any(k.lower() == "content-type" for k in answer.headers):
                    self.send_header("Content-Type", "application/json")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

    return Handler


class Recorder:
    """A second loopback server: the target of a redirect, which must never be reached."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
