"""lumen.gateway.v1.GatewayService: what no single backend answers.

ListModels fans out to every backend in parallel and returns what answered,
with a status per backend. The composite calls (AnalyzeText, AnnotateImage,
IndexDocuments, SemanticSearch) and GetUsage come with the gateway issue; until
then the generated base class answers UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio

import grpc
from google.rpc import code_pb2, status_pb2

from gateway.backends import Backend, outgoing_metadata
from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.gateway.v1 import gateway_pb2 as pb
from lumen.gateway.v1 import gateway_pb2_grpc as pb_grpc
from shared.errors import InvalidArgument


class GatewayServicer(pb_grpc.GatewayServiceServicer):
    def __init__(self, backends: dict[str, Backend], default_timeout_s: float) -> None:
        self.backends = backends
        self.default_timeout_s = default_timeout_s

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        if request.service and request.service not in self.backends:
            raise InvalidArgument("service", f"must be one of {sorted(self.backends)} or empty")
        names = [request.service] if request.service else sorted(self.backends)
        timeout = context.time_remaining() or self.default_timeout_s
        metadata = outgoing_metadata(context)

        async def one(name: str) -> common_pb2.ListModelsResponse:
            stub = common_pb2_grpc.ModelRepositoryServiceStub(self.backends[name].channel)
            return await stub.ListModels(
                common_pb2.ListModelsRequest(task=request.task), timeout=timeout, metadata=metadata
            )

        results = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
        response = pb.ListModelsResponse()
        for name, result in zip(names, results, strict=True):
            if isinstance(result, grpc.aio.AioRpcError):
                status = status_pb2.Status(code=result.code().value[0], message=result.details() or "")
            elif isinstance(result, BaseException):
                raise result
            else:
                status = status_pb2.Status(code=code_pb2.OK)
                response.models.extend(result.models)
            response.backends.append(pb.BackendStatus(service=name, status=status))
        return response
