"""Time for the verifier, injectable: tests and the benchmark must not wait for real minutes."""

from __future__ import annotations

import threading
import time


class Clock:
    """Real time: `now` is monotonic seconds, `wall` epoch seconds.

    `interrupt()` ends every sleep at once (Ctrl-C must not wait out a 60 s backoff).
    """

    def __init__(self) -> None:
        self._interrupted = threading.Event()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def interrupt(self) -> None:
        self._interrupted.set()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock's time last on the wall (for socket timeouts)."""
        return seconds

    def sleep_until(self, moment: float) -> None:
        """Sleep until `now()` reaches `moment` (in `now`'s seconds)."""
        seconds = moment - self.now()
        if seconds > 0:
            self._interrupted.wait(seconds)


class ScaledClock(Clock):
    """Time running `factor` times faster: a 60 s wait takes 60/factor real seconds.

    For the benchmark (and a fake server sharing it), so published per-minute
    limits can be exercised without waiting minutes.
    """

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self._start = time.monotonic()
        self._wall0 = time.time()

    def now(self) -> float:
        return (time.monotonic() - self._start) * self.factor

    def wall(self) -> float:
        return self._wall0 + self.now()

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.factor

    def sleep_until(self, moment: float) -> None:
        seconds = moment - self.now()
        if seconds > 0:
            self._interrupted.wait(seconds / self.factor)


class FakeClock(Clock):
    """Time that moves only when someone sleeps; records the sleeps (for tests)."""

    def __init__(self, start: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        super().__init__()
        self._t = start
        self._wall_offset = wall - start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._t

    def wall(self) -> float:
        return self.now() + self._wall_offset

    def sleep_until(self, moment: float) -> None:
        with self._lock:
            if moment > self._t:
                # Absolute targets: sleepers in parallel threads wait together, not in turn.
                self.sleeps.append(moment - self._t)
                self._t = moment
