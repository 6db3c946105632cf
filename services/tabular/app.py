"""What the tabular service serves: dense nets on feature rows (trained by the
training service's tabular-dense recipe).

Why a service of its own: feature rows are neither text, images nor vectors,
so no existing service owns them; the training service stays a control plane
that never holds a model in memory (it can run where no model runs, e.g. as
Kubernetes Jobs), and this service gets the same repository, batching, health
and device setting as every model service, for the price of one small process.
"""

from __future__ import annotations

from lumen.tabular.v1 import tabular_pb2, tabular_pb2_grpc
from services.tabular import runtime_keras_tabular
from services.tabular.servicer import TabularServicer
from services.tabular.settings import TabularSettings
from shared.repository import ModelFactory, ModelRepository
from shared.server import Registration

FACTORIES: dict[str, ModelFactory] = {runtime_keras_tabular.FRAMEWORK: runtime_keras_tabular.TabularClassifier}


def registrations(repository: ModelRepository, settings: TabularSettings) -> list[Registration]:  # type: ignore[override]
    return [
        Registration(
            tabular_pb2_grpc.add_TabularServiceServicer_to_server,
            TabularServicer(repository, settings),
            tabular_pb2.DESCRIPTOR.services_by_name["TabularService"].full_name,
        )
    ]
