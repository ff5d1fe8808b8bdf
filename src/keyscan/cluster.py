"""`--scheduler tcp://HOST:PORT`: work handed to a Dask distributed cluster the team runs.

    with Cluster("tcp://10.0.0.5:8786") as cluster:
        for index, outcome in cluster.run(scan_one, tasks):
            ...  # a result of scan_one(tasks[index]), or Lost (its worker kept dying)

Dask (`pip install 'keyscan[dask]'`) is imported only here and only then. The
client keeps a bounded number of tasks in flight (IN_FLIGHT per worker thread:
one running, the rest queued at the scheduler, so a worker that finishes starts
the next at once, whatever the client is doing), so 10,000 repositories never sit
in the scheduler's memory at once, and results arrive as they complete. A task's
successor is handed out as soon as it finishes, before its result is used.
Dask itself reruns a task whose worker died on another worker (up to
`distributed.scheduler.allowed-failures` times, then `Lost`). A scheduler that
goes away ends the run with one KeyscanError: what was written
before it stays written, and the same command resumes.

Workers must have the same keyscan installed; that is checked before any task.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from keyscan import __version__
from keyscan.errors import KeyscanError

T = TypeVar("T")
R = TypeVar("R")

_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/]+:\d{1,5}$")
CONNECT_TIMEOUT = 30.0  # seconds to reach the scheduler and see a first worker
REFRESH = 5.0  # seconds between looks at the cluster while nothing finishes
ASK = 10.0  # seconds for the scheduler to say how many worker threads it has
IN_FLIGHT = 4  # tasks out per worker thread: one running, the rest queued at the scheduler
NO_WORKERS = 600.0  # seconds without any worker (all died, none came back) before giving up


@dataclass(frozen=True)
class Lost(Generic[T]):
    """A task the cluster gave up on: every worker that ran it died (memory, a crash)."""

    reason: str


def check_address(address: str) -> str:
    if not _ADDRESS.match(address):
        raise KeyscanError(
            "--scheduler takes a Dask scheduler address such as tcp://10.0.0.5:8786: fix it"
        )
    return address


class Cluster:
    def __init__(self, address: str, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.address = check_address(address)
        try:
            import distributed
        except ImportError:
            raise KeyscanError(
                "--scheduler needs Dask: pip install 'keyscan[dask]' (on the workers too)"
            ) from None
        self._quiet = _Quiet()
        self._quiet.__enter__()  # distributed logs every lost connection; we say it once
        try:
            client_type: Any = distributed.Client  # untyped
            self.client: Any = client_type(address, timeout=connect_timeout,
                                           set_as_default=False)
        except (OSError, TimeoutError) as error:
            self._quiet.__exit__()
            raise KeyscanError(
                f"cannot reach the Dask scheduler at {address} ({type(error).__name__}): "
                "check the address and that the scheduler runs"
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=connect_timeout)
            versions = self.client.run(_worker_version)
        except Exception as error:
            self.close()
            if "keyscan" in str(error) and isinstance(error, ImportError | ModuleNotFoundError):
                raise KeyscanError(_NOT_INSTALLED) from None
            raise KeyscanError(
                f"the Dask scheduler at {address} has no worker after {connect_timeout:g} s "
                f"({type(error).__name__}): start workers, or check the address"
            ) from None
        others = sorted({v for v in versions.values() if v != __version__})
        if others:
            self.close()
            raise KeyscanError(
                f"Dask workers run keyscan {', '.join(map(str, others))}, this is "
                f"{__version__}: install the same keyscan on every worker"
            )

    def threads(self) -> int:
        """Worker threads the cluster has now (0 while it has no worker). Asked within
        ASK seconds: a scheduler gone, Dask would try to reach it for its whole connect
        timeout (30 s by default) before it answered."""
        return sum(self.client.nthreads(callback_timeout=ASK).values())

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R | Lost[T]]]:
        """(index, fn(items[index]) or Lost) for every item, in the order they finish."""
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        run_id = uuid.uuid4().hex[:12]
        pending = iter(enumerate(items))
        flight: dict[Any, int] = {}  # task key -> index
        finished: queue.Queue[Any] = queue.Queue()  # futures, as Dask says they are done
        limit, idle_since, looked = IN_FLIGHT, None, -REFRESH

        def top_up() -> None:
            while (len(flight) < limit and self.client.status == "running"
                   and (entry := next(pending, None)) is not None):
                index, item = entry
                future: Any = self.client.submit(fn, item, key=f"keyscan-{run_id}-{index}",
                                                 pure=False)
                flight[future.key] = index
                future.add_done_callback(finished.put)

        while True:
            if self.client.status != "running":  # Dask dropped every task when it lost it
                raise self._gone()
            if time.monotonic() - looked >= REFRESH:  # as many as the cluster can take now
                threads, looked = self._threads_or_lost(), time.monotonic()
                limit = max(IN_FLIGHT, IN_FLIGHT * threads)
            top_up()
            if not flight:
                return
            try:
                future = finished.get(timeout=REFRESH)
            except queue.Empty:  # nothing finished for a while: is anyone working?
                idle_since = self._check_workers(idle_since)
                continue
            idle_since = None
            index = flight.pop(future.key)
            if future.status == "cancelled":  # only we cancel, and we do not: the scheduler left
                raise self._gone()
            top_up()  # its successor goes out now, not after the caller has used this result
            try:
                outcome: R | Lost[T] = future.result()
            except KilledWorker:
                outcome = Lost("every Dask worker that ran it died (out of memory? a crash?)")
            except (FutureCancelledError, OSError):  # gathering from a scheduler gone: the
                raise self._gone() from None  # connection closed, refused or timed out
            except (ImportError, ModuleNotFoundError) as error:
                if "keyscan" in str(error):
                    raise KeyscanError(_NOT_INSTALLED) from None
                raise
            finally:
                future.release()
            yield index, outcome

    def _check_workers(self, idle_since: float | None) -> float | None:
        """None while the cluster has workers; else since when it has had none, until
        NO_WORKERS seconds pass: then one clear error (an audit never hangs for good)."""
        if self._threads_or_lost() > 0:
            return None
        now = time.monotonic()
        if idle_since is not None and now - idle_since > NO_WORKERS:
            raise KeyscanError(
                f"the Dask cluster at {self.address} has had no worker for {NO_WORKERS:g} s: "
                "start workers and run the same command again to resume"
            )
        return now if idle_since is None else idle_since

    def _threads_or_lost(self) -> int:
        if self.client.status != "running":
            return -1  # reconnecting (the scheduler went away) or closed: nothing to ask
        try:
            return self.threads()
        except Exception:  # the scheduler went away: the next result says so
            return -1

    def _gone(self) -> KeyscanError:
        return KeyscanError(
            f"lost the Dask scheduler at {self.address}: every repository finished so far is "
            "in the inventory; run the same command again to resume"
        )

    def close(self) -> None:
        with suppress(Exception):  # a scheduler already gone: nothing to close politely
            self.client.close(timeout=5)
        self._quiet.__exit__()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_NOT_INSTALLED = "the Dask workers cannot import keyscan: pip install 'keyscan[dask]' on each"


def _worker_version() -> str:
    return __version__


def worker_cores() -> int:
    """Cores one task may use where it runs: a Dask worker's machine shared among its
    threads (a worker with 4 threads on 16 cores gives each task 4), else every core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        threads = 1
    return max(1, (cores or 1) // max(1, threads))


@contextmanager
def children_allowed() -> Iterator[None]:
    """Let a task start worker processes inside a daemonic Dask worker.

    Dask's nanny starts workers as daemonic processes, and multiprocessing refuses a
    daemonic process children (so that none outlives it). The history scan's pool is
    started and joined inside the task, and its processes end when their pipes close,
    so for the task's duration the flag is lifted; it is put back after.
    """
    process: Any = multiprocessing.current_process()
    daemonic = bool(process._config.get("daemon"))
    if daemonic:
        process._config["daemon"] = False
    try:
        yield
    finally:
        if daemonic:
            process._config["daemon"] = True


class _Quiet:
    """distributed's loggers held at CRITICAL while a cluster is in use (restored after).

    Dask's config gives its loggers levels of their own, so each is set, not the parent."""

    def __enter__(self) -> None:
        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"]
        self._levels = {n: logging.getLogger(n).level for n in ["distributed", *names]}
        for name in self._levels:
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
