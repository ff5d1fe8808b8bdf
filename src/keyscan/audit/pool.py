"""`--workers N`: the audit's own pool of forked worker processes, one pipe each.

Each worker is forked once (keyscan already imported, the engine built: no start-up)
and scans repository after repository. It holds at most two tasks: the one it runs
and the next (queued in its pipe, so it never waits for the client while the client
writes the inventory). Because the client knows which worker holds which task, a
worker that dies (SIGKILL, the kernel's OOM killer, a crash in a C library) costs
only a retry of the repositories it held, on a fresh worker forked in its place;
the other workers go on undisturbed (concurrent.futures' pool would break whole and
fail every repository in flight). The task it was running is charged the death; a
repository whose worker died under it twice is a failed repository, never retried
forever. Results come back in any order, each task's once.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from itertools import chain
from multiprocessing.connection import Connection, wait
from typing import Any

from keyscan.audit.task import RepoResult, RepoTask, scan_repository
from keyscan.errors import KeyscanError

Work = Callable[[RepoTask], RepoResult]
DEATHS = 2  # a repository whose worker died this often under it is given up
QUEUED_BYTES = 64 << 10  # a task queued behind a running one fits in the pipe's buffer
DIED = "its worker process died twice while scanning it (out of memory? killed?)"
STARTS = ("worker processes die as soon as they start: check memory and process limits "
          "(ulimit -u, cgroups), or audit with --workers 1")


class ProcessPool:
    local = True

    def __init__(self, workers: int, work: Work = scan_repository) -> None:
        self.workers = workers
        self._work = work

    def run(self, tasks: Iterable[RepoTask]) -> Iterator[RepoResult]:
        pending = iter(tasks)
        first = next(pending, None)
        if first is None:
            return  # nothing to do (a second audit's unchanged repositories): no fork
        pending = chain([first], pending)
        todo: deque[RepoTask] = deque()  # handed back by a dead worker: they go first
        deaths: dict[str, int] = {}
        crew = [_Worker(self._work) for _ in range(self.workers)]
        refused = 0  # tasks in a row that no worker could take: workers die as they start
        try:
            while True:
                for index, worker in enumerate(crew):
                    if not worker.alive and not worker.held:  # died idle
                        worker.stop()
                        crew[index] = worker = _Worker(self._work)
                    while worker.wants_more():
                        task = todo.popleft() if todo else next(pending, None)
                        if task is None:
                            break
                        if not worker.give(task):
                            todo.appendleft(task)
                            refused += 1
                            if refused > 4 * self.workers:
                                raise KeyscanError(STARTS)
                            break
                        refused = 0
                busy = [worker for worker in crew if worker.held]
                if not busy:
                    return
                ready = set(wait([conn for w in busy for conn in (w.conn, w.sentinel)]))
                done: list[RepoResult] = []
                for worker in busy:
                    if worker.conn in ready or worker.sentinel in ready:
                        done += worker.collect()
                    if not worker.alive:
                        done += _lost(worker, todo, deaths)
                        crew[crew.index(worker)] = _Worker(self._work)
                yield from done  # after the next tasks went out: workers scan meanwhile
        finally:
            for worker in crew:
                worker.stop()


def _lost(worker: _Worker, todo: deque[RepoTask], deaths: dict[str, int]) -> list[RepoResult]:
    """The tasks a dead worker held: the one it ran is charged (given up at DEATHS), the
    ones queued behind it go back untouched. Failed results for those given up."""
    running, *queued = worker.held
    todo.extendleft(reversed(queued))
    deaths[running.name] = deaths.get(running.name, 0) + 1
    if deaths[running.name] >= DEATHS:
        return [RepoResult(running.name, error=DIED)]
    todo.appendleft(running)  # on a fresh worker (another one, or the dead one's successor)
    return []


class _Worker:
    """One forked process serving tasks from its end of a pipe, in order."""

    def __init__(self, work: Work) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        # Forked: it starts with keyscan imported and this process's engines built, and
        # is this process's child (its time counts in our rusage). It inherits the
        # inventory's open connections but never touches them, and ends with os._exit.
        self._process = context.Process(target=_serve, args=(child, self.conn, work),
                                        daemon=True)
        # The heap as it is now is never collected in the child: a collection there
        # would write to every object of it, copying the whole heap page by page.
        gc.freeze()
        try:
            self._process.start()
        except OSError as error:
            raise KeyscanError(f"cannot start a worker process ({error.strerror}): "
                               "free some memory or processes, or audit with --workers 1"
                               ) from None
        finally:
            gc.unfreeze()
        child.close()
        self.sentinel = self._process.sentinel
        self.held: list[RepoTask] = []  # in the order it runs them
        self.alive = True

    def wants_more(self) -> bool:
        return self.alive and len(self.held) < 2

    def give(self, task: RepoTask) -> bool:
        """Hand `task` over (False: it cannot take it now). A task is queued behind a
        running one only if it fits in the pipe: the client must never block on a
        worker that is blocked on sending it a result."""
        payload = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)
        if self.held and len(payload) > QUEUED_BYTES:
            return False
        try:
            self.conn.send_bytes(payload)
        except OSError:  # it died: its sentinel says so next
            self.alive = False
            return False
        self.held.append(task)
        return True

    def collect(self) -> list[RepoResult]:
        """Every result it has sent; notes its death (a closed pipe, or its end)."""
        results: list[RepoResult] = []
        raised: BaseException | None = None
        try:
            while self.held and raised is None and self.conn.poll():
                kind, value = self.conn.recv()
                if kind == "raised":
                    raised = value
                else:
                    self.held.pop(0)
                    results.append(value)
        except (EOFError, OSError):  # died, perhaps in the middle of a message
            self.alive = False
        if raised is not None:
            raise raised  # a bug in the task: as if it had run here
        if self.alive and self._process.exitcode is not None:
            self.alive = False
        if not self.alive:
            self._process.join()
            self.conn.close()
        return results

    def stop(self) -> None:
        if self.conn.closed:
            return
        if self.alive:
            with suppress(OSError):
                self.conn.send_bytes(pickle.dumps(None))
            self._process.join(timeout=0 if self.held else 5)
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join()
        self.conn.close()


def _serve(conn: Connection, parents: Connection, work: Work) -> None:
    """A worker's life: tasks in, results out, until told to stop or its client is gone."""
    parents.close()  # the client's end: only the client may hold it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the client's to act on
    while True:
        try:
            task = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            break
        if task is None:
            break
        outcome: tuple[str, Any]
        try:
            outcome = ("result", work(task))
        except BaseException as error:  # a bug: the client raises it
            outcome = ("raised", _picklable(error))
        try:
            conn.send(outcome)
        except (OSError, pickle.PicklingError):
            break
    conn.close()
    os._exit(0)


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.dumps(error)
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
