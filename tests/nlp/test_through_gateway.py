"""The nlp RPCs reach callers through the gateway, which forwards every nlp
RPC (unary and streaming) and composes AnalyzeText from them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from lumen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from shared.model_service import ModelService
from tests.in_process import gateway_channel as in_process_gateway

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def gateway_channel(nlp_service: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with in_process_gateway(nlp_address=f"127.0.0.1:{nlp_service.port}") as channel:
        yield channel


async def test_generation_unary_and_streamed_through_the_gateway(gateway_channel, nlp_channel) -> None:
    params = pb.GenerationParams(max_new_tokens=4, temperature=0.0)
    direct = await pb_grpc.TextGenerationServiceStub(nlp_channel).Generate(
        pb.GenerateRequest(prompt="Hi", params=params)
    )
    stub = pb_grpc.TextGenerationServiceStub(gateway_channel)
    forwarded = await stub.Generate(pb.GenerateRequest(prompt="Hi", params=params), timeout=60)
    assert forwarded.text == direct.text
    streamed = [m async for m in stub.GenerateStream(pb.GenerateStreamRequest(prompt="Hi", params=params), timeout=60)]
    assert "".join(m.text for m in streamed) == direct.text
    with pytest.raises(grpc.aio.AioRpcError) as error:  # the service's status and field travel through
        await stub.Generate(pb.GenerateRequest(prompt="Hi", params=pb.GenerationParams(top_p=2)), timeout=60)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "params.top_p" in error.value.details()


async def test_analyze_text_composes_nlp_features(gateway_channel, nlp_channel) -> None:
    text = "What a wonderful, moving film."
    gateway = gateway_pb2_grpc.GatewayServiceStub(gateway_channel)
    response = await gateway.AnalyzeText(
        gateway_pb2.AnalyzeTextRequest(
            text=text,
            features=[
                gateway_pb2.TextFeature(type=gateway_pb2.TEXT_FEATURE_TYPE_LANGUAGE),
                gateway_pb2.TextFeature(type=gateway_pb2.TEXT_FEATURE_TYPE_SENTIMENT),
                gateway_pb2.TextFeature(type=gateway_pb2.TEXT_FEATURE_TYPE_CLASSIFICATION),
            ],
        ),
        timeout=60,
    )
    analysis = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    language = await analysis.DetectLanguage(pb.DetectLanguageRequest(texts=[text]))
    sentiment = await analysis.AnalyzeSentiment(pb.AnalyzeSentimentRequest(texts=[text]))
    classes = await analysis.ClassifyText(pb.ClassifyTextRequest(texts=[text]))
    assert list(response.language.languages) == list(language.results[0].languages)
    assert response.sentiment.score == pytest.approx(sentiment.results[0].score)
    assert list(response.classification.labels) == list(classes.results[0].labels)
