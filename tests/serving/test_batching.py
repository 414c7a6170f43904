"""The dynamic batcher: concurrent jobs merged by key within the token budget, split back in order; a job whose
client left is dropped before it starts; a failing merged call is retried job by job; a full queue refuses."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stpipe.serving.batching import Batcher, Overloaded


class Recorder:
    """A process function that records each call; the first call blocks until ``release`` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, list[object]]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, key, jobs):
        self.calls.append((key, [p for p, _ in jobs]))
        if len(self.calls) == 1:
            self.started.set()
            self.release.wait(5)
        if any(p == "bad" for p, _ in jobs):
            raise ValueError("bad payload")
        return [f"{key}:{p}" for p, _ in jobs]


async def _after_first_blocks(rec: Recorder, batcher: Batcher, first: str = "first"):
    head = asyncio.ensure_future(batcher.submit("k", first, 1))
    await asyncio.get_running_loop().run_in_executor(None, rec.started.wait, 5)
    return head


def test_waiting_jobs_are_merged_by_key_within_the_budget_and_split_back():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_tokens=10, max_wait_ms=0)

    async def scenario():
        head = await _after_first_blocks(rec, batcher)
        tasks = [asyncio.ensure_future(batcher.submit(k, p, t)) for k, p, t in
                 [("k", "a", 4), ("other", "x", 1), ("k", "b", 4), ("k", "c", 4), ("k", "d", 1)]]
        await asyncio.sleep(0.05)
        rec.release.set()
        return await head, await asyncio.gather(*tasks)

    head, results = asyncio.run(scenario())
    batcher.close(5)
    assert head == "k:first"
    assert results == ["k:a", "other:x", "k:b", "k:c", "k:d"]
    # after the blocking first call: the oldest key first, its jobs oldest first while 10 tokens fit (a, b: 8 —
    # c would make 12), then the other key, then what is left of k
    assert rec.calls[1:] == [("k", ["a", "b"]), ("other", ["x"]), ("k", ["c", "d"])]


def test_a_job_larger_than_the_budget_runs_alone():
    rec = Recorder()
    rec.release.set()
    batcher = Batcher(rec, max_batch_tokens=2, max_wait_ms=0)
    assert asyncio.run(batcher.submit("k", "big", 50)) == "k:big"
    batcher.close(5)


def test_a_cancelled_job_is_dropped_before_it_starts():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_tokens=100, max_wait_ms=0)

    async def scenario():
        head = await _after_first_blocks(rec, batcher)
        gone = asyncio.ensure_future(batcher.submit("k", "gone", 1))
        kept = asyncio.ensure_future(batcher.submit("k", "kept", 1))
        await asyncio.sleep(0.02)
        gone.cancel()  # what the app does when the client disconnects
        await asyncio.sleep(0.02)
        rec.release.set()
        return await head, await kept

    assert asyncio.run(scenario()) == ("k:first", "k:kept")
    batcher.close(5)
    assert [p for _, ps in rec.calls for p in ps] == ["first", "kept"]


def test_a_failing_merged_call_fails_only_the_culprit():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_tokens=100, max_wait_ms=0)

    async def scenario():
        head = await _after_first_blocks(rec, batcher)
        tasks = [asyncio.ensure_future(batcher.submit("k", p, 1)) for p in ("a", "bad", "b")]
        await asyncio.sleep(0.02)
        rec.release.set()
        await head
        return await asyncio.gather(*tasks, return_exceptions=True)

    a, bad, b = asyncio.run(scenario())
    batcher.close(5)
    assert (a, b) == ("k:a", "k:b") and isinstance(bad, ValueError)


def test_a_full_queue_refuses_at_once():
    rec = Recorder()
    batcher = Batcher(rec, max_batch_tokens=100, max_wait_ms=0, max_queued=2)

    async def scenario():
        head = await _after_first_blocks(rec, batcher)
        queued = asyncio.ensure_future(batcher.submit("k", "a", 1, size=2))
        await asyncio.sleep(0.02)
        with pytest.raises(Overloaded, match="max_queued_inputs=2"):
            await batcher.submit("k", "b", 1)
        rec.release.set()
        return await head, await queued

    assert asyncio.run(scenario()) == ("k:first", "k:a")
    batcher.close(5)


def test_concurrent_arrivals_wait_briefly_to_fill_a_batch():
    calls = []

    def process(key, jobs):
        calls.append(len(jobs))
        return [p for p, _ in jobs]

    batcher = Batcher(process, max_batch_tokens=1000, max_wait_ms=200)
    batcher._concurrent = True  # as after a merged call: requests are arriving concurrently

    async def scenario():
        first = asyncio.ensure_future(batcher.submit("k", 0, 1))
        await asyncio.sleep(0.05)  # well inside the 200 ms wait
        rest = [asyncio.ensure_future(batcher.submit("k", i, 1)) for i in range(1, 4)]
        return await asyncio.gather(first, *rest)

    assert asyncio.run(scenario()) == [0, 1, 2, 3]
    batcher.close(5)
    assert calls == [4]
