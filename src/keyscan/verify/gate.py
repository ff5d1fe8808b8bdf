"""One vendor's politeness: its published limits, the pauses it asks for, backoff without hints.

Shared by the threads checking that vendor's keys. Slots are handed out in order
(a request never overtakes one reserved before it), so the log of send times
stays sorted and a sliding window over it is exact.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from keyscan.verify.clock import Clock

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
# X-RateLimit-Reset is epoch seconds at some vendors and seconds-to-wait at others:
# a value this large can only be an epoch (it is 2001-09-09).
EPOCH_THRESHOLD = 1_000_000_000
# A request leaves here before the vendor counts it; network jitter can squeeze two of
# them closer at the vendor's end. A second of slack per window keeps us under its count.
WINDOW_MARGIN = 1.0


class Gate:
    def __init__(self, limits: tuple[tuple[int, float], ...], clock: Clock) -> None:
        self.clock = clock
        self._windows = [(count, period, deque[float]()) for count, period in limits]
        self._lock = threading.Lock()
        self._last = -math.inf
        self._paused_until = -math.inf
        self._backoff = FIRST_BACKOFF
        self._sequence = 0  # reservations so far
        # What the vendor's last X-RateLimit-Remaining leaves us until its reset (None: unknown).
        self._credits: int | None = None
        self._credits_until = -math.inf

    def reserve(self, deadline: float) -> tuple[float, int] | None:
        """Take the next send slot: (moment to send at, its sequence number), or None if the
        slot falls past `deadline`."""
        with self._lock:
            now = self.clock.now()
            for _, period, sent in self._windows:
                while sent and sent[0] <= now - period - WINDOW_MARGIN:
                    sent.popleft()
            moment = max(now, self._last, self._paused_until)
            if self._credits is not None and moment < self._credits_until and self._credits <= 0:
                moment = self._credits_until  # the vendor's window is used up: wait for its reset
            if moment >= self._credits_until:
                self._credits = None
            changed = True
            while changed:  # each window can push the moment later; settle all of them
                changed = False
                for count, period, sent in self._windows:
                    # `count` sends in (moment - period, moment]: wait for the oldest to age out
                    if len(sent) >= count and sent[-count] + period + WINDOW_MARGIN > moment:
                        moment = sent[-count] + period + WINDOW_MARGIN
                        changed = True
            if moment > deadline:
                return None
            for _, _, sent in self._windows:
                sent.append(moment)
            self._last = moment
            if self._credits is not None:
                self._credits -= 1
            self._sequence += 1
            return moment, self._sequence

    def paused_until(self) -> float:
        with self._lock:
            return self._paused_until

    def pause(self, until: float) -> None:
        """No request to this vendor before `until` (a 429, or X-RateLimit-Remaining: 0)."""
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def next_backoff(self) -> float:
        """For a 429 without a hint: 1 s, then doubling, at most 60 s."""
        with self._lock:
            wait = self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            return wait

    def calm(self) -> None:
        """An answer that was not a 429: start backing off from 1 s again next time."""
        with self._lock:
            self._backoff = FIRST_BACKOFF

    def note(self, sequence: int, status: int, headers: Mapping[str, str]) -> float | None:
        """Apply the rate-limit headers of the answer to request `sequence`; return the wait a
        429 asks for (None: no hint)."""
        wait = retry_after(headers, self.clock.wall())
        reset = rate_limit_reset(headers, self.clock.wall())
        if wait is None and status == 429:
            wait = reset
        remaining = _count(headers.get("x-ratelimit-remaining", ""))
        if remaining is not None and reset is not None and status != 429:
            with self._lock:
                # Requests reserved after this one were not counted in its Remaining yet.
                self._credits = remaining - (self._sequence - sequence)
                self._credits_until = self.clock.now() + reset
        return wait


def _count(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def retry_after(headers: Mapping[str, str], wall: float) -> float | None:
    """`Retry-After`: delta seconds or an HTTP date (RFC 9110); None if absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall)


def rate_limit_reset(headers: Mapping[str, str], wall: float) -> float | None:
    """`X-RateLimit-Reset` as seconds to wait: epoch seconds or a delta, told apart by size."""
    value = headers.get("x-ratelimit-reset", "").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return max(0.0, number - wall) if number >= EPOCH_THRESHOLD else number
