"""The one HTTP client keyscan has: GET only, no body, no redirects, timeouts, a budget.

Imported only when verification runs (httpx costs start-up time a hook should not pay).
Nothing here puts a secret in a message: httpx exceptions can carry URLs and headers,
so every failure is described in words built here, from the exception's type only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from keyscan import __version__
from keyscan.model import Verification
from keyscan.verify.answers import classify
from keyscan.verify.clock import Clock
from keyscan.verify.deadline import Deadlines, install
from keyscan.verify.endpoints import Endpoint, is_loopback, load_budget, load_endpoints
from keyscan.verify.gate import Gate

MAX_BODY = 64 * 1024  # enough for any of the four APIs' JSON; an endless body is cut here


@dataclass(frozen=True)
class Settings:
    endpoints: dict[str, Endpoint]
    budget: float  # seconds for the whole run, in `clock` time
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    in_flight: int = 4  # requests in flight per vendor
    max_attempts: int = 6  # a vendor answering 429 forever still ends
    clock: Clock = field(default_factory=Clock)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(endpoints=load_endpoints(env), budget=load_budget(env))


def make_client(
    endpoint: Endpoint, settings: Settings, deadlines: Deadlines | None = None
) -> httpx.Client:
    """The client for one vendor; with `deadlines`, each request ends by its deadline."""
    loopback = is_loopback(endpoint.host)
    client = httpx.Client(
        follow_redirects=False,
        # A proxy from the environment is right for a vendor's host, never for loopback.
        trust_env=not loopback,
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.connect_timeout,
            pool=settings.read_timeout,
        ),
        limits=httpx.Limits(max_connections=settings.in_flight),
        headers={"User-Agent": f"keyscan/{__version__} (verify)", "Accept": "application/json"},
    )
    if deadlines is not None:
        install(client, deadlines)
    return client


class Checker:
    """Checks one vendor's keys; `check` is called from several threads at once."""

    def __init__(self, endpoint: Endpoint, settings: Settings, deadline: float) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.deadline = deadline
        self.clock = settings.clock
        self.gate = Gate(endpoint.limits, settings.clock)
        self.deadlines = Deadlines()
        self.client = make_client(endpoint, settings, self.deadlines)

    def close(self) -> None:
        self.client.close()

    def check(self, secret: str) -> Verification:
        endpoint, clock = self.endpoint, self.clock
        for _attempt in range(self.settings.max_attempts):
            slot = self.gate.reserve(self.deadline)
            if slot is None:
                return _out_of_budget(f"{endpoint.name}'s rate limit")
            moment, sequence = slot
            clock.sleep_until(moment)
            if clock.interrupted:
                return Verification("unknown", None, "interrupted")
            paused = self.gate.paused_until()
            if paused > self.deadline:
                return _out_of_budget(f"{endpoint.name}'s rate limit")
            clock.sleep_until(paused)
            if clock.now() >= self.deadline:
                return _out_of_budget("the wait")
            answer = self._send(secret)
            if isinstance(answer, Verification):
                return answer
            status, headers, body = answer
            wait = self.gate.note(sequence, status, headers)
            if status != 429:
                self.gate.calm()
                location = _location_host(endpoint, headers)
                return classify(endpoint, status, headers, body, location, secret)
            why = f"{endpoint.name} asked to wait" if wait is not None else "backing off"
            wait = self.gate.next_backoff() if wait is None else wait
            self.gate.pause(clock.now() + wait)
            if clock.now() + wait > self.deadline:
                return Verification(
                    "unknown", 429, f"rate-limited: {why} {wait:g} s, past the verification budget"
                )
        return Verification(
            "unknown", 429, f"rate-limited: still 429 after {self.settings.max_attempts} tries"
        )

    def _send(self, secret: str) -> tuple[int, Mapping[str, str], bytes] | Verification:
        endpoint, settings = self.endpoint, self.settings
        remaining = self.deadline - self.clock.now()
        timeout = httpx.Timeout(
            connect=min(settings.connect_timeout, remaining),
            read=min(settings.read_timeout, remaining),
            write=min(settings.connect_timeout, remaining),
            pool=min(settings.read_timeout, remaining),
        )
        host = endpoint.host
        # A wall-clock end for the whole request, whatever the server does (a drip of
        # header bytes resets every per-read timeout): the budget left, at most one
        # connect and one read timeout.
        total = min(remaining, settings.connect_timeout + settings.read_timeout)
        try:
            with self.deadlines.limit(self.clock.real_seconds(total)), self.client.stream(
                "GET", endpoint.url, headers=endpoint.auth(secret), timeout=timeout
            ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY or self.clock.now() >= self.deadline:
                        break
                return response.status_code, response.headers, bytes(body)
        except httpx.ConnectTimeout:
            return Verification("unknown", None, f"timed out connecting to {host}")
        except httpx.TimeoutException:
            return Verification("unknown", None, f"no answer from {host} within the timeout")
        except httpx.ConnectError:
            return Verification("unknown", None, f"network error: could not connect to {host}")
        except Exception as error:  # anything: its text may hold the key
            # The type names the failure; str(error) could carry the URL or a header.
            return Verification(
                "unknown", None, f"network error talking to {host} ({type(error).__name__})"
            )


BUDGET_DETAIL = "verification budget ran out"


def _out_of_budget(during: str) -> Verification:
    return Verification("unknown", None, f"{BUDGET_DETAIL} waiting for {during}")


def _location_host(endpoint: Endpoint, headers: Mapping[str, str]) -> str | None:
    location = headers.get("location")
    if not location:
        return None
    try:
        return urlsplit(urljoin(endpoint.url, location)).hostname or None
    except ValueError:
        return None
