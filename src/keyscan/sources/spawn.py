"""Child processes without `subprocess`: how `git.py` starts its short gits and blob readers.

Importing `subprocess` costs every hook run ~5 ms (it imports locale, signal, threading
and selectors), a tenth of a `keyscan staged` that starts two or three short gits. So
`run` does what `subprocess.run(argv, input=…, capture_output=True, env=env)` does for
them, and `start` what `Popen(argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env)`
does for `cat-file --batch`, with `os.posix_spawnp`, pipes and `select.poll` (POSIX
only, as keyscan's pack reader is). As under subprocess, the child starts with SIGPIPE
and SIGXFSZ at their defaults (Python ignores them) and gets none of keyscan's own
descriptors but the pipes (Python makes none inheritable, PEP 446); unlike subprocess,
a descriptor that keyscan itself inherited as inheritable stays open in git, which git
never reads. A failure to start raises what `subprocess` raises (FileNotFoundError
without git).
"""

from __future__ import annotations

import os
import select

try:  # `signal`'s C half, loaded with the interpreter: `signal` builds enums (~0.6 ms)
    import _signal as signal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - an interpreter without it
    import signal

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import BinaryIO

PIPE_BUF = getattr(select, "PIPE_BUF", 512)  # a write this small to a pipe with room never waits
_READ = 1 << 15
# What subprocess's restore_signals=True puts back for the child.
_DEFAULT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)


class Process:
    """A started child with pipes to its stdin, stdout and stderr (see `start`)."""

    def __init__(self, pid: int, stdin: BinaryIO, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout  # buffered, as Popen's
        self.stderr = stderr
        self.returncode: int | None = None  # as Popen's: -N when killed by signal N

    def poll(self) -> int | None:
        """The exit code if the child has exited, else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)  # a zombie not yet waited for takes it too


def start(argv: list[str], env: Mapping[str, str]) -> Process:
    """Start `argv` (searched on PATH) with pipes for its stdin, stdout and stderr."""
    pid, (stdin, stdout, stderr) = _spawn(argv, env, with_stdin=True)
    assert stdin is not None
    return Process(pid, open(stdin, "wb"), open(stdout, "rb"), open(stderr, "rb"))


class Completed:
    """What `run` gives, as subprocess.run's CompletedProcess."""

    __slots__ = ("returncode", "stderr", "stdout")

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(argv: list[str], env: Mapping[str, str], input: bytes | None = None) -> Completed:
    """Run `argv` to its end, its output captured. Its stdin is `input`, or keyscan's own
    stdin when `input` is None (as with subprocess.run)."""
    pid, (stdin, stdout, stderr) = _spawn(argv, env, with_stdin=input is not None)
    try:
        out, err = _communicate(stdin, stdout, stderr, input or b"")
    except BaseException:  # interrupted: the child does not outlive the call
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    return Completed(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out, err)


def _spawn(argv: list[str], env: Mapping[str, str], with_stdin: bool
           ) -> tuple[int, tuple[int | None, int, int]]:
    """(pid, our ends of its stdin (None: not a pipe), stdout and stderr pipes)."""
    ours: list[int] = []
    theirs: list[int] = []
    actions = []
    try:
        for child_fd in (0, 1, 2) if with_stdin else (1, 2):
            read, write = _pipe()
            mine, its = (write, read) if child_fd == 0 else (read, write)
            ours.append(mine)
            theirs.append(its)
            actions.append((os.POSIX_SPAWN_DUP2, its, child_fd))
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions,
                              setsigdef=_DEFAULT_SIGNALS)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    stdin = ours.pop(0) if with_stdin else None
    return pid, (stdin, ours[0], ours[1])


def _pipe() -> tuple[int, int]:
    """os.pipe(), both ends above 0-2. Were one of those closed in keyscan, a pipe could
    get its number, and a dup2 onto itself keeps close-on-exec on some systems: the
    child would start without it."""
    ends = []
    for fd in os.pipe():
        low = []
        while fd <= 2:
            low.append(fd)
            fd = os.dup(fd)
        for unused in low:
            os.close(unused)
        ends.append(fd)
    return ends[0], ends[1]


def _communicate(stdin: int | None, stdout: int, stderr: int,
                 data: bytes) -> tuple[bytes, bytes]:
    """Write `data` to stdin (then close it) while reading stdout and stderr to their ends,
    as Popen.communicate does, so neither side waits on the other; closes all three."""
    chunks: dict[int, list[bytes]] = {stdout: [], stderr: []}
    open_fds = set(chunks)
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    view = memoryview(data)
    if stdin is not None:
        open_fds.add(stdin)
        poller.register(stdin, select.POLLOUT)
    try:
        while open_fds:
            for fd, _ in poller.poll():
                if fd == stdin:
                    try:
                        view = view[os.write(fd, view[:PIPE_BUF]):]
                    except BrokenPipeError:
                        view = view[:0]  # the child stopped reading: its exit says why
                    done = not view
                else:
                    piece = os.read(fd, _READ)
                    chunks[fd].append(piece)
                    done = not piece
                if done:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    os.close(fd)
    finally:
        for fd in open_fds:
            os.close(fd)
    return b"".join(chunks[stdout]), b"".join(chunks[stderr])
