"""Where `scan_repository` runs: the seam between the audit and its compute.

An executor takes the tasks and yields one `RepoResult` per task, in any order, as
they finish; the client writes each to the inventory as it comes. It never writes
the inventory itself, and a task that fails inside it must come back as a result
with `error` set, never as an exception that ends the audit.

- `InProcess`: one at a time, here (`--workers 1`).
- `ProcessPool`: N worker processes on this machine (`--workers N`, default the
  cores), forked once each (keyscan already imported), kept for every repository;
  at most 2N tasks are in flight, so memory does not grow with the number of
  repositories.
- A cluster (`--scheduler`, issue 17) is one more class with the same `run`:
  submit `scan_repository` with each task, yield results as they complete, resubmit
  a task whose worker was lost.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from keyscan.audit.task import RepoResult, RepoTask, scan_repository

Work = Callable[[RepoTask], RepoResult]
# Forked workers start with keyscan already imported (no start-up at all) and are this
# process's children (their time counts in its rusage). They inherit the inventory's
# open connections but never touch them, and end with os._exit, so never close them.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class Executor(Protocol):
    def run(self, tasks: Iterable[RepoTask]) -> Iterator[RepoResult]:
        """One result per task, as each finishes."""


class InProcess:
    def __init__(self, work: Work = scan_repository) -> None:
        self._work = work

    def run(self, tasks: Iterable[RepoTask]) -> Iterator[RepoResult]:
        for task in tasks:
            yield self._work(task)


class ProcessPool:
    def __init__(self, workers: int, work: Work = scan_repository) -> None:
        self.workers = workers
        self._work = work

    def run(self, tasks: Iterable[RepoTask]) -> Iterator[RepoResult]:
        context = multiprocessing.get_context(_START_METHOD)
        pending = iter(tasks)
        running: dict[Future[RepoResult], RepoTask] = {}
        with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
            while True:
                while len(running) < 2 * self.workers:
                    task = next(pending, None)
                    if task is None:
                        break
                    running[pool.submit(self._work, task)] = task
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    yield _result(future, task)


def _result(future: Future[RepoResult], task: RepoTask) -> RepoResult:
    try:
        return future.result()
    except BrokenProcessPool:
        return RepoResult(task.name, error="its worker process died (out of memory?)")


def executor_for(workers: int) -> Executor:
    return InProcess() if workers <= 1 else ProcessPool(workers)


class DaskExecutor:
    """`--scheduler ADDRESS`: each repository a task on a Dask cluster (keyscan/cluster.py).

    Connects now, so a wrong address fails before hosts are listed. A task whose
    workers kept dying comes back as a failed repository; a scheduler gone ends the
    audit with one error, everything recorded so far kept.
    """

    def __init__(self, address: str) -> None:
        from keyscan.cluster import Cluster

        self._cluster = Cluster(address)

    def run(self, tasks: Iterable[RepoTask]) -> Iterator[RepoResult]:
        from keyscan.cluster import Lost

        listed = list(tasks)
        for index, outcome in self._cluster.run(scan_on_worker, listed):
            if isinstance(outcome, Lost):
                yield RepoResult(listed[index].name, error=outcome.reason)
            else:
                yield outcome

    def close(self) -> None:
        self._cluster.close()


def scan_on_worker(task: RepoTask) -> RepoResult:
    """`scan_repository` on a Dask worker: the worker's share of its machine's cores, and
    the history scan's own process pool allowed inside Dask's daemonic worker process."""
    from dataclasses import replace

    from keyscan.cluster import children_allowed, worker_cores

    with children_allowed():
        return scan_repository(replace(task, cores=worker_cores()))
