"""Where `scan_repository` runs: the seam between the audit and its compute.

An executor takes the tasks and yields one `RepoResult` per task, in any order, as
they finish; the client writes each to the inventory as it comes. It never writes
the inventory itself, and a task that fails inside it must come back as a result
with `error` set, never as an exception that ends the audit.

- `InProcess`: one at a time, here (`--workers 1`).
- `ProcessPool` (`pool.py`): N worker processes on this machine (`--workers N`,
  default the cores), forked once each (keyscan already imported), kept for every
  repository; at most 2N tasks are in flight, so memory does not grow with the
  number of repositories. A worker that dies costs a retry of the repositories it
  held, on a fresh worker; one that dies twice under a repository fails it.
- A cluster (`--scheduler`, issue 17) is one more class with the same `run`:
  submit `scan_repository` with each task, yield results as they complete, resubmit
  a task whose worker was lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from keyscan.audit.pool import ProcessPool
from keyscan.audit.task import RepoResult, RepoTask, scan_repository

Work = Callable[[RepoTask], RepoResult]


class Executor(Protocol):
    # Tasks run on this machine and read its files: the client may answer a local
    # repository that is unchanged itself (`task.unchanged_here`) instead of sending it.
    local: bool

    def run(self, tasks: Iterable[RepoTask]) -> Iterator[RepoResult]:
        """One result per task, as each finishes."""


class InProcess:
    local = True

    def __init__(self, work: Work = scan_repository) -> None:
        self._work = work

    def run(self, tasks: Iterable[RepoTask]) -> Iterator[RepoResult]:
        for task in tasks:
            yield self._work(task)


def executor_for(workers: int) -> Executor:
    import multiprocessing

    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return InProcess()  # (workers are forked: keyscan's start-up is never paid again)
    return ProcessPool(workers)


class DaskExecutor:
    """`--scheduler ADDRESS`: each repository a task on a Dask cluster (keyscan/cluster.py).

    Connects now, so a wrong address fails before hosts are listed. A task whose
    workers kept dying comes back as a failed repository; a scheduler gone ends the
    audit with one error, everything recorded so far kept.
    """

    local = False  # a path is read by whichever worker runs its task, on its machine

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
