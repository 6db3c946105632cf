"""Tracing through a real gateway into a real nlp service (both in this process, port 0), spans
caught by OpenTelemetry's in-memory exporter; and JSON logs carrying request and trace ids.

The nlp service loads the two packaged models AnalyzeText's language and sentiment parts use
(py3langid, VADER): real models, no spaCy or MiniLM load time."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import grpc.aio
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lumen.gateway.v1 import gateway_pb2 as gpb
from lumen.gateway.v1 import gateway_pb2_grpc as gpb_grpc
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp import app, setup_models
from services.nlp.settings import NlpSettings
from shared import log as logs
from shared import tracing
from shared.model_service import ModelService, start
from tests.in_process import running_gateway

ANALYZE = "lumen.gateway.v1.GatewayService/AnalyzeText"
SENTIMENT = "lumen.nlp.v1.TextAnalysisService/AnalyzeSentiment"
LANGUAGE = "lumen.nlp.v1.TextAnalysisService/DetectLanguage"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
async def nlp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ModelService]:
    repository = tmp_path_factory.mktemp("nlp")
    setup_models.setup_packaged(repository)
    settings = NlpSettings(host="127.0.0.1", port=0, model_repository=str(repository), models=["vader", "py3langid"])
    service = await start("nlp", settings, app.FACTORIES, app.registrations)
    yield service
    await service.stop(0)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure("test", exporter=exporter)
    yield exporter
    tracing.disable()


@pytest.fixture
async def channel(nlp: ModelService) -> AsyncIterator[grpc.aio.Channel]:
    async with (
        running_gateway(nlp_address=f"127.0.0.1:{nlp.port}") as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        yield channel


def analyze_request() -> gpb.AnalyzeTextRequest:
    return gpb.AnalyzeTextRequest(
        text="What a wonderful, moving film.",
        features=[
            gpb.TextFeature(type=gpb.TEXT_FEATURE_TYPE_LANGUAGE),
            gpb.TextFeature(type=gpb.TEXT_FEATURE_TYPE_SENTIMENT),
        ],
    )


@contextlib.contextmanager
def json_logs() -> Iterator[list[dict]]:
    """Root logging as JSON (what LUMEN_*_LOG_FORMAT=json sets up) into a list, filled on exit."""
    stream, root = io.StringIO(), logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("test", "INFO", "json", stream)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


async def test_analyze_text_is_one_trace_from_gateway_to_backend(spans, channel) -> None:
    response = await gpb_grpc.GatewayServiceStub(channel).AnalyzeText(
        analyze_request(), timeout=30, metadata=(("traceparent", CLIENT_PARENT),)
    )
    assert response.sentiment.label and response.language.languages  # both parts answered
    by_name = {span.name: span for span in spans.get_finished_spans()}
    gateway, sentiment, language = by_name[ANALYZE], by_name[SENTIMENT], by_name[LANGUAGE]
    parts = [by_name["nlp/AnalyzeSentiment"], by_name["nlp/DetectLanguage"]]
    # One trace: the caller's, continued by the gateway and the backend.
    assert {f"{s.context.trace_id:032x}" for s in (gateway, sentiment, language, *parts)} == {CLIENT_TRACE}
    assert gateway.kind is SpanKind.SERVER and gateway.parent.span_id == int(CLIENT_PARENT.split("-")[2], 16)
    assert gateway.resource.attributes["service.name"] == "lumen-test"
    for part, backend in zip(parts, (sentiment, language), strict=True):
        assert part.kind is SpanKind.CLIENT and part.parent.span_id == gateway.context.span_id
        assert backend.kind is SpanKind.SERVER and backend.parent.span_id == part.context.span_id
        assert backend.attributes["rpc.grpc.status_code"] == 0
    assert gateway.attributes["rpc.service"] == "lumen.gateway.v1.GatewayService"
    assert gateway.attributes["rpc.method"] == "AnalyzeText"


async def test_forwarded_call_and_its_error_are_traced(spans, channel) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.AnalyzeSentiment(pb.AnalyzeSentimentRequest(texts=["fine"], model={"name": "absent"}), timeout=30)
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    # The backend ends its span after it has sent the status, so under load it may finish a moment after
    # the caller has the error: wait (bounded) for both spans.
    for _ in range(100):
        traced = [s for s in spans.get_finished_spans() if s.name == SENTIMENT]
        if len(traced) >= 2:
            break
        await asyncio.sleep(0.05)
    [gateway] = [s for s in traced if s.parent is None]
    [backend] = [s for s in traced if s.parent is not None]
    # No traceparent from the caller: the gateway starts the trace, the backend continues it.
    assert gateway.parent is None and backend.parent.span_id == gateway.context.span_id
    assert backend.context.trace_id == gateway.context.trace_id
    assert gateway.attributes["rpc.grpc.status_code"] == backend.attributes["rpc.grpc.status_code"] == 5
    assert gateway.status.is_ok  # NOT_FOUND is the caller's error, not the server's


async def test_off_json_logs_carry_the_request_id_and_no_trace(channel) -> None:
    assert not tracing.enabled()
    with json_logs() as lines:
        call = pb_grpc.TextAnalysisServiceStub(channel).AnalyzeSentiment(
            pb.AnalyzeSentimentRequest(texts=["fine"]), timeout=30, metadata=(("traceparent", CLIENT_PARENT),)
        )
        await call
        request_id = dict(await call.trailing_metadata())["x-request-id"]
    access = [e for e in lines if e["logger"] == "lumen.access" and SENTIMENT in e["message"]]
    assert len(access) == 2  # the gateway's line and the backend's, one request id
    assert {e["request_id"] for e in access} == {request_id}
    assert {e["trace_id"] for e in access} == {None}  # tracing off: no trace of ours


async def test_json_logs_carry_request_and_trace_ids(spans, channel) -> None:
    with json_logs() as lines:
        call = gpb_grpc.GatewayServiceStub(channel).AnalyzeText(analyze_request(), timeout=30)
        await call
        request_id = dict(await call.trailing_metadata())["x-request-id"]
    access = [e for e in lines if e["logger"] == "lumen.access"]
    by_name = {span.name: span for span in spans.get_finished_spans()}
    trace_id = f"{by_name[ANALYZE].context.trace_id:032x}"
    # The gateway's line and each backend call's: one request id, one trace, each its own span.
    assert len(access) == 3
    assert {e["request_id"] for e in access} == {request_id}
    assert {e["trace_id"] for e in access} == {trace_id}
    assert {e["span_id"] for e in access} == {
        f"{by_name[n].context.span_id:016x}" for n in (ANALYZE, SENTIMENT, LANGUAGE)
    }
    assert all(e["service"] == "test" and e["level"] == "INFO" and e["ts"].endswith("Z") for e in access)


def test_tracing_stays_off_without_an_endpoint(monkeypatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.configure("test")
    assert tracing.server_span("/a.B/C", ()) is None
    assert tracing.with_context((("traceparent", CLIENT_PARENT),)) == (("traceparent", CLIENT_PARENT),)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    assert tracing.endpoint_of("") == "http://127.0.0.1:4317"
    assert tracing.endpoint_of("http://collector:4317") == "http://collector:4317"


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: what an OpenTelemetry Collector's otlp receiver is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    async def Export(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


async def test_spans_are_exported_over_otlp_to_the_endpoint_set(nlp, monkeypatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    collector = _Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        assert tracing.configure("gateway", f"http://127.0.0.1:{port}")
        async with (
            running_gateway(nlp_address=f"127.0.0.1:{nlp.port}") as gateway,
            grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
        ):
            await gpb_grpc.GatewayServiceStub(channel).AnalyzeText(analyze_request(), timeout=30)
        await asyncio.to_thread(tracing.disable)  # flushes the batch: the exporter calls our collector
    finally:
        tracing.disable()
        await server.stop(0)
    exported = [
        (resource.resource, span)
        for request in collector.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {span.name for _, span in exported}
    assert {ANALYZE, SENTIMENT, LANGUAGE} <= names
    assert len({span.trace_id for _, span in exported if span.name in (ANALYZE, SENTIMENT, LANGUAGE)}) == 1
    services = {a.value.string_value for r, _ in exported for a in r.attributes if a.key == "service.name"}
    assert services == {"lumen-gateway"}  # one process, one provider: the gateway's name
