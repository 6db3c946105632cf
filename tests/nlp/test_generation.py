"""TextGenerationService through a real nlp service, against SmolLM2 run in
process by transformers' own generate(). Short generations: a few tokens each."""

from __future__ import annotations

import asyncio
import threading

import grpc
import grpc.aio
import pytest
import torch

from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp.generation_scheduler import CANCELLED
from services.nlp.transform_prompts import instruct_messages
from shared.model import GenerativeModel
from tests.nlp.conftest import LLM

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"
CHAT = pb.Conversation(messages=[pb.ChatMessage(role=pb.CHAT_ROLE_USER, content=QUESTION)])


def reference(llm, prompt_ids: list[int], max_new_tokens: int, seed: int | None = None, **sampling) -> list[int]:
    """New token ids from transformers' generate() on the same weights."""
    model, _ = llm
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=seed is not None,
            **sampling,
        )
    return out[0, len(prompt_ids) :].tolist()


def chat_ids(llm, messages: list[dict[str, str]]) -> list[int]:
    _, tokenizer = llm
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]


def text_of(llm, ids: list[int]) -> str:
    model, tokenizer = llm
    eos = model.generation_config.eos_token_id
    return tokenizer.decode([i for i in ids if i != eos], skip_special_tokens=True)


def scheduler_of(service):
    with service.repository.resolve(LLM, "", "text-generation", GenerativeModel) as lease:
        return lease.model.scheduler


async def test_greedy_chat_equals_generate_in_process(nlp_channel, reference_llm) -> None:
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    response = await stub.Generate(
        pb.GenerateRequest(chat=CHAT, params=pb.GenerationParams(max_new_tokens=12, temperature=0.0))
    )
    ids = chat_ids(reference_llm, [{"role": "user", "content": QUESTION}])
    want = reference(reference_llm, ids, 12)
    assert response.text == text_of(reference_llm, want)
    assert "Paris" in response.text  # a real model answers
    eos = reference_llm[0].generation_config.eos_token_id
    assert response.finish_reason == (pb.FINISH_REASON_STOP if eos in want else pb.FINISH_REASON_LENGTH)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (len(ids), len(want))
    assert response.seed == 0
    assert response.model.name == LLM


async def test_seeded_sampling_equals_generate_and_repeats(nlp_channel, reference_llm) -> None:
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    prompt = "Once upon a time"
    params = pb.GenerationParams(max_new_tokens=8, temperature=0.9, top_p=0.9, top_k=50, seed=1234)
    first, second = [await stub.Generate(pb.GenerateRequest(prompt=prompt, params=params)) for _ in range(2)]
    _, tokenizer = reference_llm
    want = reference(reference_llm, tokenizer(prompt)["input_ids"], 8, seed=1234, temperature=0.9, top_p=0.9, top_k=50)
    assert first.text == text_of(reference_llm, want)
    assert second.text == first.text
    assert first.seed == 1234
    unseeded = await stub.Generate(
        pb.GenerateRequest(prompt=prompt, params=pb.GenerationParams(max_new_tokens=1, temperature=0.9))
    )
    assert unseeded.seed != 0  # the random seed chosen is returned


async def test_stream_sends_the_first_token_before_generation_ends(nlp_channel, nlp_service, reference_llm) -> None:
    """Order of events: the scheduler may not take another step until the client holds a token."""
    scheduler = scheduler_of(nlp_service)
    client_has_token = threading.Event()
    state_when_received: list[bool] = []
    step = scheduler.step

    def gated(jobs) -> None:
        step(jobs)
        if any(job.stream.emitted for job in jobs) and not client_has_token.is_set():
            assert client_has_token.wait(60), "the first token did not reach the client while generation waited"

    scheduler.step = gated
    try:
        stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
        params = pb.GenerationParams(max_new_tokens=6, temperature=0.0)
        messages = []
        async for message in stub.GenerateStream(pb.GenerateStreamRequest(chat=CHAT, params=params)):
            if not messages:
                state_when_received.append(scheduler.active == 1)
                client_has_token.set()
            messages.append(message)
    finally:
        scheduler.step = step
    assert state_when_received == [True]  # generation was still running when the first token arrived
    assert messages[0].finish_reason == pb.FINISH_REASON_UNSPECIFIED and messages[0].text
    final = messages[-1]
    assert final.finish_reason != pb.FINISH_REASON_UNSPECIFIED and final.model.name == LLM
    ids = chat_ids(reference_llm, [{"role": "user", "content": QUESTION}])
    want = reference(reference_llm, ids, 6)
    assert "".join(m.text for m in messages) == text_of(reference_llm, want)
    eos = reference_llm[0].generation_config.eos_token_id
    assert [i for m in messages for i in m.token_ids] == [i for i in want if i != eos]
    # Usage per message, since the one before: the prompt on the first, then the tokens generated.
    assert [m.usage.input_tokens for m in messages] == [len(ids)] + [0] * (len(messages) - 1)
    assert sum(m.usage.output_tokens for m in messages) == len(want)
    assert messages[0].usage.output_tokens >= 1


async def test_stop_sequence_cuts_the_text_before_it(nlp_channel, reference_llm) -> None:
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    ids = chat_ids(reference_llm, [{"role": "user", "content": QUESTION}])
    full = text_of(reference_llm, reference(reference_llm, ids, 10))
    stop = "Paris" if "Paris" in full else full.split()[1]
    params = pb.GenerationParams(max_new_tokens=10, temperature=0.0, stop=[stop, "zzz-never"])
    response = await stub.Generate(pb.GenerateRequest(chat=CHAT, params=params))
    assert response.text == full[: full.index(stop)]
    assert response.finish_reason == pb.FINISH_REASON_STOP_SEQUENCE
    assert response.stop_sequence == stop
    streamed = [m async for m in stub.GenerateStream(pb.GenerateStreamRequest(chat=CHAT, params=params))]
    assert "".join(m.text for m in streamed) == response.text
    assert streamed[-1].stop_sequence == stop


async def test_cancelled_stream_stops_generation_and_frees_the_model(nlp_channel, nlp_service) -> None:
    """The test model runs one generation at a time: the next caller is served only if the cancelled one let go."""
    scheduler = scheduler_of(nlp_service)
    assert scheduler.max_active == 1
    cancelled_before = scheduler.counts[CANCELLED]
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    params = pb.GenerationParams(max_new_tokens=1000, temperature=0.0)
    call = stub.GenerateStream(
        pb.GenerateStreamRequest(prompt="Count from one to a thousand: one, two,", params=params)
    )
    first = await call.read()
    assert first.text
    call.cancel()
    nxt = await stub.Generate(
        pb.GenerateRequest(prompt="Hello", params=pb.GenerationParams(max_new_tokens=2, temperature=0.0))
    )
    assert nxt.usage.output_tokens >= 1
    # Counted by the scheduler before it admitted the next caller (one slot).
    assert scheduler.counts[CANCELLED] == cancelled_before + 1


async def test_a_short_request_does_not_wait_for_a_long_one(nlp_service, nlp_channel) -> None:
    """Continuous batching: a 2-token request that arrives during a 24-token one joins it and finishes first.

    The long generation is held after its first token until the short one has
    reached the scheduler, so the outcome depends on scheduling order only.
    """
    scheduler = scheduler_of(nlp_service)
    step = scheduler.step
    long_tokens = 24

    def hold_long_until_short_arrives(jobs) -> None:
        step(jobs)
        if any(job.max_new_tokens == long_tokens and len(job.generated) == 1 for job in jobs):
            for _ in range(6000):  # bounded: at most about a minute
                if scheduler.waiting or scheduler.active > 1:
                    break
                threading.Event().wait(0.01)

    scheduler.max_active = 2  # this test needs two slots; the scheduler reads it when admitting
    scheduler.step = hold_long_until_short_arrives
    try:
        stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
        finished: list[str] = []
        long_call = stub.GenerateStream(
            pb.GenerateStreamRequest(
                prompt="Count from one to a thousand: one, two,",
                params=pb.GenerationParams(max_new_tokens=long_tokens, temperature=0.0),
            )
        )
        await long_call.read()  # the long generation is running

        async def drain_long() -> None:
            last = None
            while (message := await long_call.read()) is not grpc.aio.EOF:
                last = message
            assert last is not None and last.finish_reason == pb.FINISH_REASON_LENGTH  # it really was long
            finished.append("long")

        async def short() -> None:
            await stub.Generate(
                pb.GenerateRequest(prompt="Hi", params=pb.GenerationParams(max_new_tokens=2, temperature=0.0))
            )
            finished.append("short")

        await asyncio.gather(drain_long(), short())
    finally:
        scheduler.step = step
        scheduler.max_active = 1
    assert finished == ["short", "long"]


async def test_concurrent_generations_share_steps_and_each_gets_its_own_greedy_output(
    nlp_service, nlp_channel, reference_llm
) -> None:
    """Batched decoding (left-padded cache, masks, own positions) gives every caller what it would get alone."""
    scheduler = scheduler_of(nlp_service)
    step = scheduler.step
    widths: list[int] = []

    def recording(jobs) -> None:
        widths.append(len(jobs))
        step(jobs)

    prompts = {"Once upon a time": 10, "The capital of Italy is": 6, "def add(a, b):": 12, "Three colours:": 3}
    _, tokenizer = reference_llm
    scheduler.max_active, scheduler.step = len(prompts), recording
    try:
        stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
        answers = await asyncio.gather(
            *(
                stub.Generate(
                    pb.GenerateRequest(prompt=p, params=pb.GenerationParams(max_new_tokens=n, temperature=0.0))
                )
                for p, n in prompts.items()
            )
        )
    finally:
        scheduler.step, scheduler.max_active = step, 1
    for (prompt, n), answer in zip(prompts.items(), answers, strict=True):
        want = reference(reference_llm, tokenizer(prompt)["input_ids"], n)
        assert answer.text == text_of(reference_llm, want), prompt
        assert answer.usage.output_tokens == len(want)
    assert max(widths) > 1  # the generations really shared forward passes


async def test_prompts_prefilled_together_cancelled_mid_batch_and_joined_late_each_equal_alone(
    nlp_service, nlp_channel, reference_llm
) -> None:
    """Four prompts of very different lengths arrive together and are prefilled in one left-padded pass;
    one of them, a stream, is cancelled while the others decode; a fifth joins the running batch.
    Every greedy answer equals generate() alone, and the cancelled stream got a prefix of its own."""
    scheduler = scheduler_of(nlp_service)
    step = scheduler.step
    newcomers: list[int] = []  # per step: how many jobs were prefilled in it

    def recording(jobs) -> None:
        newcomers.append(sum(job.state is None for job in jobs))
        step(jobs)

    long_prompt = "Here is a list of the planets of the solar system, with one fact about each of them: " * 3
    prompts = {"Hi": 10, long_prompt: 8, "The capital of Italy is": 12, "def add(a, b):": 14}
    cancelled_prompt, late_prompt = "Count from one to a thousand: one, two,", "Three colours:"
    _, tokenizer = reference_llm
    scheduler.step = recording
    scheduler.resize(0)  # hold admission until every caller is waiting, so that they arrive together
    try:
        stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
        greedy = [
            asyncio.ensure_future(
                stub.Generate(pb.GenerateRequest(prompt=p, params=GEN(max_new_tokens=n, temperature=0.0)))
            )
            for p, n in prompts.items()
        ]
        stream = stub.GenerateStream(
            pb.GenerateStreamRequest(prompt=cancelled_prompt, params=GEN(max_new_tokens=1000, temperature=0.0))
        )
        stream_started = asyncio.ensure_future(stream.read())
        for _ in range(6000):  # bounded: at most about a minute
            if scheduler.waiting == len(prompts) + 1:
                break
            await asyncio.sleep(0.01)
        scheduler.resize(len(prompts) + 2)
        received = [(await stream_started).text]
        while len(received) < 3:  # the others are decoding with it
            received.append((await stream.read()).text)
        late = await stub.Generate(
            pb.GenerateRequest(prompt=late_prompt, params=GEN(max_new_tokens=6, temperature=0.0))
        )
        stream.cancel()
        answers = await asyncio.gather(*greedy)
    finally:
        scheduler.step = step
        scheduler.resize(1)
    assert newcomers[0] == len(prompts) + 1  # all prefilled in the first step, in one pass
    assert 1 in newcomers[1:]  # the late one joined a running batch
    for (prompt, n), answer in zip(prompts.items(), answers, strict=True):
        want = reference(reference_llm, tokenizer(prompt)["input_ids"], n)
        assert answer.text == text_of(reference_llm, want), prompt
    assert late.text == text_of(reference_llm, reference(reference_llm, tokenizer(late_prompt)["input_ids"], 6))
    own = text_of(reference_llm, reference(reference_llm, tokenizer(cancelled_prompt)["input_ids"], 24))
    assert own.startswith("".join(received))


async def test_transform_with_the_instruct_model_uses_its_prompt_template(nlp_channel, reference_llm) -> None:
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    text = "The meeting moved from Monday to Tuesday because the room was booked."
    response = await stub.TransformText(
        pb.TransformTextRequest(
            task=pb.TEXT_TASK_SUMMARIZE,
            texts=[text, ""],
            instruction="In five words.",
            params=pb.GenerationParams(max_new_tokens=8, temperature=0.0),
        )
    )
    ids = chat_ids(reference_llm, instruct_messages("summarize", text, "In five words.", "", ""))
    want = reference(reference_llm, ids, 8)
    assert response.results[0].text == text_of(reference_llm, want)
    assert response.results[0].status.code == 0
    assert response.results[1].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "texts[1]" in response.results[1].status.message
    assert (response.usage.input_tokens, response.usage.output_tokens) == (len(ids), len(want))
    assert response.model.name == LLM


async def test_transform_with_an_encoder_decoder_equals_generate(nlp_channel, nlp_repository) -> None:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from tests.nlp.conftest import model_path

    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    texts = ["The cat sat on the mat all afternoon.", "Rain is expected tomorrow."]
    response = await stub.TransformText(
        pb.TransformTextRequest(
            model=common_pb2.ModelRef(name="tiny-seq2seq"),
            task=pb.TEXT_TASK_TRANSLATE,
            texts=texts,
            target_language="de",
            params=pb.GenerationParams(max_new_tokens=6, temperature=0.0),
        )
    )
    path = model_path(nlp_repository, "tiny-seq2seq")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForSeq2SeqLM.from_pretrained(path).eval()
    inputs = tokenizer([f"translate English to German: {t}" for t in texts], return_tensors="pt", padding=True)
    inputs.pop("token_type_ids", None)  # BART takes none
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    want = tokenizer.batch_decode(out, skip_special_tokens=True)
    assert [r.text for r in response.results] == want
    assert response.usage.input_tokens == int(inputs["attention_mask"].sum())


GEN = pb.GenerationParams
BAD_GENERATE = [
    (pb.GenerateRequest(params=GEN(max_new_tokens=1)), grpc.StatusCode.INVALID_ARGUMENT, "input"),
    (pb.GenerateRequest(prompt="", params=GEN(max_new_tokens=1)), grpc.StatusCode.INVALID_ARGUMENT, "prompt"),
    (
        pb.GenerateRequest(prompt="x", params=GEN(temperature=-1)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params.temperature",
    ),
    (
        pb.GenerateRequest(prompt="x", params=GEN(temperature=float("nan"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params.temperature",
    ),
    (pb.GenerateRequest(prompt="x", params=GEN(top_p=0)), grpc.StatusCode.INVALID_ARGUMENT, "params.top_p"),
    (pb.GenerateRequest(prompt="x", params=GEN(top_p=1.5)), grpc.StatusCode.INVALID_ARGUMENT, "params.top_p"),
    (
        pb.GenerateRequest(prompt="x", params=GEN(max_new_tokens=5000)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params.max_new_tokens",
    ),
    (pb.GenerateRequest(prompt="x", params=GEN(stop=["a"] * 9)), grpc.StatusCode.INVALID_ARGUMENT, "params.stop"),
    (
        pb.GenerateRequest(prompt="x", model=common_pb2.ModelRef(name="gpt-99")),
        grpc.StatusCode.NOT_FOUND,
        "model",
    ),
    (
        pb.GenerateRequest(prompt="x", model=common_pb2.ModelRef(name="vader")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "model",
    ),
    (
        pb.GenerateRequest(chat=pb.Conversation(messages=[pb.ChatMessage(role=pb.CHAT_ROLE_ASSISTANT, content="hi")])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "chat.messages",
    ),
    (
        pb.GenerateRequest(chat=pb.Conversation(messages=[pb.ChatMessage(content="hi")])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "chat.messages[0].role",
    ),
    (pb.GenerateRequest(prompt="word " * 9000), grpc.StatusCode.INVALID_ARGUMENT, "prompt"),
    # Within the model's context, past LUMEN_NLP_MAX_PROMPT_TOKENS (1,024): refused before any prefill.
    (pb.GenerateRequest(prompt="word " * 1100), grpc.StatusCode.INVALID_ARGUMENT, "prefills at most"),
    (
        pb.GenerateRequest(
            chat=pb.Conversation(messages=[pb.ChatMessage(role=pb.CHAT_ROLE_USER, content="word " * 1100)])
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "chat",
    ),
]


@pytest.mark.parametrize(("request_", "code", "field"), BAD_GENERATE)
async def test_bad_generate_requests_get_a_clear_status(nlp_channel, request_, code, field) -> None:
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await stub.Generate(request_)
    assert unary.value.code() is code
    assert field in unary.value.details()
    streamed = pb.GenerateStreamRequest()
    streamed.ParseFromString(request_.SerializeToString())  # same fields, same numbers
    with pytest.raises(grpc.aio.AioRpcError) as stream:
        async for _ in stub.GenerateStream(streamed):
            pass
    assert stream.value.code() is code


BAD_TRANSFORM = [
    (pb.TransformTextRequest(texts=["x"]), "task"),
    (pb.TransformTextRequest(task=pb.TEXT_TASK_TRANSLATE, texts=["x"]), "target_language"),
    (pb.TransformTextRequest(task=pb.TEXT_TASK_TRANSLATE, texts=["x"], target_language="english"), "target_language"),
    (pb.TransformTextRequest(task=pb.TEXT_TASK_REWRITE, texts=["x"]), "instruction"),
    (pb.TransformTextRequest(task=pb.TEXT_TASK_SUMMARIZE), "texts"),
    (pb.TransformTextRequest(task=pb.TEXT_TASK_SUMMARIZE, texts=["x"] * 17), "texts"),
    (
        pb.TransformTextRequest(
            model=common_pb2.ModelRef(name="tiny-seq2seq"),
            task=pb.TEXT_TASK_REWRITE,
            texts=["x"],
            instruction="shorter",
        ),
        "model",
    ),
    (
        pb.TransformTextRequest(
            model=common_pb2.ModelRef(name="tiny-seq2seq"),
            task=pb.TEXT_TASK_TRANSLATE,
            texts=["x"],
            target_language="fr",
        ),
        "target_language",
    ),
    (
        pb.TransformTextRequest(task=pb.TEXT_TASK_SUMMARIZE, texts=["x"], params=GEN(temperature=3)),
        "params.temperature",
    ),
    # The call shares LUMEN_NLP_MAX_NEW_TOKENS (1,024) and LUMEN_NLP_MAX_PROMPT_TOKENS (1,024) among its texts.
    (
        pb.TransformTextRequest(task=pb.TEXT_TASK_SUMMARIZE, texts=["x"] * 4, params=GEN(max_new_tokens=257)),
        "at most 256",
    ),
    (pb.TransformTextRequest(task=pb.TEXT_TASK_SUMMARIZE, texts=["word " * 300] * 4), "prefills at most"),
]


@pytest.mark.parametrize(("request_", "field"), BAD_TRANSFORM)
async def test_bad_transform_requests_name_the_field_and_service_keeps_serving(nlp_channel, request_, field) -> None:
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.TransformText(request_)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.value.details()
    ok = await stub.Generate(pb.GenerateRequest(prompt="Hi", params=GEN(max_new_tokens=1, temperature=0)))
    assert ok.usage.output_tokens == 1


async def test_unloading_the_llm_stops_its_scheduler_and_reloading_serves_again(nlp_channel, nlp_service) -> None:
    repository = common_pb2_grpc.ModelRepositoryServiceStub(nlp_channel)
    old = scheduler_of(nlp_service)
    await repository.UnloadModel(common_pb2.UnloadModelRequest(name=LLM))
    assert not old.running  # the scheduler's thread ended with the model
    stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Generate(pb.GenerateRequest(prompt="Hi", params=GEN(max_new_tokens=1)))
    assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    await repository.LoadModel(common_pb2.LoadModelRequest(name=LLM))
    ok = await stub.Generate(pb.GenerateRequest(prompt="Hi", params=GEN(max_new_tokens=1, temperature=0)))
    assert ok.usage.output_tokens == 1


async def test_transform_text_cancels_the_sibling_generations_when_one_fails(nlp_channel, nlp_service) -> None:
    """The test model runs one generation at a time: text 0's fails at its first step, and the
    other texts' generations (waiting for the model) are cancelled instead of run for nothing."""
    scheduler = scheduler_of(nlp_service)
    before = dict(scheduler.counts)
    step = scheduler.step
    failed: list[object] = []

    def failing(jobs) -> None:
        for job in jobs:
            if not failed or failed[0] is job:
                failed[:1] = [job]
                raise RuntimeError("the model broke on this text")
        step(jobs)

    scheduler.step = failing
    try:
        stub = pb_grpc.TextGenerationServiceStub(nlp_channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.TransformText(
                pb.TransformTextRequest(
                    task=pb.TEXT_TASK_SUMMARIZE,
                    texts=["The cat sat on the mat all day.", "Paris is the capital of France.", "Rain fell."],
                    params=pb.GenerationParams(max_new_tokens=200, temperature=0.0),
                ),
                timeout=120,
            )
        assert error.value.code() != grpc.StatusCode.OK
        for _ in range(200):  # the scheduler's thread ends the cancelled jobs just after the call
            if scheduler.counts[CANCELLED] >= before.get(CANCELLED, 0) + 2:
                break
            await asyncio.sleep(0.05)
    finally:
        scheduler.step = step
    assert scheduler.counts[CANCELLED] == before.get(CANCELLED, 0) + 2
    ended = {reason: n - before.get(reason, 0) for reason, n in scheduler.counts.items()}
    assert {reason: n for reason, n in ended.items() if n} == {"failed": 1, CANCELLED: 2}  # no sibling ran to its end
