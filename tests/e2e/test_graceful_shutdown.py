"""SIGTERM on a real embeddings process: in-flight calls complete, new calls are refused,
and the process exits within its grace period."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from tools.suite import Suite, free_port, health_status

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

GRACE_S = 120


def test_sigterm_drains_in_flight_calls_and_refuses_new_ones(suite_models: Path, tmp_path: Path) -> None:
    suite = Suite()
    port = free_port()
    suite.start_component(
        "embeddings",
        port,
        {
            "LUMEN_EMBEDDINGS_MODEL_REPOSITORY": str(suite_models / "embeddings"),
            "LUMEN_EMBEDDINGS_GRACE_PERIOD_S": str(GRACE_S),
        },
        tmp_path,
    )
    try:
        suite.wait_serving()
        process = suite.components["embeddings"].process
        # Each call carries 32 texts: enough work that several are still running at SIGTERM.
        texts = [f"call {{}} sentence {i} " + "about serving models over gRPC " * 10 for i in range(32)]
        signalled = threading.Event()
        finished_after_signal: list[bool] = []

        def call(i: int) -> int:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.EmbeddingServiceStub(channel)
                response = stub.Embed(pb.EmbedRequest(texts=[t.format(i) for t in texts]), timeout=GRACE_S * 2)
                finished_after_signal.append(signalled.is_set())
                return len(response.embeddings)

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(call, i) for i in range(8)]
            # Wait until the server is busy with them: the first call has come back.
            while not finished_after_signal:
                time.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            signalled.set()
            refused = _call_after_sigterm(port)
            results = [f.result() for f in futures]
        assert results == [32] * 8  # every in-flight call completed
        assert any(finished_after_signal), "no call was still in flight at SIGTERM"
        assert refused is grpc.StatusCode.UNAVAILABLE
        assert process.wait(GRACE_S + 10) == 0  # exited within the grace period
    finally:
        suite.stop()


def _call_after_sigterm(port: int) -> grpc.StatusCode | None:
    """The status of a new call once the server has started draining.

    Health turns NOT_SERVING first; a call that still slipped in before the
    listener closed is served normally, so keep calling until one is refused.
    """
    address = f"127.0.0.1:{port}"
    while health_status(address) == health_pb2.HealthCheckResponse.SERVING:
        time.sleep(0.01)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        with grpc.insecure_channel(address) as channel:
            try:
                pb_grpc.EmbeddingServiceStub(channel).Embed(pb.EmbedRequest(texts=["late"]), timeout=GRACE_S)
            except grpc.RpcError as exc:
                return exc.code()
    return None
