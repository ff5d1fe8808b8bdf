"""Rate limits: Retry-After, X-RateLimit-*, backoff, PostEverywhere's published limits, the budget.

Time is a FakeClock that moves only when the verifier sleeps, shared with the fake
server, so "waited 60 s" is checked without waiting.
"""

from __future__ import annotations

import itertools
import random

from fakevendor import FakeVendors, json_answer
from keys import make_key
from keyscan.verify.clock import FakeClock
from test_verify import finding, run, statuses

RNG = random.Random(66)


def key(vendor: str) -> str:
    return make_key(vendor, RNG)


def gaps(fake: FakeVendors, secret: str) -> list[float]:
    times = [r.at for r in fake.requests_for(secret)]
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


def test_429_with_retry_after_seconds_waits_that_long_then_retries(
    fake_vendor: FakeVendors,
) -> None:
    secret = key("repeatposts")
    fake_vendor.answer(secret, json_answer(429, Retry_After="7"), json_answer(200))
    out, _ = run([finding(secret, "repeatposts")], fake_vendor, clock=FakeClock())
    assert statuses(out) == [("live", 200)]
    assert gaps(fake_vendor, secret) == [7.0]


def test_429_with_retry_after_http_date(fake_vendor: FakeVendors) -> None:
    clock = FakeClock()
    secret = key("powerpost")
    date = formatdate_in(clock, 20)
    fake_vendor.answer(secret, json_answer(429, Retry_After=date), json_answer(401))
    out, _ = run([finding(secret, "powerpost")], fake_vendor, clock=clock)
    assert statuses(out) == [("invalid", 401)]
    assert 19 <= gaps(fake_vendor, secret)[0] <= 21


def formatdate_in(clock: FakeClock, seconds: int) -> str:
    from email.utils import formatdate

    return formatdate(clock.wall() + seconds, usegmt=True)


def test_429_without_hints_backs_off_from_1s_doubling(fake_vendor: FakeVendors) -> None:
    secret = key("autoposting")
    fake_vendor.answer(secret, *[json_answer(429)] * 4, json_answer(200))
    out, _ = run([finding(secret, "autoposting")], fake_vendor, clock=FakeClock())
    assert statuses(out) == [("live", 200)]
    assert gaps(fake_vendor, secret) == [1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped_at_60s(fake_vendor: FakeVendors) -> None:
    secret = key("autoposting")
    fake_vendor.answer(secret, *[json_answer(429)] * 7, json_answer(200))
    out, _ = run(
        [finding(secret, "autoposting")],
        fake_vendor,
        clock=FakeClock(),
        budget=600.0,
        max_attempts=10,
    )
    assert statuses(out) == [("live", 200)]
    assert gaps(fake_vendor, secret) == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]


def test_x_ratelimit_reset_as_delta_and_as_epoch(fake_vendor: FakeVendors) -> None:
    clock = FakeClock()
    delta, epoch = key("powerpost"), key("powerpost")
    fake_vendor.answer(delta, json_answer(429, X_RateLimit_Reset="12"), json_answer(200))
    reset_at = str(int(clock.wall()) + 25)
    fake_vendor.answer(epoch, json_answer(429, X_RateLimit_Reset=reset_at), json_answer(200))
    out, _ = run(
        [finding(delta, "powerpost"), finding(epoch, "powerpost")],
        fake_vendor,
        clock=clock,
        in_flight=1,
    )
    assert statuses(out) == [("live", 200), ("live", 200)]
    assert gaps(fake_vendor, delta) == [12.0]
    # The epoch is 25 s after the start; the delta pause came first and used 12 of them.
    assert 24 <= fake_vendor.requests_for(epoch)[1].at - fake_vendor.requests[0].at <= 26


def test_remaining_zero_pauses_the_vendor_until_the_reset(fake_vendor: FakeVendors) -> None:
    first, second = key("repeatposts"), key("repeatposts")
    fake_vendor.answer(first, json_answer(200, X_RateLimit_Remaining="0", X_RateLimit_Reset="30"))
    fake_vendor.answer(second, json_answer(200))
    out, _ = run(
        [finding(first, "repeatposts"), finding(second, "repeatposts")],
        fake_vendor,
        clock=FakeClock(),
        in_flight=1,
        budget=600.0,
    )
    assert statuses(out) == [("live", 200), ("live", 200)]
    assert fake_vendor.requests_for(second)[0].at - fake_vendor.requests_for(first)[0].at == 30


def test_posteverywhere_never_gets_more_than_30_a_minute(fake_vendor: FakeVendors) -> None:
    secrets = [key("posteverywhere") for _ in range(75)]
    for secret in secrets:
        fake_vendor.answer(secret, json_answer(200))
    fake_vendor.limits["posteverywhere"] = [(30, 60.0), (500, 3600.0)]
    # One at a time: a FakeClock jumps for every thread at once when one of them sleeps.
    # (bench/verify_bench.py runs the same limits with four in flight on a real clock.)
    out, warnings = run(
        [finding(s, "posteverywhere") for s in secrets],
        fake_vendor,
        clock=FakeClock(),
        budget=600.0,
        in_flight=1,
    )
    assert {f.verification.status for f in out} == {"live"}  # type: ignore[union-attr]
    assert fake_vendor.violations == 0 and len(fake_vendor.requests) == 75
    times = [r.at - 1000 for r in fake_vendor.requests]
    # 30 at once, 30 a minute later, 15 after two; a second of slack per window for jitter
    assert times == [0.0] * 30 + [61.0] * 30 + [122.0] * 15
    assert warnings == []


def test_keys_past_the_budget_are_unknown_never_dropped(fake_vendor: FakeVendors) -> None:
    secrets = [key("posteverywhere") for _ in range(40)]
    for secret in secrets:
        fake_vendor.answer(secret, json_answer(200))
    findings = [finding(s, "posteverywhere", line=n) for n, s in enumerate(secrets)]
    out, warnings = run(findings, fake_vendor, clock=FakeClock(), budget=30.0)
    assert [f.line for f in out] == list(range(40))
    assert statuses(out).count(("live", 200)) == 30
    late = [f.verification for f in out if f.verification and f.verification.status == "unknown"]
    assert len(late) == 10
    assert all("verification budget ran out" in v.detail for v in late)
    assert warnings == [
        "10 key(s) could not be checked within the 30 s verification budget and are reported "
        "as unknown; set KEYSCAN_VERIFY_TIMEOUT to allow more time"
    ]
    assert len(fake_vendor.requests) == 30


def test_a_retry_after_past_the_budget_ends_at_once(fake_vendor: FakeVendors) -> None:
    secret = key("powerpost")
    fake_vendor.answer(secret, json_answer(429, Retry_After="3600"))
    out, warnings = run([finding(secret, "powerpost")], fake_vendor, clock=FakeClock())
    assert out[0].verification is not None
    assert out[0].verification.status == "unknown" and out[0].verification.http_status == 429
    assert "asked to wait 3600 s" in out[0].verification.detail
    assert len(fake_vendor.requests) == 1
    assert len(warnings) == 1


def test_at_most_four_requests_in_flight_per_vendor(fake_vendor: FakeVendors) -> None:
    import threading
    import time

    active = 0
    peak = 0
    lock = threading.Lock()
    respond = fake_vendor.respond

    def counting(request):  # type: ignore[no-untyped-def]
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return respond(request)

    fake_vendor.respond = counting  # type: ignore[method-assign]
    secrets = [key("repeatposts") for _ in range(16)]
    out, _ = run([finding(s, "repeatposts") for s in secrets])
    assert len(out) == 16 and peak == 4


def test_remaining_counts_down_before_the_reset(fake_vendor: FakeVendors) -> None:
    secrets = [key("powerpost") for _ in range(4)]
    fake_vendor.answer(
        secrets[0], json_answer(200, X_RateLimit_Remaining="2", X_RateLimit_Reset="30")
    )
    for secret in secrets[1:]:
        fake_vendor.answer(secret, json_answer(401))
    out, _ = run(
        [finding(s, "powerpost") for s in secrets],
        fake_vendor,
        clock=FakeClock(),
        in_flight=1,
        budget=600.0,
    )
    assert statuses(out) == [("live", 200)] + [("invalid", 401)] * 3
    assert [r.at - 1000 for r in fake_vendor.requests] == [0.0, 0.0, 0.0, 30.0]
