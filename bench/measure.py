"""One timed run of a tool, as the archive and image benchmarks measure it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def run(
    argv: list[str], cwd: Path, stdout: Path, report: Path | None = None
) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS in MiB) of one run: the child is reaped with wait4, so CPU
    and peak RSS include every process it waited for (workers). A tool that fails, or that
    was to write `report` and did not, stops the benchmark: it is never scored on an old one."""
    if report is not None:
        report.unlink(missing_ok=True)
    with stdout.open("wb") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"failed with exit status {code}: {argv}")
    if report is not None and not report.exists():
        raise SystemExit(f"wrote no report, so it failed: {argv}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def paired(ours: list[float], peer: list[float]) -> str:
    """The ratio of each round's two times (run minutes apart at most, so under the same
    load): their median and range, beside the ratio of the two best rounds, which one
    lucky round of either tool moves. On a shared machine whose speed swings by half from
    minute to minute, the two can differ a lot; the table's ratio is the best rounds'."""
    import statistics

    ratios = sorted(mine / theirs for mine, theirs in zip(ours, peer, strict=True))
    return (f"per round (paired): median {statistics.median(ratios):.2f}, "
            f"{ratios[0]:.2f} to {ratios[-1]:.2f} over {len(ratios)} rounds")
