"""lumen.nlp.v1.TextGenerationService: protos in, the Generation data plane, protos out.

GenerateStream yields one message per text delta as the scheduler produces
it; when the caller cancels, grpc cancels this coroutine, which leaves the
event iterator and so cancels the generation (see generation_scheduler).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import grpc

from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp.convert import FINISH, TASKS, decoding, generation_input
from services.nlp.generation import Generation, Prepared
from services.nlp.generation_scheduler import Finished
from shared.errors import InvalidArgument
from shared.repository_servicer import model_info
from shared.results import item_messages


class TextGenerationServicer(pb_grpc.TextGenerationServiceServicer):
    def __init__(self, generation: Generation, service: str) -> None:
        self.generation = generation
        self.service = service

    async def _prepare(self, request: pb.GenerateRequest | pb.GenerateStreamRequest) -> Prepared:
        prompt, chat = generation_input(request)
        return await self.generation.prepare(
            request.model.name, request.model.version, prompt, chat, decoding(request.params)
        )

    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.GenerateResponse:
        with await self._prepare(request) as prepared:
            result = await self.generation.generate(prepared)
        return pb.GenerateResponse(
            text=result.text,
            finish_reason=FINISH[result.finish_reason],
            stop_sequence=result.stop_sequence,
            seed=result.seed,
            usage=common_pb2.Usage(input_tokens=result.prompt_tokens, output_tokens=result.output_tokens),
            model=model_info(prepared.entry, self.service),
        )

    async def GenerateStream(
        self, request: pb.GenerateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        with await self._prepare(request) as prepared:  # holds the model until the stream ends
            async with aclosing(self._stream(prepared)) as messages:
                async for message in messages:
                    yield message

    async def _stream(self, prepared: Prepared) -> AsyncIterator[pb.GenerateStreamResponse]:
        job = prepared.job
        # Each message carries the usage since the previous one (the first: the prompt's
        # tokens too), counted from what the model computed, so whoever relays the stream
        # (the gateway) can bill and enforce quotas as it goes, and bills a stream
        # cancelled or failed midway for what it cost.
        billed = common_pb2.Usage()

        def usage_since(total_output: int) -> common_pb2.Usage:
            delta = common_pb2.Usage(
                input_tokens=len(job.prompt_ids) - billed.input_tokens,
                output_tokens=max(total_output - billed.output_tokens, 0),
            )
            billed.input_tokens += delta.input_tokens
            billed.output_tokens += delta.output_tokens
            return delta

        async with aclosing(self.generation.events(prepared)) as events:
            async for event in events:
                if isinstance(event, Finished):
                    result = event.result
                    yield pb.GenerateStreamResponse(
                        finish_reason=FINISH[result.finish_reason],
                        stop_sequence=result.stop_sequence,
                        seed=result.seed,
                        usage=usage_since(result.output_tokens),
                        model=model_info(prepared.entry, self.service),
                    )
                else:
                    yield pb.GenerateStreamResponse(
                        text=event.text, token_ids=event.token_ids, usage=usage_since(len(job.generated))
                    )

    async def TransformText(
        self, request: pb.TransformTextRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransformTextResponse:
        task = TASKS.get(request.task, "")
        if request.task and not task:
            raise InvalidArgument("task", f"unknown task {request.task}")
        answer = await self.generation.transform(
            request.model.name,
            request.model.version,
            task,
            list(request.texts),
            request.instruction,
            request.source_language,
            request.target_language,
            decoding(request.params),
        )
        results = item_messages(
            answer.results, pb.TransformedText, lambda r: {"text": r.text, "finish_reason": FINISH[r.finish_reason]}
        )
        return pb.TransformTextResponse(
            results=results,
            model=model_info(answer.entry, self.service),
            usage=common_pb2.Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens),
        )
