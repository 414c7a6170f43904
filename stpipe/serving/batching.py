"""Dynamic batching: concurrent requests queued, merged into one model call, split back — off the event loop.

A :class:`Batcher` owns one worker thread (one model instance per process; torch runs there, never on the event
loop). Handlers ``await batcher.submit(key, payload, tokens)``; the worker takes the oldest waiting job and every
other waiting job with the same ``key`` (the arguments that shape the call: task, prompt), oldest first, while
their tokens fit ``max_batch_tokens`` (a job is never split: a larger one runs alone), and calls
``process(key, [(payload, tokens), …])`` once, which returns one result per job (the model sorts the merged
inputs by length, as ``encode`` always does). A lone request never waits; while requests arrive concurrently
(the last call merged several) the worker waits up to ``max_wait_ms`` for the batch to fill.

A job whose client went away (its future cancelled) is dropped if it has not started; a merged call that fails
is retried job by job, so one bad request cannot fail the others. ``max_queued`` bounds the waiting inputs:
beyond it :meth:`Batcher.submit` raises :class:`Overloaded` at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

Process = Callable[[Any, Sequence[tuple[Any, int]]], list[Any]]


class Overloaded(Exception):
    """Too many inputs are waiting; the request was not queued."""


@dataclass(eq=False)
class Job:
    key: Hashable
    payload: Any
    tokens: int
    size: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.perf_counter)

    @property
    def cancelled(self) -> bool:
        return self.future.cancelled()


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # cancelled: the client left
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Batcher:
    """See the module docstring. ``observe(name, value)`` receives ``batch_inputs``, ``batch_tokens``,
    ``queue_wait_seconds`` and ``inference_seconds`` (the metrics)."""

    def __init__(self, process: Process, *, max_batch_tokens: int = 8192, max_wait_ms: float = 2.0,
                 max_queued: int = 65536, observe: Callable[[str, float], None] | None = None,
                 name: str = "model") -> None:
        self.process = process
        self.max_batch_tokens = max(1, int(max_batch_tokens))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.max_queued = int(max_queued)
        self.observe = observe or (lambda name, value: None)
        self._queue: deque[Job] = deque()
        self._queued_inputs = 0
        self._cv = threading.Condition()
        self._closed = False
        self._busy = False
        self._concurrent = False  # the last call merged several jobs: worth waiting for more
        self._thread = threading.Thread(target=self._work, name=f"stpipe-batcher-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------ event loop side
    async def submit(self, key: Hashable, payload: Any, tokens: int, size: int = 1) -> Any:
        """Queue one job (``size`` inputs, ``tokens`` tokens) and wait for its result; cancelling the awaiting
        task (a client that disconnected) drops the job if it has not started."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = Job(key, payload, max(1, int(tokens)), size, future, loop)
        with self._cv:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if self._queued_inputs + size > self.max_queued and self._queued_inputs > 0:
                raise Overloaded(f"{self._queued_inputs} inputs are waiting (serve.limits.max_queued_inputs="
                                 f"{self.max_queued})")
            self._queue.append(job)
            self._queued_inputs += size
            self._cv.notify()
        return await future

    @property
    def queued_inputs(self) -> int:
        return self._queued_inputs

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing running."""
        with self._cv:
            return not self._queue and not self._busy

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued jobs, then stop the worker (waits up to ``timeout`` seconds)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------------------------ worker side
    def _drop_cancelled(self) -> None:
        kept = [j for j in self._queue if not j.cancelled]
        self._queued_inputs -= sum(j.size for j in self._queue if j.cancelled)
        self._queue = deque(kept)

    def _take(self) -> list[Job]:
        """The jobs of the next call (called with the lock held, the queue not empty)."""
        first = self._queue[0]
        taken, tokens = [], 0
        for job in self._queue:
            if job.key != first.key:
                continue
            if taken and tokens + job.tokens > self.max_batch_tokens:
                break
            taken.append(job)
            tokens += job.tokens
        for job in taken:
            self._queue.remove(job)
            self._queued_inputs -= job.size
        return taken

    def _fill_wait(self) -> None:
        """While requests arrive concurrently, wait up to max_wait for the first job's batch to fill."""
        if not self._concurrent or self.max_wait <= 0:
            return
        deadline = self._queue[0].queued_at + self.max_wait
        while not self._closed:
            key = self._queue[0].key
            if sum(j.tokens for j in self._queue if j.key == key) >= self.max_batch_tokens:
                return
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._cv.wait(left)
            self._drop_cancelled()
            if not self._queue:
                return

    def _work(self) -> None:
        while True:
            with self._cv:
                while True:
                    self._drop_cancelled()
                    if self._queue or self._closed:
                        break
                    self._cv.wait()
                if not self._queue:
                    return  # closed and drained
                self._fill_wait()
                self._drop_cancelled()
                if not self._queue:
                    continue
                jobs = self._take()
                self._busy = True
            try:
                self._run(jobs)
            finally:
                with self._cv:
                    self._busy = False
                    self._concurrent = len(jobs) > 1 or bool(self._queue)

    def _run(self, jobs: list[Job]) -> None:
        start = time.perf_counter()
        for job in jobs:
            self.observe("queue_wait_seconds", start - job.queued_at)
        self.observe("batch_inputs", sum(j.size for j in jobs))
        self.observe("batch_tokens", sum(j.tokens for j in jobs))
        try:
            results = self.process(jobs[0].key, [(j.payload, j.tokens) for j in jobs])
            if len(results) != len(jobs):  # pragma: no cover - a process function's bug
                raise RuntimeError(f"process returned {len(results)} results for {len(jobs)} jobs")
        except Exception as exc:  # noqa: BLE001 - answered to the requests, never lost
            if len(jobs) > 1:  # find the culprit: each job alone
                for job in jobs:
                    self._run([job])
                return
            results, error = [None], exc
        else:
            error = None
        self.observe("inference_seconds", time.perf_counter() - start)
        for job, result in zip(jobs, results, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)


__all__ = ["Batcher", "Job", "Overloaded"]
