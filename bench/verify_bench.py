"""Verification at scale: 1,000 distinct keys across the four vendors, against the fake
vendor APIs on 127.0.0.1, with rate limits enforced by the server.

PostEverywhere publishes 30 requests/minute and 500/hour; the other three publish no
numbers, so the fake gives them an assumed 60/minute that keyscan does not know and
must learn from X-RateLimit-* and 429s. Waiting real minutes proves nothing a faster
clock does not, so time runs SCALE times faster for the verifier and the server alike.

Reported: wall time (in the limits' seconds and in real seconds) against the minimum
the limits allow, requests sent, 429s provoked, and that no finding was lost.

    .venv/bin/python bench/verify_bench.py [--keys 1000] [--scale 100]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from fakevendor import VENDORS, FakeVendors, json_answer  # noqa: E402
from keys import PREFIXES, make_key  # noqa: E402
from keyscan.engine import Engine  # noqa: E402
from keyscan.model import Fragment  # noqa: E402
from keyscan.rules import load_builtin  # noqa: E402
from keyscan.verify import verify_findings  # noqa: E402
from keyscan.verify.clock import ScaledClock  # noqa: E402
from keyscan.verify.endpoints import load_endpoints  # noqa: E402
from keyscan.verify.http import Settings  # noqa: E402

LIMITS: dict[str, list[tuple[int, float]]] = {
    "posteverywhere": [(30, 60.0), (500, 3600.0)],  # published
    "repeatposts": [(60, 60.0)],  # assumed
    "powerpost": [(60, 60.0)],  # assumed
    "autoposting": [(60, 60.0)],  # assumed
}
# What each vendor documents answering (most leaked keys are already revoked), in its
# own JSON (tests/fakevendor.py): live keys' answers say what they open.
STATUSES: dict[str, tuple[int, ...]] = {
    vendor: (200, 401, 401, 401, 402, 403) for vendor in VENDORS
}
STATUSES["posteverywhere"] = (200, 401, 401, 401, 403)  # no 402 on /me
STATUSES["autoposting"] = (200, 401, 401, 401, 403)  # 403: unknown (restricted or malformed)


def minimum_seconds(n: int, limits: list[tuple[int, float]]) -> float:
    """When the n-th request can go out at the earliest, sending greedily under every window."""
    sent: list[float] = []
    for _ in range(n):
        t = sent[-1] if sent else 0.0
        for count, period in limits:
            if len(sent) >= count:
                t = max(t, sent[-count] + period)
        sent.append(t)
    return sent[-1] if sent else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=100.0, help="how much faster time runs")
    args = parser.parse_args()

    rng = random.Random(2026)
    clock = ScaledClock(args.scale)
    fake = FakeVendors(clock=clock.now)
    fake.limits.update(LIMITS)
    vendors = sorted(VENDORS)
    secrets: dict[str, str] = {}
    lines = []
    for i in range(args.keys):
        vendor = vendors[i % len(vendors)]
        secret = make_key(vendor, rng, prefix=rng.choice(PREFIXES[vendor]))
        secrets[secret] = vendor
        fake.answer(secret, json_answer(rng.choice(STATUSES[vendor])))
        lines.append(f"KEY_{i} = {secret}")
    ruleset = load_builtin()
    findings = Engine(ruleset.rules).scan(Fragment("\n".join(lines).encode(), "keys.txt"))
    assert len(findings) == args.keys, f"the engine found {len(findings)} of {args.keys} keys"

    settings = Settings(
        endpoints=load_endpoints({**os.environ, **fake.env()}),
        budget=4 * 3600.0,
        clock=clock,
    )
    warnings: list[str] = []
    started, real_started = clock.now(), time.monotonic()
    out = verify_findings(findings, ruleset, warnings.append, settings=settings)
    elapsed, real = clock.now() - started, time.monotonic() - real_started
    fake.close()

    per_vendor = Counter(secrets.values())
    floor = max(minimum_seconds(per_vendor[v], LIMITS[v]) for v in per_vendor)
    statuses = Counter(f.verification.status if f.verification else "MISSING" for f in out)
    requests = Counter(r.vendor for r in fake.requests)
    lost = len(findings) - sum(1 for f in out if f.verification is not None)
    live = [f.verification for f in out if f.verification and f.verification.status == "live"]
    opened = sum(1 for v in live if v.access)
    rows = [
        ("keys (distinct) / findings in / out", f"{len(secrets)} / {len(findings)} / {len(out)}"),
        ("findings without a verdict (lost)", str(lost)),
        ("verdicts", ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))),
        ("live verdicts saying what the key opens", f"{opened} of {len(live)}"),
        ("requests sent (per vendor)", ", ".join(f"{v} {requests[v]}" for v in vendors)),
        ("429s provoked (over a server limit)", str(fake.violations)),
        ("minimum the limits allow", f"{floor:.0f} s"),
        ("wall time, limits' clock", f"{elapsed:.0f} s ({elapsed / floor:.2f}x the minimum)"),
        ("wall time, real", f"{real:.1f} s at {args.scale:g}x"),
        ("warnings", "; ".join(warnings) or "none"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:{width}} | {value} |")
    if lost or len(out) != len(findings) or math.isnan(elapsed):
        sys.exit(1)


if __name__ == "__main__":
    main()
