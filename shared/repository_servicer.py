"""lumen.common.v1.ModelRepositoryService, served by every model service."""

from __future__ import annotations

from lumen.common.v1 import common_pb2, common_pb2_grpc
from shared.errors import InvalidArgument, NotFound
from shared.grpc_types import Context
from shared.pages import page
from shared.repository import Entry, ModelRepository, State

_STATES = {
    State.UNLOADED: common_pb2.MODEL_STATE_UNLOADED,
    State.LOADING: common_pb2.MODEL_STATE_LOADING,
    State.READY: common_pb2.MODEL_STATE_READY,
    State.FAILED: common_pb2.MODEL_STATE_FAILED,
}


def model_info(entry: Entry, service: str) -> common_pb2.ModelInfo:
    config = entry.config
    return common_pb2.ModelInfo(
        name=config.name,
        version=config.version,
        task=config.task,
        framework=config.framework,
        device=entry.device,
        state=_STATES[entry.state],
        error=entry.error,
        service=service,
        batching=common_pb2.BatchingInfo(
            max_batch_size=config.batching.max_batch_size,
            max_delay_us=int(config.batching.max_delay_s * 1e6),
            max_queue_size=config.batching.max_queue_size,
        ),
        properties=entry.model.properties() if entry.model is not None else {},
    )


class ModelRepositoryServicer(common_pb2_grpc.ModelRepositoryServiceServicer):
    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    def _info(self, entry: Entry) -> common_pb2.ModelInfo:
        return model_info(entry, self.repository.service)

    async def ListModels(
        self, request: common_pb2.ListModelsRequest, context: Context
    ) -> common_pb2.ListModelsResponse:
        entries, next_token = page(
            self.repository.entries(request.task),
            lambda e: e.config.name,
            request.page_size,
            request.page_token,
            request.task,
        )
        return common_pb2.ListModelsResponse(models=[self._info(e) for e in entries], next_page_token=next_token)

    async def GetModel(self, request: common_pb2.GetModelRequest, context: Context) -> common_pb2.GetModelResponse:
        if not request.model.name:
            raise InvalidArgument("model.name", "is required")
        for entry in self.repository.entries():
            if entry.config.name == request.model.name:
                if request.model.version and request.model.version != entry.config.version:
                    raise NotFound("model version", request.model.version, "model.version")
                return common_pb2.GetModelResponse(model=self._info(entry))
        raise NotFound("model", request.model.name, "model.name")

    async def LoadModel(self, request: common_pb2.LoadModelRequest, context: Context) -> common_pb2.LoadModelResponse:
        if not request.name:
            raise InvalidArgument("name", "is required")
        entry = await self.repository.load(request.name)
        return common_pb2.LoadModelResponse(model=self._info(entry))

    async def UnloadModel(
        self, request: common_pb2.UnloadModelRequest, context: Context
    ) -> common_pb2.UnloadModelResponse:
        if not request.name:
            raise InvalidArgument("name", "is required")
        entry = await self.repository.unload(request.name)
        return common_pb2.UnloadModelResponse(model=self._info(entry))
