"""A real Dask cluster on 127.0.0.1 for tests: `dask scheduler` and `dask worker` processes.

Each runs in its own session (process group), so a test can kill a worker (its nanny
and the worker process together) or the scheduler as a machine failure would.
Nothing listens off loopback: every address is 127.0.0.1, dashboards are off.
Skipped only outside CI when Dask is not installed; in CI (CI=true) a missing Dask
fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Dask is not installed: pip install -e '.[test]'")


class DaskCluster:
    """`DaskCluster(folder, workers=2)`: `.address`, `.workers` (Popen), `kill_worker(i)`."""

    def __init__(self, folder: Path, workers: int = 2, nthreads: int = 1,
                 env: Mapping[str, str] | None = None, pin: str | None = None) -> None:
        require_dask()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]),
            "DASK_DISTRIBUTED__WORKER__DAEMON": "True",  # as clusters run them: the default
            **(env or {}),
        }
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.start_scheduler(pin=pin)
        for _ in range(workers):
            self.add_worker(nthreads)
        if workers:
            self.wait_for_workers(workers)

    def _start(self, name: str, *args: str, pin: str | None = None) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 (the process keeps it)
        prefix = ["taskset", "-c", pin] if pin is not None else []
        return subprocess.Popen(
            [*prefix, sys.executable, "-m", "dask", *args], env=self.env, stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.folder,
        )

    def start_scheduler(self, port: int = 0, pin: str | None = None) -> None:
        """A scheduler (on `port`, e.g. the last one's again after a crash; `pin`: the cores
        it may use, as taskset takes them)."""
        info = self.folder / "scheduler.json"
        info.unlink(missing_ok=True)
        self.scheduler = self._start("scheduler", "scheduler", "--host", "127.0.0.1",
                                     "--port", str(port), "--no-dashboard",
                                     "--scheduler-file", str(info), pin=pin)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if info.exists():
                try:
                    self.address: str = json.loads(info.read_text())["address"]
                    return
                except (ValueError, KeyError):
                    pass  # written as we read it
            if self.scheduler.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"dask scheduler did not start: see {self.folder}/scheduler.log")

    def add_worker(self, nthreads: int = 1, pin: str | None = None) -> subprocess.Popen[bytes]:
        """One more worker (`pin`: the cores it may use, as taskset takes them)."""
        index = len(self.workers)
        worker = self._start(
            f"worker{index}", "worker", self.address, "--host", "127.0.0.1",
            "--nthreads", str(nthreads), "--no-dashboard", "--name", f"w{index}",
            "--local-directory", str(self.folder / f"w{index}"),
            "--death-timeout", "60", pin=pin)
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count: int) -> None:
        with _client(self.address, 60) as client:
            client.wait_for_workers(count, timeout=120)

    def processing(self) -> dict[str, list[str]]:
        """worker name -> keys of the tasks it is running now."""
        with _client(self.address, 30) as client:
            info = client.scheduler_info()["workers"]
            names = {address: w["name"] for address, w in info.items()}
            running = client.processing()
        return {str(names.get(address, address)): list(map(str, keys))
                for address, keys in running.items()}

    def kill_worker(self, name: str) -> None:
        """SIGKILL worker `name` (as `wN`) and its nanny: a machine gone, no goodbye."""
        worker = self.workers[int(name.lstrip("w"))]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        os.killpg(self.scheduler.pid, signal.SIGKILL)
        self.scheduler.wait()

    def close(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _client(address: str, timeout: float) -> Any:
    import distributed

    client_type: Any = distributed.Client  # untyped
    return client_type(address, timeout=timeout, set_as_default=False)
