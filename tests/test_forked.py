"""The worker processes of a scan (`sources/forked.py`), as real forked processes: every
part's answer comes back once, a dead worker costs only its own part, a part's error is
raised in the parent, and no process is left behind."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from keyscan.sources import forked


def children_left() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG) != (0, 0)
    except ChildProcessError:
        return False  # none at all


def square(part: int) -> tuple[int, int]:
    return part, part * part


def test_every_part_is_answered_once_by_the_workers_not_by_this_process() -> None:
    parent = os.getpid()
    answers = list(forked.run(range(50), 2, lambda part: (*square(part), os.getpid())))
    assert sorted((part, value) for part, value, _ in answers) == [square(n) for n in range(50)]
    assert parent not in {pid for _, _, pid in answers}
    assert len({pid for _, _, pid in answers}) == 2
    assert not children_left()


def test_a_dead_worker_costs_its_own_part_and_a_fresh_worker_takes_the_rest() -> None:
    def dies_on_7(part: int) -> tuple[int, int]:
        if part == 7:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return square(part)

    answers = list(forked.run(range(20), 2, dies_on_7))
    lost = [item.part for item in answers if isinstance(item, forked.Lost)]
    assert lost == [7]
    assert sorted(item for item in answers if not isinstance(item, forked.Lost)) == [
        square(n) for n in range(20) if n != 7]
    assert not children_left()


def test_every_worker_dying_loses_each_part_once_and_never_drops_one() -> None:
    def always_dies(part: int) -> int:
        os.kill(os.getpid(), signal.SIGKILL)
        return part

    answers = list(forked.run(range(6), 2, always_dies))
    assert sorted(item.part for item in answers if isinstance(item, forked.Lost)) == list(range(6))
    assert not children_left()


def test_an_error_in_a_part_is_raised_here_and_the_workers_are_stopped() -> None:
    def fails_on_3(part: int) -> int:
        if part == 3:
            raise ValueError("part 3 is bad")
        return part

    with pytest.raises(ValueError, match="part 3 is bad"):
        list(forked.run(range(10), 2, fails_on_3))
    assert not children_left()


def test_parts_are_taken_only_as_workers_are_free_and_an_early_stop_ends_them() -> None:
    taken: list[int] = []

    def parts() -> Iterator[int]:
        for n in range(1000):
            taken.append(n)
            yield n

    answers = forked.run(parts(), 2, square)
    first = next(answers)
    assert first in (square(0), square(1))
    assert len(taken) <= 4  # two handed out, one more for the worker that answered
    answers.close()  # the consumer stops: the workers are stopped and reaped
    assert not children_left()
