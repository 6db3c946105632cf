"""Dynamic batcher: merges concurrent requests for one model into batches.

Each call to `submit` brings a list of items (texts, images) and gets back the
results for exactly those items, in order. A worker task takes queued requests
in arrival order into a batch the moment a model instance is free: whatever
queued while the previous batch ran, up to ``max_batch_size`` items, with no
fixed wait (an idle model that waits for company only adds latency at low load,
and at high load the queue fills while the model runs). ``max_delay_s`` is
waited for more requests only while another instance is still busy
(``instances`` > 1). The model runs on an executor thread so the event loop
keeps serving. A request is never split across batches; one larger than
``max_batch_size`` runs as its own batch.

- Back-pressure: at most ``max_queue_size`` items wait; past that, `submit`
  raises ResourceExhausted at once.
- Cancellation: a caller that goes away (deadline, cancel) is dropped from the
  queue; if its batch already runs, its results are discarded.
- Errors: an exception from the model reaches every caller of that batch; the
  worker goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared import metrics
from shared.errors import ResourceExhausted, Unavailable

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_size: int = 32
    max_delay_s: float = 0.002
    max_queue_size: int = 1024
    # Batches run at once (Triton's instance count); 1 suits a CPU or one GPU.
    instances: int = 1


@dataclass
class _Request(Generic[In, Out]):
    items: Sequence[In]
    future: asyncio.Future[list[Out]]
    enqueued_at: float = field(default_factory=time.perf_counter)


class DynamicBatcher(Generic[In, Out]):
    def __init__(
        self,
        name: str,
        predict: Callable[[list[In]], Sequence[Out]],
        config: BatchingConfig,
        executor: Executor | None = None,
    ) -> None:
        if config.max_batch_size < 1 or config.max_queue_size < 1 or config.instances < 1:
            raise ValueError(f"invalid batching config for {name}: {config}")
        self.name = name
        self.config = config
        self._predict = predict
        self._executor = executor
        self._queue: collections.deque[_Request[In, Out]] = collections.deque()
        self._queued_items = 0
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(config.instances)
        self._workers: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._busy = 0  # instances running a batch
        self._closed = False
        # Metric children looked up once: labels() takes a lock and a dict lookup on every call.
        self._queue_gauge = metrics.QUEUE_ITEMS.labels(name)
        self._batch_size = metrics.BATCH_SIZE.labels(name)
        self._queue_wait = metrics.QUEUE_WAIT.labels(name)

    @property
    def queued_items(self) -> int:
        return self._queued_items

    def start(self) -> None:
        if not self._workers:
            self._workers.append(asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}"))

    async def submit(self, items: Sequence[In]) -> list[Out]:
        """Run ``items`` through the model with others' and return their results."""
        if self._closed:
            # As the generation scheduler answers: a retry (on this replica once reloaded, or another) helps.
            raise Unavailable(f"model {self.name!r} is shutting down")
        if not items:
            return []
        if self._queued_items + len(items) > self.config.max_queue_size:
            metrics.BATCH_REJECTED.labels(self.name).inc()
            raise ResourceExhausted(
                f"model {self.name!r} queue is full ({self._queued_items} items waiting, "
                f"limit {self.config.max_queue_size}); retry later",
                subject=f"model:{self.name}",
                retry_after_s=0.1,
            )
        request: _Request[In, Out] = _Request(items, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        self._queued_items += len(items)
        self._queue_gauge.set(self._queued_items)
        self._wakeup.set()
        # If the caller is cancelled, awaiting cancels the future too; the
        # worker sees it done and skips it.
        return await request.future

    async def close(self) -> None:
        """Stop taking work, finish what is queued and running, stop the worker."""
        self._closed = True
        while self._queue or self._running:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    def _pop(self) -> _Request[In, Out]:
        request = self._queue.popleft()
        self._queued_items -= len(request.items)
        return request

    def _drop_cancelled_head(self) -> None:
        while self._queue and self._queue[0].future.done():
            self._pop()

    async def _take_batch(self) -> list[_Request[In, Out]]:
        """Wait for the first live request, then gather more until full or late."""
        loop = asyncio.get_running_loop()
        while True:
            self._drop_cancelled_head()
            if self._queue:
                break
            self._wakeup.clear()
            await self._wakeup.wait()
        batch = [self._pop()]
        size = len(batch[0].items)
        deadline = loop.time() + self.config.max_delay_s
        while size < self.config.max_batch_size:
            self._drop_cancelled_head()
            if self._queue:
                if size + len(self._queue[0].items) > self.config.max_batch_size:
                    break
                request = self._pop()
                batch.append(request)
                size += len(request.items)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or self._busy == 0:  # the model is idle: run what we have now
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        self._queue_gauge.set(self._queued_items)
        return batch

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._take_batch()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Request[In, Out]]) -> None:
        self._busy += 1
        try:
            live = [r for r in batch if not r.future.done()]
            if not live:
                return
            items: list[In] = [item for r in live for item in r.items]
            self._batch_size.observe(len(items))
            now = time.perf_counter()
            for r in live:
                self._queue_wait.observe(now - r.enqueued_at)
            try:
                results = await asyncio.get_running_loop().run_in_executor(self._executor, self._predict, items)
                if len(results) != len(items):
                    raise RuntimeError(f"model returned {len(results)} results for {len(items)} inputs")
            except Exception as exc:  # the model failed: every caller of this batch hears it
                log.exception("model %s failed on a batch of %d items", self.name, len(items))
                for r in live:
                    if not r.future.done():
                        r.future.set_exception(exc)
                return
            start = 0
            for r in live:
                end = start + len(r.items)
                if not r.future.done():
                    r.future.set_result(list(results[start:end]))
                start = end
        finally:
            self._busy -= 1
            self._slots.release()
