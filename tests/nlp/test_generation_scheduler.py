"""The generation scheduler with a counting step in place of a model: every
running job advances by one token per step, newcomers join and finished ones
leave between steps, cancellation frees the slot, back-pressure. Order of
events only, never time."""

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
    """A step that emits token 1, 2, 3... (EOS at ``state``) to each job and logs which jobs stepped together."""

    def __init__(self, hold_after: int = 0) -> None:
        self.log: list[int] = []
        self.steps: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.hold_after = hold_after  # > 0: close the gate after that many steps (the next one waits at it)

    def __call__(self, jobs: list[GenerationJob]) -> None:
        self.gate.wait(timeout=30)
        self.steps.append([id(job) for job in jobs])
        for job in jobs:
            self.log.append(id(job))
            eos_at = job.state
            position = len(job.generated) + 1
            job.accept(EOS if position == eos_at else position)
            if not job.done.is_set():
                job.state = eos_at
        if len(self.steps) == self.hold_after:
            self.gate.clear()


def test_running_jobs_share_each_step_and_leave_when_done() -> None:
    step = Recorder()
    step.gate.clear()
    scheduler = GenerationScheduler("fake", step, max_active=2)
    long, short = job(6), job(2)
    scheduler.submit(long)
    scheduler.submit(short)
    step.gate.set()
    assert short.done.wait(30) and short.finish_reason == LENGTH
    assert long.done.wait(30)
    scheduler.close()
    # Both advance in the same steps; the short one leaves after its two, the long one goes on alone.
    # (The long one may have taken its first step before the short one was admitted.)
    names = [["long" if i == id(long) else "short" for i in ids] for ids in step.steps]
    assert names.count(["long", "short"]) == 2 and names.count(["long"]) == 4
    assert names[-3:] == [["long"]] * 3
    assert long.result().text == "abcdef"
    assert short.result().text == "ab"


def test_a_newcomer_joins_the_running_batch_at_the_next_step() -> None:
    step = Recorder()
    scheduler = GenerationScheduler("fake", step, max_active=4)
    first = job(5)
    seen_active: list[int] = []

    def stepping(jobs: list[GenerationJob]) -> None:
        seen_active.append(len(jobs))
        if len(step.steps) == 1:  # the first job is running: a second one arrives
            scheduler.submit(second)
        step(jobs)

    second = job(2)
    scheduler.step = stepping
    assert scheduler.run_sync(first).text == "abcde"
    assert second.done.wait(30) and second.result().text == "ab"
    scheduler.close()
    assert seen_active[:4] == [1, 1, 2, 2]  # joined at the step after it arrived, left after its two tokens


def test_eos_ends_with_stop_and_is_not_text() -> None:
    scheduler = GenerationScheduler("fake", Recorder())
    result = scheduler.run_sync(job(10, eos_at=4))
    scheduler.close()
    assert (result.text, result.finish_reason, result.output_tokens) == ("abc", STOP, 4)


async def test_cancelling_the_consumer_frees_the_slot_for_the_next_job() -> None:
    # The scheduler is held after the first step while we cancel: a free-running fake step could otherwise
    # make all 1,000 tokens before the event loop gets to the cancel (seen under load).
    step = Recorder(hold_after=1)
    scheduler = GenerationScheduler("fake", step, max_active=1)
    first = job(1000)
    events = scheduler.events(first)
    await events.__anext__()  # the first token's text arrived
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


def test_a_failing_step_fails_its_jobs_and_the_scheduler_goes_on() -> None:
    def step(jobs: list[GenerationJob]) -> None:
        if any(job.max_new_tokens == 13 for job in jobs):
            raise ValueError("broken")
        for job in jobs:
            job.accept(1)

    scheduler = GenerationScheduler("fake", step, max_active=1)
    bad, good = job(13), job(1)
    scheduler.submit(bad)
    assert scheduler.run_sync(good).text == "a"  # stepped after the broken step, alone
    assert bad.done.wait(30) and bad.finish_reason == "failed"
    scheduler.close()
