"""Small top-level functions for Dask workers to run in tests (importable on the workers)."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from keyscan.cluster import children_allowed, worker_cores


def slow_square(task: tuple[int, str, float]) -> tuple[int, int]:
    """x*x after `seconds`; leaves a marker `<x>-<pid>` in `folder` when it starts."""
    x, folder, seconds = task
    (Path(folder) / f"{x}-{os.getpid()}").touch()
    time.sleep(seconds)
    return x * x, os.getpid()


def pool_inside(task: int) -> tuple[int, list[int]]:
    """A process pool inside the task, as a history scan starts one for a big repository."""
    with children_allowed(), ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("fork")
    ) as pool:
        return worker_cores(), list(pool.map(abs, [-task, -task - 1]))
