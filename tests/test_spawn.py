"""`sources/spawn.py` starts git without `subprocess` (the hook's start-up): it must give
what its plain twin, `subprocess.run(..., capture_output=True)`, gives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keyscan.sources import spawn

PY = sys.executable
CASES = [
    # a lot in and a lot out at once: neither side may wait on the other
    ([PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"],
     os.urandom(3 << 20)),
    ([PY, "-c", "import sys; sys.stderr.write('e' * 200000); sys.stdout.write('o'); "
      "sys.exit(3)"], None),
    ([PY, "-c", "import os; os.kill(os.getpid(), 9)"], b""),  # killed: -9, as Popen says
    ([PY, "-c", "import sys; sys.stdout.write(repr(sys.stdin.read()))"], b""),
    ([PY, "-c", "pass"], b"never read " * 100000),  # the child leaves its input unread
    # SIGPIPE at its default in the child, as subprocess restores it: `yes` dies of it
    # quietly instead of printing "Broken pipe"
    (["sh", "-c", "yes | head -n 2"], None),
]


@pytest.mark.parametrize(("argv", "data"), CASES)
def test_run_gives_what_subprocess_gives(argv: list[str], data: bytes | None) -> None:
    twin = subprocess.run(argv, input=data, capture_output=True, env=os.environ)
    done = spawn.run(argv, os.environ, input=data)
    assert (done.returncode, done.stdout, done.stderr) == (
        twin.returncode, twin.stdout, twin.stderr)


def test_a_missing_program_raises_as_subprocess_does() -> None:
    with pytest.raises(FileNotFoundError):
        spawn.run(["keyscan-no-such-program"], os.environ)
    with pytest.raises(FileNotFoundError):
        spawn.start(["keyscan-no-such-program"], os.environ)


def test_started_process_streams_and_exits() -> None:
    proc = spawn.start([PY, "-c", "import sys\nfor line in sys.stdin: print(line.upper(), "
                        "end='')\nsys.exit(5)"], os.environ)
    proc.stdin.write(b"a\nb\n")
    proc.stdin.close()
    assert proc.stdout.read() == b"A\nB\n"
    assert proc.wait() == 5 and proc.poll() == 5


def test_kill_stops_a_started_process() -> None:
    proc = spawn.start([PY, "-c", "import time; time.sleep(60)"], os.environ)
    assert proc.poll() is None
    proc.kill()
    assert proc.wait() == -9


CLOSED_STDIO = """
import os, sys
os.close(0)  # a hook started with its stdin closed: the first pipe would be fd 0
from keyscan.sources import spawn
done = spawn.run([sys.executable, "-c", "import sys; print(sys.stdin.read())"], os.environ,
                 input=b"ids")
print(done.returncode, done.stdout)
"""


def test_closed_stdio_does_not_reach_the_child() -> None:
    done = subprocess.run([PY, "-c", CLOSED_STDIO], capture_output=True, text=True, check=True)
    assert done.stdout == "0 b'ids\\n'\n"
