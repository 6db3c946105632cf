"""Dynamic batcher: merges concurrent requests for one model into batches.

Each call to `submit` brings a list of items (texts, images) and gets back the
results for exactly those items, in order. Each model instance has its own
dedicated thread that loops: take whatever queued while the previous batch ran
(requests in arrival order, up to ``max_batch_size`` items), run it, post the
results back to the event loop, take the next. The next batch is thus formed
the moment the model frees, on the model's own thread: the event loop, busy
parsing and answering calls, is never between two batches, and there is no
fixed wait when work is queued (an idle model that waits for company only adds
latency at low load; at high load the queue fills while the model runs).
``max_delay_s`` is waited for more requests only while another instance is
still busy (``instances`` > 1). A request is never split across batches; one
larger than ``max_batch_size`` runs as its own batch.

``prepare`` (optional) is per-call work that does not need the model's thread
(tokenising, resizing): `submit` runs it in the caller's executor, so it
overlaps with the batch the model is running and both cores are used.

- Back-pressure: at most ``max_queue_size`` items wait; past that, `submit`
  raises ResourceExhausted at once.
- Cancellation: a caller that goes away (deadline, cancel) is dropped from the
  queue; if its batch already runs, its results are discarded.
- Errors: an exception from the model reaches every caller of that batch; the
  model thread goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

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
    loop: asyncio.AbstractEventLoop
    enqueued_at: float = field(default_factory=time.perf_counter)


class DynamicBatcher(Generic[In, Out]):
    def __init__(
        self,
        name: str,
        predict: Callable[[list[In]], Sequence[Out]],
        config: BatchingConfig,
        prepare: Callable[[Sequence[Any]], Sequence[In]] | None = None,
    ) -> None:
        if config.max_batch_size < 1 or config.max_queue_size < 1 or config.instances < 1:
            raise ValueError(f"invalid batching config for {name}: {config}")
        self.name = name
        self.config = config
        self._predict = predict
        self._prepare = prepare
        self._queue: collections.deque[_Request[In, Out]] = collections.deque()
        self._queued_items = 0  # items waiting, or being prepared to wait (the limit counts both)
        # Guards the queue and counters, shared by the event loop and the model threads.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._busy = 0  # instances running a batch
        self._closed = False
        # Metric children looked up once: labels() takes a lock and a dict lookup on every call.
        self._queue_gauge = metrics.QUEUE_ITEMS.labels(name)
        self._batch_size = metrics.BATCH_SIZE.labels(name)
        self._queue_wait = metrics.QUEUE_WAIT.labels(name)
        self._duration = metrics.BATCH_DURATION.labels(name)

    @property
    def queued_items(self) -> int:
        return self._queued_items

    def start(self) -> None:
        if self._threads:
            return
        self._closed = False
        for i in range(self.config.instances):
            thread = threading.Thread(target=self._serve, name=f"model-{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    async def submit(self, items: Sequence[Any]) -> list[Out]:
        """Run ``items`` through the model with others' and return their results."""
        if self._closed:
            # As the generation scheduler answers: a retry (on this replica once reloaded, or another) helps.
            raise Unavailable(f"model {self.name!r} is shutting down")
        if not items:
            return []
        with self._lock:
            if self._queued_items + len(items) > self.config.max_queue_size:
                metrics.BATCH_REJECTED.labels(self.name).inc()
                raise ResourceExhausted(
                    f"model {self.name!r} queue is full ({self._queued_items} items waiting, "
                    f"limit {self.config.max_queue_size}); retry later",
                    subject=f"model:{self.name}",
                    retry_after_s=0.1,
                )
            self._queued_items += len(items)
        try:
            ready: Sequence[In] = await asyncio.to_thread(self._prepare, items) if self._prepare else items
        except BaseException:
            self._uncount(len(items))
            raise
        loop = asyncio.get_running_loop()
        request: _Request[In, Out] = _Request(ready, loop.create_future(), loop)
        with self._work:
            self._queue.append(request)
            self._queue_gauge.set(self._queued_items)
            self._work.notify()
        # If the caller is cancelled, awaiting cancels the future too; the
        # model thread sees it done and skips it.
        return await request.future

    def _uncount(self, n: int) -> None:
        with self._work:
            self._queued_items -= n
            self._work.notify_all()  # a closing model thread may be waiting for this one

    async def close(self) -> None:
        """Stop taking work, finish what is queued and running, stop the model threads."""
        self._closed = True
        with self._work:
            self._work.notify_all()
        threads, self._threads = self._threads, []
        for thread in threads:
            await asyncio.to_thread(thread.join)

    # --- on the model threads ---------------------------------------------------------
    def _pop(self) -> _Request[In, Out]:
        request = self._queue.popleft()
        self._queued_items -= len(request.items)
        return request

    def _drop_cancelled_head(self) -> None:
        while self._queue and self._queue[0].future.done():
            self._pop()

    def _take_batch(self) -> list[_Request[In, Out]] | None:
        """Under the lock: the first live request, then more until full (or late); None once closed and empty."""
        while True:
            self._drop_cancelled_head()
            if self._queue:
                break
            if self._closed and self._queued_items == 0:  # nothing queued nor being prepared
                return None
            self._work.wait()
        batch = [self._pop()]
        size = len(batch[0].items)
        deadline = time.monotonic() + self.config.max_delay_s
        while size < self.config.max_batch_size:
            self._drop_cancelled_head()
            if self._queue:
                if size + len(self._queue[0].items) > self.config.max_batch_size:
                    break
                request = self._pop()
                batch.append(request)
                size += len(request.items)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._busy == 0 or self._closed:  # the model is idle: run what we have now
                break
            self._work.wait(remaining)
        self._queue_gauge.set(self._queued_items)
        return batch

    def _serve(self) -> None:
        while True:
            with self._work:
                batch = self._take_batch()
                if batch is None:
                    return
                self._busy += 1
            try:
                self._run(batch)
            finally:
                with self._work:
                    self._busy -= 1

    def _run(self, batch: list[_Request[In, Out]]) -> None:
        live = [r for r in batch if not r.future.done()]
        if not live:
            return
        items: list[In] = [item for r in live for item in r.items]
        self._batch_size.observe(len(items))
        now = time.perf_counter()
        for r in live:
            self._queue_wait.observe(now - r.enqueued_at)
        try:
            with self._duration.time():
                results = self._predict(items)
            if len(results) != len(items):
                raise RuntimeError(f"model returned {len(results)} results for {len(items)} inputs")
        except Exception as exc:  # the model failed: every caller of this batch hears it
            log.exception("model %s failed on a batch of %d items", self.name, len(items))
            _post([(r, None, exc) for r in live])
            return
        answers: list[tuple[_Request[In, Out], list[Out] | None, BaseException | None]] = []
        start = 0
        for r in live:
            end = start + len(r.items)
            answers.append((r, list(results[start:end]), None))
            start = end
        _post(answers)


def _post(answers: Sequence[tuple[_Request[Any, Any], Any, BaseException | None]]) -> None:
    """From a model thread: one wake-up of each caller's event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}
    for request, value, error in answers:
        by_loop.setdefault(request.loop, []).append((request.future, value, error))
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve_all, group)


def _resolve_all(group: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """On the event loop: answer each caller unless it already went away."""
    for future, value, error in group:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
