"""The one runner of resumable sweeps (``licodec eval`` and ``licodec baselines``).

A sweep is a list of independent tasks (an image at some operating points, an
image under one classical codec). The caller decides which tasks are left (what
its results file lacks) and what finishing one means (store the record, rewrite
the file atomically, advance its progress bar), so a stopped sweep resumes where
it was; this module only runs them: here one after another, or in spawned worker
processes with a bounded queue, cancelling what is queued when anything fails
or the user presses Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

__all__ = ["run_sweep"]

T = TypeVar("T")


def run_sweep(
    tasks: Sequence[T],
    finish: Callable[[T, Any], None],
    *,
    serial: Callable[[T], Any],
    remote: Callable[..., Any],
    remote_args: Callable[[T], tuple[Any, ...]],
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> None:
    """Run every task and hand its result to ``finish(task, result)``, in this process
    (``serial(task)``) when ``workers`` is 1 or there is one task, else in ``workers``
    spawned processes (``remote(*remote_args(task))``, a module-level function; each
    process runs ``initializer(*initargs)`` first). Results arrive as they complete."""
    if not tasks:
        return
    if workers <= 1 or len(tasks) == 1:
        for task in tasks:
            finish(task, serial(task))
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # never fork a parent that may hold torch threads
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=initializer, initargs=initargs
    ) as pool:
        pending: dict[Future[Any], T] = {}
        queue = list(tasks)
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    task = queue.pop(0)
                    pending[pool.submit(remote, *remote_args(task))] = task
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    finish(pending.pop(fut), fut.result())
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
