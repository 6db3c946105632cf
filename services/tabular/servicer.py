"""lumen.tabular.v1.TabularService: rows checked one by one, the good ones batched."""

from __future__ import annotations

import math

import grpc
import numpy as np

from lumen.tabular.v1 import tabular_pb2, tabular_pb2_grpc
from services.tabular.runtime_keras_tabular import TASK, TabularClassifier
from services.tabular.settings import TabularSettings
from shared.errors import OK_STATUS, InvalidArgument, status_proto_for
from shared.repository import Entry, ModelRepository
from shared.repository_servicer import model_info


class TabularServicer(tabular_pb2_grpc.TabularServiceServicer):
    def __init__(self, repository: ModelRepository, settings: TabularSettings) -> None:
        self.repository, self.settings = repository, settings

    async def Predict(
        self, request: tabular_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> tabular_pb2.PredictResponse:
        if not request.rows or len(request.rows) > self.settings.max_rows:
            raise InvalidArgument("rows", f"1 to {self.settings.max_rows} rows, got {len(request.rows)}")
        with self.repository.resolve(
            request.model.name, request.model.version, TASK, TabularClassifier, capability="tabular Predict"
        ) as lease:
            return await self._predict(request, lease.entry)

    async def _predict(self, request: tabular_pb2.PredictRequest, entry: Entry) -> tabular_pb2.PredictResponse:
        width = len(entry.config.parameters.get("features", []))
        labels = [str(label) for label in entry.config.parameters.get("labels", [])]
        out: list[tabular_pb2.RowPrediction | None] = [None] * len(request.rows)
        good: list[int] = []
        for i, row in enumerate(request.rows):
            problem = ""
            if len(row.values) != width:
                problem = f"has {len(row.values)} values; the model takes {width}"
            elif not all(math.isfinite(v) for v in row.values):
                problem = "values must be finite numbers"
            if problem:
                bad = InvalidArgument(f"rows[{i}].values", problem)
                out[i] = tabular_pb2.RowPrediction(status=status_proto_for(bad))
            else:
                good.append(i)
        if good:
            rows = [np.asarray(request.rows[i].values, dtype=np.float32) for i in good]
            for i, probs in zip(good, await entry.predict(rows), strict=True):
                order = np.argsort(-probs)
                out[i] = tabular_pb2.RowPrediction(
                    status=OK_STATUS,
                    label=labels[order[0]],
                    classes=[tabular_pb2.ClassProbability(label=labels[j], probability=float(probs[j])) for j in order],
                )
        return tabular_pb2.PredictResponse(predictions=out, model=model_info(entry, self.repository.service))
