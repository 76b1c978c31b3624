"""The one sweep runner of eval and baselines: every task finishes once, in this process or
in workers, and a failure cancels what is queued and propagates."""

from __future__ import annotations

import pytest

from licodec.eval.sweep import run_sweep


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


@pytest.mark.parametrize("workers", [1, 2])
def test_every_task_finishes_once(workers: int) -> None:
    got: dict[int, int] = {}

    def finish(task: int, result: int) -> None:
        assert task not in got
        got[task] = result

    run_sweep(
        list(range(7)),
        finish,
        serial=_square,
        remote=_square,
        remote_args=lambda t: (t,),
        workers=workers,
    )
    assert got == {t: t * t for t in range(7)}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_propagates(workers: int) -> None:
    finished: list[int] = []
    with pytest.raises(ValueError, match="three"):
        run_sweep(
            list(range(8)),
            lambda t, r: finished.append(t),
            serial=_fail_on_three,
            remote=_fail_on_three,
            remote_args=lambda t: (t,),
            workers=workers,
        )
    assert 3 not in finished and len(finished) < 8


def test_no_tasks_start_no_workers() -> None:
    run_sweep(
        [],
        lambda t, r: pytest.fail("no task"),
        serial=_square,
        remote=_square,
        remote_args=lambda t: (t,),
        workers=4,
    )
