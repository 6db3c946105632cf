"""Continuous batching for a causal LM: one thread per model steps every
running generation by one token per step, all of them in one forward pass.

What concurrent callers get: up to ``max_active`` generations form the running
batch. Every step, waiting generations join (their prompt is prefilled and
their first token sent at once, so a newcomer's time to first token is one
step plus its prefill, not the others' whole generations) and finished or
cancelled ones leave; the rest advance together (``step(jobs)``: the runtime
keeps the batched KV cache, see decode_batch). Each job keeps its own sampling
parameters, random generator, stop sequences and limits, and gets exactly its
own tokens. More callers than ``max_active`` wait in arrival order
(``max_waiting`` at most; past it, RESOURCE_EXHAUSTED).

Cancellation: a job's ``cancel()`` (the caller went away) is seen before the
next step; the job leaves the batch with its KV cache and its slot goes to the
next waiting job. Events (text deltas, the end) reach the asyncio side
through ``loop.call_soon_threadsafe``. A step that raises fails the jobs it
was stepping (their shared forward pass broke); the scheduler goes on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from services.nlp.sampling import SamplingParams
from services.nlp.text_stream import Delta, TextStream
from shared.errors import ResourceExhausted, Unavailable

log = logging.getLogger(__name__)

STOP, LENGTH, STOP_SEQUENCE, CANCELLED = "stop", "length", "stop_sequence", "cancelled"


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: str  # STOP, LENGTH or STOP_SEQUENCE
    stop_sequence: str
    seed: int
    prompt_tokens: int
    output_tokens: int


@dataclass
class Finished:
    result: GenerationResult


@dataclass
class Failed:
    error: BaseException


Event = Delta | Finished | Failed


@dataclass
class GenerationJob:
    """One generation: its prompt, limits and progress. Only the scheduler thread mutates progress."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampling: SamplingParams
    stream: TextStream
    eos_ids: frozenset[int]
    state: Any = None  # the runtime's per-job state (KV cache, token chooser...)
    generated: list[int] = field(default_factory=list)
    finish_reason: str = ""
    sink: Callable[[Event], None] = lambda event: None
    # Told the finish reason before the caller hears the end (the scheduler's counts stay in step with callers).
    ended: Callable[[str], None] = lambda reason: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()

    def accept(self, token_id: int) -> None:
        """Record one new token; send its text and, at the end, the result."""
        self.generated.append(token_id)
        if token_id in self.eos_ids:
            self._finish(STOP)
            return
        delta = self.stream.push(token_id)
        if self.stream.stop_sequence:
            self._send(delta)
            self._finish(STOP_SEQUENCE)
        elif len(self.generated) >= self.max_new_tokens:
            self._send(delta)
            self._finish(LENGTH)
        else:
            self._send(delta)

    def result(self) -> GenerationResult:
        return GenerationResult(
            text=self.stream.emitted,
            finish_reason=self.finish_reason,
            stop_sequence=self.stream.stop_sequence,
            seed=0 if self.sampling.greedy else self.sampling.seed,
            prompt_tokens=len(self.prompt_ids),
            output_tokens=len(self.generated),
        )

    def fail(self, error: BaseException) -> None:
        self.finish_reason = "failed"
        self.ended(self.finish_reason)
        self.sink(Failed(error))
        self.done.set()

    def _send(self, delta: Delta | None) -> None:
        if delta is not None and (delta.text or delta.token_ids):
            self.sink(delta)

    def _finish(self, reason: str) -> None:
        if reason != STOP_SEQUENCE:
            self._send(self.stream.flush())
        self.finish_reason = reason
        self.state = None  # free the KV cache now, not when the caller lets go
        self.ended(reason)
        self.sink(Finished(self.result()))
        self.done.set()


class GenerationScheduler:
    def __init__(
        self, name: str, step: Callable[[list[GenerationJob]], None], max_active: int = 16, max_waiting: int = 64
    ) -> None:
        self.name = name
        # Advances every given job by one token (tests wrap it to observe or gate steps).
        self.step = step
        self.max_active = max_active
        self.max_waiting = max_waiting
        self._waiting: collections.deque[GenerationJob] = collections.deque()
        self._active: list[GenerationJob] = []
        self._wakeup = threading.Condition()
        self._closing = False
        self.counts = collections.Counter[str]()  # finish reasons (and "cancelled") seen so far
        self._thread = threading.Thread(target=self._run, name=f"generate-{name}", daemon=True)
        self._thread.start()

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> bool:
        """Whether the stepping thread is alive (False once close() returned)."""
        return self._thread.is_alive()

    def submit(self, job: GenerationJob) -> None:
        with self._wakeup:
            if self._closing:
                raise Unavailable(f"model {self.name!r} is unloading")
            if len(self._waiting) >= self.max_waiting:
                raise ResourceExhausted(
                    f"model {self.name!r} has {len(self._waiting)} generations waiting (limit {self.max_waiting}); "
                    "retry later",
                    subject=f"model:{self.name}",
                    retry_after_s=1.0,
                )
            job.ended = self._count
            self._waiting.append(job)
            self._wakeup.notify()

    def resize(self, max_active: int) -> None:
        """Change how many generations may run at once; waiting ones are admitted at the next step."""
        with self._wakeup:
            self.max_active = max_active
            self._wakeup.notify()

    def run_sync(self, job: GenerationJob) -> GenerationResult:
        """Generate on the calling thread's behalf and wait (warm-up, set-up)."""
        self.submit(job)
        job.done.wait()
        if job.finish_reason == "failed":
            raise RuntimeError(f"generation failed on {self.name}")
        return job.result()

    async def events(self, job: GenerationJob) -> AsyncIterator[Event]:
        """Submit ``job`` and yield its events; leaving early (cancel, error) cancels the job."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()
        job.sink = lambda event: loop.call_soon_threadsafe(queue.put_nowait, event)
        self.submit(job)
        try:
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, Finished | Failed):
                    return
        finally:
            if not job.done.is_set():
                job.cancel()
                with self._wakeup:
                    self._wakeup.notify()

    def close(self) -> None:
        """Finish running and waiting generations, then stop the thread."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        self._thread.join()

    def _admit(self) -> bool:
        """Move waiting jobs into free slots; False when there is nothing to do and we are closing."""
        with self._wakeup:
            while True:
                self._drop_cancelled_waiting()
                while self._waiting and len(self._active) < self.max_active:
                    self._active.append(self._waiting.popleft())
                if self._active:
                    return True
                if self._closing:
                    return False
                self._wakeup.wait()

    def _drop_cancelled_waiting(self) -> None:
        for job in [j for j in self._waiting if j.cancelled.is_set()]:
            self._waiting.remove(job)
            self._end_cancelled(job)

    def _end_cancelled(self, job: GenerationJob) -> None:
        job.finish_reason, job.state = CANCELLED, None
        self.counts[CANCELLED] += 1
        job.done.set()

    def _run(self) -> None:
        while self._admit():
            live: list[GenerationJob] = []
            for job in list(self._active):
                if job.cancelled.is_set():
                    self._end_cancelled(job)
                    self._active.remove(job)
                else:
                    live.append(job)
            if not live:
                continue
            try:
                self.step(live)
            except Exception as exc:  # the shared forward pass broke: its jobs hear it, the others go on
                log.exception("generation step of %d jobs failed on %s", len(live), self.name)
                for job in live:
                    if not job.done.is_set():
                        job.fail(exc)
            for job in live:
                if job.done.is_set():
                    self._active.remove(job)

    def _count(self, reason: str) -> None:
        self.counts[reason] += 1
