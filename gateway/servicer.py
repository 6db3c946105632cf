"""lumen.gateway.v1.GatewayService: what no single backend answers.

ListModels fans out to every backend in parallel and returns what answered,
with a status per backend. The composite calls live in their own modules
(analyze_text, annotate_image, semantic); GetUsage reads the key interceptor's
ledger (gateway.auth).
"""

from __future__ import annotations

import asyncio

import grpc
from google.rpc import code_pb2, status_pb2

from gateway.analyze_text import analyze_text
from gateway.annotate_image import annotate_image
from gateway.auth import Guard, caller
from gateway.backends import Backend, outgoing_metadata
from gateway.fanout import Budget
from gateway.scope import Scope
from gateway.semantic import index_documents, semantic_search
from gateway.training_usage import training_seconds
from gateway.usage_report import usage_report
from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.grpc_types import Context
from shared.pages import MAX_PAGE_SIZE, page


class GatewayServicer(pb_grpc.GatewayServiceServicer):
    def __init__(
        self, backends: dict[str, Backend], default_timeout_s: float, guard: Guard, deadline_margin_s: float = 0.1
    ) -> None:
        self.backends = backends
        self.default_timeout_s = default_timeout_s
        self.guard = guard
        self.deadline_margin_s = deadline_margin_s

    def _scope(self, context: Context, part_timeout_ms: int = 0) -> Scope:
        budget = Budget.of(context, self.default_timeout_s, self.deadline_margin_s, part_timeout_ms)
        return Scope(self.backends, caller(), outgoing_metadata(context), budget)

    async def AnalyzeText(self, request: pb.AnalyzeTextRequest, context: Context) -> pb.AnalyzeTextResponse:
        return await analyze_text(self._scope(context, request.part_timeout_ms), request)

    async def AnnotateImage(self, request: pb.AnnotateImageRequest, context: Context) -> pb.AnnotateImageResponse:
        return await annotate_image(self._scope(context, request.part_timeout_ms), request)

    async def IndexDocuments(self, request: pb.IndexDocumentsRequest, context: Context) -> pb.IndexDocumentsResponse:
        return await index_documents(self._scope(context), request)

    async def SemanticSearch(self, request: pb.SemanticSearchRequest, context: Context) -> pb.SemanticSearchResponse:
        return await semantic_search(self._scope(context, request.part_timeout_ms), request)

    async def GetUsage(self, request: pb.GetUsageRequest, context: Context) -> pb.GetUsageResponse:
        me = caller()
        key_id = request.key_id or me.id
        if key_id != me.id and not me.admin:
            raise PermissionDenied(f"key {me.id!r} may read only its own usage (key_id empty or {me.id!r})")
        key = self.guard.known_key(key_id)
        if key is None:
            raise NotFound("key", key_id, "key_id")
        period = await self.guard.meter.period(key)
        report = usage_report(key, period)
        report.usage.training_seconds = await training_seconds(
            self.backends.get("training"), key, period.start, period.end
        )
        return report

    async def ListModels(self, request: pb.ListModelsRequest, context: Context) -> pb.ListModelsResponse:
        """Each backend's models, as far as the caller's key may use that backend; load errors
        and backend failures in full for admin keys only (they name files and addresses)."""
        with_models = sorted(name for name, backend in self.backends.items() if backend.serves_models)
        if request.service and request.service not in with_models:
            raise InvalidArgument("service", f"must be one of {with_models} or empty")
        key = caller()
        if request.service and not key.may_use(request.service):
            raise PermissionDenied(f"key {key.id!r} may not use the {request.service} service")
        names = [request.service] if request.service else with_models
        allowed = [n for n in names if key.may_use(n)]
        timeout = context.time_remaining() or self.default_timeout_s
        metadata = outgoing_metadata(context)

        if request.page_size < 0:
            raise InvalidArgument("page_size", f"must be 0 or more, got {request.page_size}")

        async def one(name: str) -> list[common_pb2.ModelInfo]:
            """Every page of the backend's models."""
            stub = common_pb2_grpc.ModelRepositoryServiceStub(self.backends[name].channel)
            models: list[common_pb2.ModelInfo] = []
            token = ""
            while True:
                ask = common_pb2.ListModelsRequest(task=request.task, page_size=MAX_PAGE_SIZE, page_token=token)
                reply = await stub.ListModels(ask, timeout=timeout, metadata=metadata)
                models.extend(reply.models)
                token = reply.next_page_token
                if not token:
                    return models

        results = dict(
            zip(allowed, await asyncio.gather(*(one(n) for n in allowed), return_exceptions=True), strict=True)
        )
        response = pb.ListModelsResponse()
        models: list[common_pb2.ModelInfo] = []
        for name in names:
            result = results.get(name, [])  # missing: refused below, never read
            if name not in results:
                status = status_pb2.Status(
                    code=code_pb2.PERMISSION_DENIED, message=f"key {key.id!r} may not use the {name} service"
                )
            elif isinstance(result, grpc.aio.AioRpcError):
                message = result.details() or "" if key.admin else f"the {name} service answered {result.code().name}"
                status = status_pb2.Status(code=result.code().value[0], message=message)
            elif isinstance(result, BaseException):
                raise result
            else:
                status = status_pb2.Status(code=code_pb2.OK)
                for model in result:
                    if model.error and not key.admin:
                        model.error = "the model failed to load; an admin key sees why"
                models.extend(result)
            response.backends.append(pb.BackendStatus(service=name, status=status))
        found, response.next_page_token = page(
            models,
            lambda m: f"{m.service}/{m.name}",
            request.page_size,
            request.page_token,
            f"{request.service}/{request.task}",
        )
        response.models.extend(found)
        return response
