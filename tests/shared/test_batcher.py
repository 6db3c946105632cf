"""The dynamic batcher under concurrency, cancellation, back-pressure and model errors.

The "model" here is a plain function (not a stand-in for a real model): these
tests are about routing results to callers, which the function makes checkable.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.batcher import BatchingConfig, DynamicBatcher
from shared.errors import ResourceExhausted, Unavailable


class Recorder:
    """Squares numbers and records the batches it saw; can be told to block or fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on: set[int] = set()

    def __call__(self, batch: list[int]) -> list[int]:
        self.gate.wait(10)
        self.batches.append(list(batch))
        if self.fail_on & set(batch):
            raise RuntimeError(f"model failed on {sorted(self.fail_on & set(batch))}")
        return [x * x for x in batch]


async def test_thousand_concurrent_callers_each_get_their_own_results() -> None:
    model = Recorder()
    batcher = DynamicBatcher(
        "square", model, BatchingConfig(max_batch_size=32, max_delay_s=0.002, max_queue_size=10_000)
    )
    batcher.start()
    # Distinct inputs, and requests of different sizes (1 to 3 items).
    requests = [[3 * i + j for j in range(1 + i % 3)] for i in range(1000)]
    results = await asyncio.gather(*(batcher.submit(r) for r in requests))
    for request, result in zip(requests, results, strict=True):
        assert result == [x * x for x in request]
    assert max(len(b) for b in model.batches) <= 32
    assert len(model.batches) < 1000  # requests were really merged
    await batcher.close()


async def test_request_larger_than_max_batch_runs_alone() -> None:
    model = Recorder()
    batcher = DynamicBatcher("square", model, BatchingConfig(max_batch_size=4, max_delay_s=0.001))
    batcher.start()
    assert await batcher.submit(list(range(10))) == [x * x for x in range(10)]
    assert model.batches == [list(range(10))]
    await batcher.close()


async def test_cancelled_caller_does_not_break_its_batch() -> None:
    model = Recorder()
    batcher = DynamicBatcher("square", model, BatchingConfig(max_batch_size=8, max_delay_s=0.05))
    batcher.start()
    model.gate.clear()  # hold the model so that callers queue up
    first = asyncio.create_task(batcher.submit([1]))
    await asyncio.sleep(0.1)  # first batch [1] is running and blocked
    staying = [asyncio.create_task(batcher.submit([i])) for i in (2, 3, 4)]
    leaving = asyncio.create_task(batcher.submit([5]))
    await asyncio.sleep(0.01)
    leaving.cancel()
    model.gate.set()
    assert await first == [1]
    assert [await t for t in staying] == [[4], [9], [16]]
    with pytest.raises(asyncio.CancelledError):
        await leaving
    # The cancelled caller was dropped before its batch ran.
    assert all(5 not in b for b in model.batches)
    assert batcher.queued_items == 0
    await batcher.close()


async def test_caller_cancelled_while_its_batch_runs_leaves_the_others_their_results() -> None:
    model = Recorder()
    batcher = DynamicBatcher("square", model, BatchingConfig(max_batch_size=8, max_delay_s=0.05))
    batcher.start()
    model.gate.clear()
    tasks = [asyncio.create_task(batcher.submit([i])) for i in range(1, 5)]
    await asyncio.sleep(0.1)  # all four are in one running batch
    tasks[1].cancel()
    model.gate.set()
    assert await tasks[0] == [1]
    assert await tasks[2] == [9]
    assert await tasks[3] == [16]
    await batcher.close()


async def test_full_queue_answers_resource_exhausted_and_recovers() -> None:
    model = Recorder()
    batcher = DynamicBatcher("square", model, BatchingConfig(max_batch_size=2, max_delay_s=0.001, max_queue_size=4))
    batcher.start()
    model.gate.clear()
    running = asyncio.create_task(batcher.submit([0, 1]))
    await asyncio.sleep(0.05)  # the first batch holds the model
    queued = [asyncio.create_task(batcher.submit([i])) for i in range(2, 6)]  # 4 items: queue full
    await asyncio.sleep(0.01)
    with pytest.raises(ResourceExhausted) as refused:
        await batcher.submit([99])
    assert refused.value.retry_after_s is not None
    model.gate.set()
    assert await running == [0, 1]
    assert [await t for t in queued] == [[4], [9], [16], [25]]
    assert await batcher.submit([7]) == [49]  # room again
    await batcher.close()


async def test_model_error_reaches_every_caller_of_the_batch_and_next_batch_works() -> None:
    model = Recorder()
    model.fail_on = {13}
    batcher = DynamicBatcher("square", model, BatchingConfig(max_batch_size=8, max_delay_s=0.05))
    batcher.start()
    model.gate.clear()
    blocker = asyncio.create_task(batcher.submit([0]))
    await asyncio.sleep(0.05)
    doomed = [asyncio.create_task(batcher.submit([i])) for i in (11, 12, 13)]
    await asyncio.sleep(0.01)
    model.gate.set()
    assert await blocker == [0]
    for task in doomed:
        with pytest.raises(RuntimeError, match="model failed"):
            await task
    assert await batcher.submit([3]) == [9]
    await batcher.close()


async def test_close_finishes_queued_work_then_refuses() -> None:
    batcher = DynamicBatcher("square", Recorder(), BatchingConfig(max_batch_size=2, max_delay_s=0.001))
    batcher.start()
    pending = [asyncio.create_task(batcher.submit([i])) for i in range(6)]
    await asyncio.sleep(0)
    await batcher.close()
    assert [t.result() for t in pending] == [[i * i] for i in range(6)]
    with pytest.raises(Unavailable):  # shutting down: retryable, as everywhere
        await batcher.submit([1])


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError):
        DynamicBatcher("x", Recorder(), BatchingConfig(max_batch_size=0))


async def test_batch_metrics_count_every_batch_and_the_time_in_the_model() -> None:
    from prometheus_client import REGISTRY

    def sample(metric: str) -> float:
        return REGISTRY.get_sample_value(metric, {"model": "square-metrics"}) or 0.0

    model = Recorder()
    batcher = DynamicBatcher("square-metrics", model, BatchingConfig(max_batch_size=4, max_delay_s=0.001))
    batcher.start()
    for request in ([1], [2, 3], [4, 5, 6]):
        await batcher.submit(request)
    await batcher.close()
    assert sample("lumen_batch_size_count") == len(model.batches) == 3
    assert sample("lumen_batch_size_sum") == 6
    assert sample("lumen_batch_duration_seconds_count") == 3
    assert sample("lumen_batch_duration_seconds_sum") > 0
