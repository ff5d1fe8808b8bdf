"""Forked worker processes for `driver.run_parts`: one part at a time each, by pipe.

`concurrent.futures`' process pool costs ~40 ms of imports before the first part can
start (logging, sockets, queues and threads for a pool that lives a second), and when
one worker dies it breaks every part still running. These workers are forked (so
they inherit what they scan with: nothing is pickled but the parts and what they
give back), each with a pipe of its own each way:

- a part is sent only to a worker that is waiting for one, so neither side ever
  waits on the other while it writes;
- a worker whose pipe ends before it answered died (killed, out of memory): its
  part is handed back (`Lost`), the others go on, and another is forked in its place;
- an exception a part raises comes back and is raised here, as a pool's would.

Messages are 8 bytes of length, then a pickle. Workers leave through `os._exit`:
never through the parent's exit handlers or its unflushed output.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
from contextlib import suppress
from select import POLLIN
from select import poll as select_poll

TYPE_CHECKING = False  # not `typing`'s: see launch.py
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator
    from typing import Any

_LENGTH = struct.Struct("<Q")
_ANSWER, _ERROR = 0, 1


class Lost:
    """A part whose worker died before it answered."""

    __slots__ = ("part",)

    def __init__(self, part: Any) -> None:
        self.part = part


class _Worker:
    __slots__ = ("answers", "part", "pid", "tasks")

    def __init__(self, pid: int, tasks: int, answers: int) -> None:
        self.pid, self.tasks, self.answers = pid, tasks, answers
        self.part: Any = None  # the part it runs now (None: waiting for one)


def run(parts: Iterable[Any], count: int, work: Callable[[Any], Any]
        ) -> Generator[Any, None, None]:
    """`work(part)` for each of `parts`, in `count` forked processes, as each finishes
    (or `Lost(part)`); parts are taken from `parts` only as workers are free for them."""
    workers: list[_Worker] = []
    try:
        for _ in range(count):
            worker = _fork(work, workers)
            if worker is not None:
                workers.append(worker)
        if not workers:  # (fork refused: the parts run here)
            for part in parts:
                yield work(part)
            return
        source = iter(parts)
        busy: dict[int, _Worker] = {}  # answers fd -> worker
        for worker in workers:
            if _feed(worker, source):
                busy[worker.answers] = worker
        poll = select_poll()
        for fd in busy:
            poll.register(fd, POLLIN)
        while busy:
            for fd, _ in poll.poll():
                if fd not in busy:
                    continue
                worker = busy.pop(fd)
                message = _receive(fd)
                part, worker.part = worker.part, None
                if message is None:  # it died: its pipe ended without an answer
                    poll.unregister(fd)
                    _end(worker)
                    fresh = _fork(work, workers)  # in its place, for the parts still to come
                    if fresh is not None:
                        workers.append(fresh)
                        if _feed(fresh, source):
                            busy[fresh.answers] = fresh
                            poll.register(fresh.answers, POLLIN)
                    yield Lost(part)
                    continue
                kind, value = message
                if kind == _ERROR:
                    raise value
                if _feed(worker, source):
                    busy[fd] = worker
                else:
                    poll.unregister(fd)
                yield value
        for part in source:  # (workers could no longer be forked)
            yield Lost(part)
    finally:
        for worker in workers:
            _end(worker)


def _fork(work: Callable[[Any], Any], others: list[_Worker]) -> _Worker | None:
    task_read, task_write = os.pipe()
    answer_read, answer_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (task_read, task_write, answer_read, answer_write):
            os.close(fd)
        return None
    if pid == 0:  # the worker
        status = 1
        try:
            for fd in [task_write, answer_read] + [fd for other in others
                                                    for fd in (other.tasks, other.answers)]:
                if fd >= 0:
                    os.close(fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent reports an interrupt
            _serve(task_read, answer_write, work)
            status = 0
        finally:
            os._exit(status)
    os.close(task_read)
    os.close(answer_write)
    return _Worker(pid, task_write, answer_read)


def _serve(tasks: int, answers: int, work: Callable[[Any], Any]) -> None:
    while (message := _receive(tasks)) is not None:
        try:
            reply: tuple[int, Any] = (_ANSWER, work(message))
        except Exception as error:  # (raised again in the parent)
            reply = (_ERROR, error)
        try:
            data = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # (an unpicklable exception)
            data = pickle.dumps((_ERROR, RuntimeError(f"a worker's part failed: {error!r}")))
        _send(answers, data)


def _feed(worker: _Worker, source: Iterator[Any]) -> bool:
    """Give `worker` the next part, if any (True); else let it go (its pipe closed)."""
    for part in source:
        worker.part = part
        with suppress(BrokenPipeError):  # it died waiting: its answer pipe ends too
            _send(worker.tasks, pickle.dumps(part, pickle.HIGHEST_PROTOCOL))
        return True
    os.close(worker.tasks)
    worker.tasks = -1
    return False


def _send(fd: int, data: bytes) -> None:
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int) -> Any:
    """The next message on `fd`, or None if the pipe ends first."""
    head = _read(fd, _LENGTH.size)
    if head is None:
        return None
    body = _read(fd, _LENGTH.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _read(fd: int, size: int) -> bytes | None:
    pieces, left = [], size
    while left:
        piece = os.read(fd, min(left, 1 << 20))
        if not piece:
            return None
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _end(worker: _Worker) -> None:
    """Close the pipes of a worker that is done (or died), and reap it."""
    for name in ("tasks", "answers"):
        fd = getattr(worker, name)
        if fd >= 0:
            os.close(fd)
            setattr(worker, name, -1)
    if worker.pid > 0:
        if worker.part is not None:  # stopped early: nothing waits for its answer
            os.kill(worker.pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(worker.pid, 0)
        worker.pid = -1
