"""The generation scheduler with a counting step in place of a model: token
interleaving, cancellation freeing the slot, back-pressure. Order of events
only, never time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from services.nlp.generation_scheduler import (
    CANCELLED,
    LENGTH,
    STOP,
    Finished,
    GenerationJob,
    GenerationScheduler,
)
from services.nlp.sampling import SamplingParams
from services.nlp.text_stream import TextStream
from shared.errors import ResourceExhausted

EOS = 0


def letters(ids: Sequence[int]) -> str:
    return "".join(chr(ord("a") + i - 1) for i in ids)


def job(tokens: int, eos_at: int | None = None) -> GenerationJob:
    job = GenerationJob([1, 2], tokens, SamplingParams(temperature=0.0), TextStream(letters), frozenset({EOS}))
    job.state = eos_at
    return job


class Recorder:
    """A step that emits token 1, 2, 3... (EOS at ``state``) and logs which job stepped."""

    def __init__(self) -> None:
        self.log: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, job: GenerationJob) -> None:
        self.gate.wait(timeout=30)
        self.log.append(id(job))
        eos_at = job.state
        position = len(job.generated) + 1
        job.accept(EOS if position == eos_at else position)
        if not job.done.is_set():
            job.state = eos_at


def test_jobs_interleave_token_by_token() -> None:
    step = Recorder()
    step.gate.clear()
    scheduler = GenerationScheduler("fake", step, max_active=2)
    long, short = job(6), job(2)
    scheduler.submit(long)
    scheduler.submit(short)
    step.gate.set()
    assert scheduler.run_sync(short).finish_reason == LENGTH
    assert long.done.wait(30)
    scheduler.close()
    # Round robin: the short job's two steps come before the long job's third.
    order = ["long" if i == id(long) else "short" for i in step.log]
    assert order[:4] == ["long", "short", "long", "short"]
    assert long.result().text == "abcdef"


def test_eos_ends_with_stop_and_is_not_text() -> None:
    scheduler = GenerationScheduler("fake", Recorder())
    result = scheduler.run_sync(job(10, eos_at=4))
    scheduler.close()
    assert (result.text, result.finish_reason, result.output_tokens) == ("abc", STOP, 4)


async def test_cancelling_the_consumer_frees_the_slot_for_the_next_job() -> None:
    step = Recorder()
    scheduler = GenerationScheduler("fake", step, max_active=1)
    first = job(1000)
    events = scheduler.events(first)
    await events.__anext__()  # the first token's text arrived
    step.gate.clear()  # hold the scheduler while we cancel
    await events.aclose()  # the caller goes away
    step.gate.set()
    second = job(3)
    result = await asyncio.to_thread(scheduler.run_sync, second)
    scheduler.close()
    assert result.text == "abc"
    assert first.finish_reason == CANCELLED
    assert len(first.generated) < 1000
    assert scheduler.counts[CANCELLED] == 1


async def test_events_end_with_the_result() -> None:
    scheduler = GenerationScheduler("fake", Recorder())
    seen = [event async for event in scheduler.events(job(3))]
    scheduler.close()
    assert [e.text for e in seen[:-1]] == ["a", "b", "c"]
    assert isinstance(seen[-1], Finished) and seen[-1].result.text == "abc"


def test_a_full_queue_is_refused() -> None:
    step = Recorder()
    step.gate.clear()
    scheduler = GenerationScheduler("fake", step, max_active=1, max_waiting=1)
    scheduler.submit(job(2))  # becomes active (blocked at the gate)
    while scheduler.active == 0:
        threading.Event().wait(0.01)
    scheduler.submit(job(2))  # waits
    with pytest.raises(ResourceExhausted):
        scheduler.submit(job(2))
    step.gate.set()
    scheduler.close()


def test_a_failing_step_fails_only_its_job() -> None:
    def step(job: GenerationJob) -> None:
        if job.max_new_tokens == 13:
            raise ValueError("broken")
        job.accept(1)

    scheduler = GenerationScheduler("fake", step, max_active=2)
    bad, good = job(13), job(1)
    scheduler.submit(bad)
    assert scheduler.run_sync(good).text == "a"
    assert bad.done.wait(30) and bad.finish_reason == "failed"
    scheduler.close()
