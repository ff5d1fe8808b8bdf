"""keyscan.cluster against a real Dask scheduler and workers on 127.0.0.1."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clustertasks import pool_inside, slow_square
from daskcluster import DaskCluster
from keyscan.cluster import Cluster, Lost, check_address
from keyscan.errors import KeyscanError


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    running = DaskCluster(tmp_path / "dask", workers=2)
    yield running
    running.close()


def markers(folder: Path) -> dict[int, set[str]]:
    seen: dict[int, set[str]] = {}
    for marker in folder.iterdir():
        x, _, pid = marker.name.partition("-")
        seen.setdefault(int(x), set()).add(pid)
    return seen


def kill_a_busy_worker(cluster: DaskCluster, folder: Path) -> str:
    """Wait until some worker is running a task that has started, then SIGKILL it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = [name for name, keys in cluster.processing().items() if keys]
        if busy and any(folder.iterdir()):
            cluster.kill_worker(busy[0])
            return busy[0]
        time.sleep(0.05)
    raise AssertionError("no worker ever ran a task")


def test_every_task_once_when_a_worker_dies_mid_task(cluster: DaskCluster,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    tasks = [(x, str(folder), 1.5) for x in range(6)]
    killer = threading.Thread(target=lambda: killed.append(kill_a_busy_worker(cluster, folder)))
    killed: list[str] = []
    with Cluster(cluster.address) as dask:
        assert dask.threads() == 2
        killer.start()
        outcomes = list(dask.run(slow_square, tasks))
    killer.join()
    assert killed
    assert sorted(index for index, _ in outcomes) == list(range(6))  # each exactly once
    results = [(index, out) for index, out in outcomes if not isinstance(out, Lost)]
    assert len(results) == 6
    assert {index: outcome[0] for index, outcome in results} == {x: x * x for x in range(6)}
    retried = [x for x, pids in markers(folder).items() if len(pids) == 2]
    assert retried, "the killed worker's task ran again elsewhere"
    survivors = {outcome[1] for _, outcome in results}
    assert len(survivors) <= 2


def test_a_task_may_start_processes_and_knows_its_cores(cluster: DaskCluster) -> None:
    with Cluster(cluster.address) as dask:
        (index, outcome), = list(dask.run(pool_inside, [3]))
    assert not isinstance(outcome, Lost)
    cores, values = outcome
    assert (index, values) == (0, [3, 4])
    cpus = len(os.sched_getaffinity(0))
    assert cores == cpus  # one thread per worker: the machine's cores for one repository


def test_scheduler_gone_is_one_clear_error(cluster: DaskCluster, tmp_path: Path) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    tasks = [(x, str(folder), 1.0) for x in range(8)]
    with Cluster(cluster.address) as dask, pytest.raises(KeyscanError) as raised:
        for done, (_index, _outcome) in enumerate(dask.run(slow_square, tasks)):
            if done == 1:
                cluster.kill_scheduler()
    assert str(raised.value).startswith(f"lost the Dask scheduler at {cluster.address}")
    assert "run the same command again to resume" in str(raised.value)


def test_no_scheduler_or_bad_address_fails_fast() -> None:
    with pytest.raises(KeyscanError, match="takes a Dask scheduler address"):
        check_address("10.0.0.5:8786")
    started = time.monotonic()
    with pytest.raises(KeyscanError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        Cluster("tcp://127.0.0.1:9", connect_timeout=2)
    assert time.monotonic() - started < 30
