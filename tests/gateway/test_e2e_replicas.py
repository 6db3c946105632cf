"""Two embeddings replicas behind one gateway (real processes): round_robin sends calls to both,
and when one dies the other takes every call.

The gateway's target ``ipv4:127.0.0.1:p1,127.0.0.1:p2`` goes through the same
round_robin policy as ``dns:///embeddings:50054`` with one A record per pod
(a headless Service). Each replica counts what it served in its own
Prometheus metrics.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.embeddings.v1 import embeddings_pb2_grpc as epb_grpc
from tests.gateway.conftest import backend_env, read_metric, setup_repository
from tools.suite import Suite, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

EMBED = "/lumen.embeddings.v1.EmbeddingService/Embed"


@dataclass
class Replicas:
    replicas: list[Suite]  # one Suite per replica: a Suite holds one process per component name
    metrics_ports: list[int]
    gateway: Suite

    def served(self, replica: int) -> float:
        """Embed calls replica ``replica`` answered OK, from its own metrics."""
        return read_metric(self.metrics_ports[replica], "lumen_rpc_total", method=EMBED, code="OK")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("e2e-replicas")
    repository = setup_repository("embeddings", root / "models")
    suites, ports, metrics_ports = [Suite(), Suite()], [free_port(), free_port()], [free_port(), free_port()]
    gateway = Suite()
    try:
        for i, suite in enumerate(suites):
            env = {
                **backend_env("embeddings", repository, root / f"replica-{i}"),
                "LUMEN_EMBEDDINGS_METRICS_PORT": str(metrics_ports[i]),
            }
            suite.start_component("embeddings", ports[i], env, root)
        for suite in suites:
            suite.wait_serving()
        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)
        gateway.start_component("gateway", free_port(), {"LUMEN_GATEWAY_EMBEDDINGS_ADDRESS": target}, root)
        gateway.wait_serving()
        yield Replicas(suites, metrics_ports, gateway)
    finally:
        for suite in (gateway, *suites):
            suite.stop()


def embed_through_gateway(replicas: Replicas, calls: int) -> None:
    with grpc.insecure_channel(replicas.gateway.address()) as channel:
        stub = epb_grpc.EmbeddingServiceStub(channel)
        for i in range(calls):
            assert len(stub.Embed(epb.EmbedRequest(texts=[f"call {i}"]), timeout=30).embeddings) == 1


def test_both_replicas_receive_calls(replicas: Replicas) -> None:
    before = [replicas.served(0), replicas.served(1)]
    embed_through_gateway(replicas, 20)
    gained = [replicas.served(0) - before[0], replicas.served(1) - before[1]]
    assert sum(gained) == 20
    assert all(g > 0 for g in gained), gained


def test_a_dead_replica_leaves_the_calls_to_the_other(replicas: Replicas) -> None:
    survivor_before = replicas.served(0)
    dead = replicas.replicas[1].components["embeddings"].process
    dead.send_signal(signal.SIGKILL)
    dead.wait(30)
    embed_through_gateway(replicas, 10)  # every call succeeds: retried or routed to the live replica
    assert replicas.served(0) - survivor_before == 10
