"""The client for hosts' REST APIs: GET only, pages by `Link`, rate limits waited out, bounded.

Like verify/http.py it follows no redirect and puts no secret in a message: the
token is a header on requests to the API's own origin, and every failure is
described in words built here (httpx exceptions can carry URLs and headers). A
`Link: rel="next"` or a redirect to another origin is refused, never followed
with the token. Waiting is bounded: all rate-limit waits of one listing together
stay under `max_wait`, else one clear error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import httpx

from keyscan import __version__
from keyscan.errors import KeyscanError
from keyscan.hosts.gitauth import origin_of
from keyscan.verify.clock import Clock
from keyscan.verify.endpoints import is_loopback

MAX_PAGE = 32 * 1024 * 1024  # one page of 100 repositories is ~1 MB; an endless body stops here
MAX_PAGES = 10_000  # 1,000,000 repositories: a server that links pages in a circle still ends
RETRIES = 3  # tries of a page after 5xx or a network error
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
MAX_REDIRECTS = 5  # same-origin only (a renamed organisation)
EPOCH_THRESHOLD = 1_000_000_000  # a reset this large is epoch seconds, else seconds to wait
_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*?\brel="?next"?', re.IGNORECASE)


class ListingError(KeyscanError):
    """One organisation, user or group could not be listed: a warning, the others go on."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status that refused it, if one did


@dataclass
class Settings:
    max_wait: float = 3600.0  # seconds of rate-limit waiting in all, per listing
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    clock: Clock = field(default_factory=Clock)
    status: Callable[[str], None] = lambda text: None  # the progress line ("" clears it)
    waiting: Callable[[float, str], None] = lambda seconds, why: None  # once a wait


class HostApi:
    """One host's API, e.g. `HostApi("https://api.github.com", "GitHub", headers, settings)`."""

    def __init__(
        self, base: str, name: str, headers: Mapping[str, str], settings: Settings
    ) -> None:
        origin = origin_of(base)
        if origin is None:
            raise KeyscanError(
                f"the {name} API URL must be https:// (http:// only for loopback): fix it"
            )
        self.base = base.rstrip("/")
        self.origin = origin
        self.name = name
        self.host = httpx.URL(base).host
        self.settings = settings
        self.waited = 0.0
        self.client = httpx.Client(
            follow_redirects=False,
            trust_env=not is_loopback(self.host),
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={"User-Agent": f"keyscan/{__version__} (audit)", **headers},
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HostApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> object:
        """The JSON document at `path` (below the base); ListingError if there is none."""
        document, _ = self._fetch(self._url(path, params))
        return document

    def pages(self, path: str, params: Mapping[str, str]) -> Iterator[list[object]]:
        """Each page of the list at `path`, following `Link: <…>; rel="next"`."""
        url: str | None = self._url(path, params)
        for _ in range(MAX_PAGES):
            if url is None:
                return
            document, link = self._fetch(url)
            if not isinstance(document, list):
                raise ListingError(f"{self.name} answered {path} with something not a list")
            yield document
            url = self._next(url, link)
        raise ListingError(f"{self.name} linked more than {MAX_PAGES} pages for {path}")

    def _url(self, path: str, params: Mapping[str, str] | None) -> str:
        return str(httpx.URL(self.base + path, params=dict(params or {})))

    def _next(self, url: str, link: str) -> str | None:
        match = _NEXT.search(link)
        if match is None:
            return None
        target: str = urljoin(url, match.group(1))
        if origin_of(target) != self.origin:
            raise ListingError(
                f"{self.name}'s next page is on another host; keyscan sends its token only "
                f"to {self.host}: check the API URL"
            )
        return target

    def _fetch(self, url: str) -> tuple[object, str]:
        """(JSON document, Link header) of one GET, through retries, waits and redirects."""
        failures = 0
        redirects = 0
        while True:
            answer = self._send(url)
            if isinstance(answer, str):  # a network failure, described
                failures += 1
                if failures >= RETRIES:
                    raise ListingError(f"{self.name} API unreachable: {answer}")
                self._wait(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1)), "a retry")
                continue
            status, headers, body = answer
            if status == 200:
                return _json(body, self.name), headers.get("link", "")
            if status in (301, 302, 307, 308):
                url = self._redirect(url, headers, redirects)
                redirects += 1
                continue
            wait = rate_limit_wait(status, headers, self.settings.clock.wall())
            if wait is not None:
                self._wait(wait, f"{self.host}'s rate limit")
                continue
            if status >= 500:
                failures += 1
                if failures >= RETRIES:
                    raise ListingError(f"{self.name} API answered HTTP {status} {RETRIES} times")
                self._wait(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1)), "a retry")
                continue
            raise self._refused(status)

    def _send(self, url: str) -> tuple[int, Mapping[str, str], bytes] | str:
        try:
            with self.client.stream("GET", url) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_PAGE:
                        return f"a page larger than {MAX_PAGE >> 20} MiB from {self.host}"
                return response.status_code, response.headers, bytes(body)
        except httpx.TimeoutException:
            return f"no answer from {self.host} within the timeout"
        except httpx.ConnectError:
            return f"could not connect to {self.host}"
        except Exception as error:  # its text may hold the URL or a header
            return f"network error talking to {self.host} ({type(error).__name__})"

    def _redirect(self, url: str, headers: Mapping[str, str], redirects: int) -> str:
        target = urljoin(url, headers.get("location", ""))
        if origin_of(target) != self.origin:
            raise ListingError(
                f"{self.name} API redirected to another host; keyscan sends its token only "
                f"to {self.host} and does not follow: check the API URL"
            )
        if redirects >= MAX_REDIRECTS:
            raise ListingError(f"{self.name} API redirected more than {MAX_REDIRECTS} times")
        return target

    def _wait(self, seconds: float, why: str) -> None:
        clock = self.settings.clock
        if self.waited + seconds > self.settings.max_wait:
            raise KeyscanError(
                f"{self.name} asks to wait {math.ceil(seconds)} s for {why}, past the "
                f"--rate-limit-wait of {self.settings.max_wait:g} s: run again later, set a "
                "token for a higher limit, or raise --rate-limit-wait"
            )
        self.waited += seconds
        self.settings.waiting(seconds, why)
        end = clock.now() + seconds
        while (left := end - clock.now()) > 0:  # a countdown on the progress line
            self.settings.status(f"waiting {math.ceil(left)} s for {why}")
            clock.sleep_until(min(end, clock.now() + 1.0))
            if clock.interrupted:
                raise KeyscanError("interrupted")
        self.settings.status("")

    def _refused(self, status: int) -> KeyscanError:
        if status == 401:  # the user's token: nothing listed with it will work
            return KeyscanError(
                f"{self.name} API at {self.host} refused the token (HTTP 401): "
                "set a valid token or unset it"
            )
        return ListingError(f"{self.name} API answered HTTP {status}", status)


def rate_limit_wait(status: int, headers: Mapping[str, str], wall: float) -> float | None:
    """Seconds a rate-limited answer asks us to wait; None if `status` is not one.

    403/429 with `Retry-After` (seconds or an HTTP date), or with no requests remaining
    (`X-RateLimit-Remaining: 0` at GitHub, `RateLimit-Remaining: 0` at GitLab) until
    `…Reset` (epoch seconds). A 429 without hints waits a minute.
    """
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after", "").strip()
    if retry_after:
        seconds = _seconds(retry_after, wall)
        if seconds is not None:
            return max(1.0, seconds)
    remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining", ""))
    if remaining.strip() == "0":
        reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset", "")).strip()
        try:
            value = float(reset)
        except ValueError:
            return MAX_BACKOFF
        wait = value - wall if value >= EPOCH_THRESHOLD else value
        return max(1.0, wait + 1.0)  # a second past the reset: the host's clock may lag ours
    return MAX_BACKOFF if status == 429 else None


def _seconds(retry_after: str, wall: float) -> float | None:
    try:
        return float(retry_after)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(retry_after).timestamp() - wall
    except (TypeError, ValueError, IndexError):
        return None


def _json(body: bytes, name: str) -> object:
    try:
        document: object = json.loads(body)
    except ValueError:
        raise ListingError(f"{name} API answered with something that is not JSON") from None
    return document
