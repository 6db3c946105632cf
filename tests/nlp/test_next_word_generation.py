"""Generate / GenerateStream with a Keras next-word model, through a real nlp
service (in process, port 0) whose repository holds only that model.

The model is real: the training service's next-word recipe run here on the
first 60 articles of gensim's Lee background corpus. The reference is the same
model file loaded here by Keras and decoded by a plain loop written in this
file (the last words in, argmax or one seeded torch draw out).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio

from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from lumen.training.v1 import training_pb2
from services.nlp import app
from services.nlp.settings import NlpSettings
from services.training.recipes import RECIPES
from services.training.recipes.base import TrainContext
from shared.model import GenerativeModel, write_config
from shared.model_service import ModelService, start
from shared.word_vocabulary import words
from tests.nlp.next_word_reference import Reference
from tests.training.data import lee_corpus

pytestmark = pytest.mark.slow
NAME, CONTEXT = "lee-next-word", 6
# Enough for prompt-dependent text (not "the the the") in ~15 s of one core.
HYPER = {"epochs": 6, "context": CONTEXT, "max_words": 1500, "embedding_dim": 32, "lstm_units": 64}
HYPER |= {"batch_size": 32, "learning_rate": 0.01}
PROMPTS = ["the government said", "police", "the prime minister of australia", "fire crews were"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("next-word")
    repository, work, out = root / "nlp", root / "work", root / "nlp" / NAME
    corpus = root / "lee.txt"
    corpus.write_bytes(lee_corpus(60))
    work.mkdir()
    out.mkdir(parents=True)
    recipe = RECIPES["next-word"]
    hyper = recipe.effective(HYPER)
    ctx = TrainContext(corpus, training_pb2.DATASET_FORMAT_TEXT, "", hyper, 0.2, 5, work, out)
    output = recipe.train(ctx)
    write_config(
        repository,
        NAME,
        {"task": "text-generation", "framework": output.framework, "path": ".", "parameters": output.parameters},
    )
    return repository


@pytest_asyncio.fixture(scope="module")
async def service(trained: Path) -> AsyncIterator[ModelService]:
    settings = NlpSettings(host="127.0.0.1", port=0, model_repository=str(trained))
    running: ModelService = await start("nlp", settings, app.FACTORIES, app.registrations)
    assert running.repository.all_ready(), [(e.config.name, e.error) for e in running.repository.entries()]
    yield running
    await running.stop(0)


@pytest_asyncio.fixture(scope="module")
async def channel(service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as ch:
        yield ch


@pytest.fixture(scope="module")
def reference(trained: Path) -> Reference:
    return Reference(trained / NAME, CONTEXT)


def params(n: int, **fields: Any) -> pb.GenerationParams:
    return pb.GenerationParams(max_new_tokens=n, **fields)


async def generate(channel: grpc.aio.Channel, prompt: str, p: pb.GenerationParams) -> pb.GenerateResponse:
    stub = pb_grpc.TextGenerationServiceStub(channel)
    return await stub.Generate(pb.GenerateRequest(model={"name": NAME}, prompt=prompt, params=p))


async def test_greedy_generate_and_stream_equal_the_reference(channel, reference: Reference) -> None:
    stub = pb_grpc.TextGenerationServiceStub(channel)
    for prompt in PROMPTS:
        expected = reference.generate(prompt, 8)
        reply = await generate(channel, prompt, params(8, temperature=0.0))
        stream = [
            m
            async for m in stub.GenerateStream(
                pb.GenerateStreamRequest(model={"name": NAME}, prompt=prompt, params=params(8, temperature=0.0))
            )
        ]
        assert reply.text == expected and reply.text.startswith(" ")
        assert "".join(m.text for m in stream) == expected
        assert len([m for m in stream if m.text]) == reply.usage.output_tokens  # one delta a word
        assert reply.usage.input_tokens == len(words(prompt))
        assert reply.finish_reason == stream[-1].finish_reason
        assert reply.finish_reason in (pb.FINISH_REASON_LENGTH, pb.FINISH_REASON_STOP)


async def test_seeded_sampling_equals_the_reference_and_repeats(channel, reference: Reference) -> None:
    for seed, temperature, top_k in ((3, 1.0, 0), (11, 0.7, 20)):
        p = params(10, temperature=temperature, top_k=top_k, seed=seed)
        first, again = await generate(channel, "the government", p), await generate(channel, "the government", p)
        assert first.text == again.text == reference.generate("the government", 10, seed, temperature, top_k)
        assert first.seed == seed


async def test_concurrent_generations_share_steps_and_each_gets_its_own_answer(
    service: ModelService, channel, reference: Reference
) -> None:
    asks = [(prompt, None) for prompt in PROMPTS] + [(prompt, 20 + i) for i, prompt in enumerate(PROMPTS)]
    with service.repository.resolve(NAME, "", "text-generation", GenerativeModel) as lease:
        scheduler = lease.model.scheduler
    step, widths = scheduler.step, []

    def recording(jobs: list) -> None:
        widths.append(len(jobs))
        step(jobs)

    async def one(prompt: str, seed: int | None) -> str:
        p = params(12, temperature=0.0) if seed is None else params(12, temperature=0.9, seed=seed)
        return (await generate(channel, prompt, p)).text

    scheduler.step = recording
    try:
        answers = await asyncio.gather(*(one(prompt, seed) for prompt, seed in asks))
    finally:
        scheduler.step = step
    expected = [reference.generate(prompt, 12, seed, 0.9) for prompt, seed in asks]
    assert answers == expected
    assert max(widths) > 1  # the generations really shared batched calls


async def test_stop_sequence_and_length_end_the_text(channel, reference: Reference) -> None:
    full = reference.generate("police", 8)
    cut = full.split()[2]
    reply = await generate(channel, "police", params(8, temperature=0.0, stop=[" " + cut]))
    assert reply.finish_reason == pb.FINISH_REASON_STOP_SEQUENCE and reply.stop_sequence == " " + cut
    assert reply.text == full[: full.index(" " + cut)]
    short = await generate(channel, "police", params(2, temperature=0.0))
    assert short.text == " ".join(["", *full.split()[:2]]) and short.finish_reason == pb.FINISH_REASON_LENGTH


async def test_long_prompts_fit_and_bad_requests_get_a_clear_status(channel, reference: Reference) -> None:
    long_prompt = " ".join(["the"] * 5000) + " government said"  # only the last words are read
    reply = await generate(channel, long_prompt, params(3, temperature=0.0))
    assert reply.text == reference.generate(long_prompt, 3)  # the reference too reads only its last words
    stub = pb_grpc.TextGenerationServiceStub(channel)
    chat = pb.Conversation(messages=[pb.ChatMessage(role=pb.CHAT_ROLE_USER, content="hello")])
    for request, code, field in (
        (pb.GenerateRequest(model={"name": NAME}, chat=chat), grpc.StatusCode.FAILED_PRECONDITION, "chat"),
        (
            pb.GenerateRequest(model={"name": NAME}, prompt="x", params=params(3, temperature=5.0)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "params.temperature",
        ),
        (pb.GenerateRequest(model={"name": NAME}, prompt=""), grpc.StatusCode.INVALID_ARGUMENT, "prompt"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Generate(request)
        assert error.value.code() == code and field in error.value.details()
