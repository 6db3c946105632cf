"""Runs the whole suite as real processes: `make run`, and the end-to-end tests.

Starts the model services, the training service and the gateway, waits until each reports
SERVING on grpc.health.v1, and on Ctrl-C / SIGTERM stops them with SIGTERM so
each drains its in-flight calls.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.offline import OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[1]

# name -> (module, default port); the gateway starts last.
COMPONENTS = {
    "nlp": ("services.nlp.server", 50052),
    "vision": ("services.vision.server", 50053),
    "embeddings": ("services.embeddings.server", 50054),
    "tabular": ("services.tabular.server", 50056),
    "training": ("services.training.server", 50055),
    "gateway": ("gateway.server", 50051),
}
MODEL_SERVICES = ("nlp", "vision", "embeddings", "tabular")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_status(address: str, service: str = "", timeout: float = 1.0) -> int | None:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return None
        return reply.status


@dataclass
class Component:
    name: str
    port: int
    process: subprocess.Popen
    log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Suite:
    components: dict[str, Component] = field(default_factory=dict)

    def address(self, name: str = "gateway") -> str:
        return self.components[name].address

    def start_component(self, name: str, port: int, env: Mapping[str, str], log_dir: Path | None = None) -> Component:
        module, _ = COMPONENTS[name]
        prefix = f"LUMEN_{name.upper()}_"
        child_env = {**os.environ, **OFFLINE_ENV, **env, f"{prefix}PORT": str(port)}
        log = open(log_dir / f"{name}.log", "ab") if log_dir else None  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            [sys.executable, "-m", module], cwd=ROOT, env=child_env, stdout=log or None, stderr=subprocess.STDOUT
        )
        component = Component(name, port, process, log)
        self.components[name] = component
        return component

    def wait_serving(self, names: list[str] | None = None, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        for name in names or list(self.components):
            component = self.components[name]
            while health_status(component.address) != health_pb2.HealthCheckResponse.SERVING:
                if component.process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {component.process.returncode} before SERVING")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not SERVING after {timeout}s")
                time.sleep(0.2)

    def stop_component(self, name: str, timeout: float = 30.0) -> int | None:
        component = self.components[name]
        if component.process.poll() is None:
            component.process.send_signal(signal.SIGTERM)
            try:
                component.process.wait(timeout)
            except subprocess.TimeoutExpired:
                component.process.kill()
                component.process.wait()
        if component.log:
            component.log.close()
        return component.process.returncode

    def stop(self, timeout: float = 30.0) -> None:
        for name in reversed(list(self.components)):
            self.stop_component(name, timeout)


def start_suite(
    ports: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 180.0,
) -> Suite:
    """Start every component (model services first) and wait until all are SERVING."""
    chosen = {name: (ports or {}).get(name, default) for name, (_, default) in COMPONENTS.items()}
    backends = {f"LUMEN_GATEWAY_{n.upper()}_ADDRESS": f"127.0.0.1:{chosen[n]}" for n in COMPONENTS if n != "gateway"}
    # The training service hands each trained model to the service that serves it.
    backends |= {f"LUMEN_TRAINING_{n.upper()}_ADDRESS": f"127.0.0.1:{chosen[n]}" for n in MODEL_SERVICES}
    suite = Suite()
    try:
        for name in COMPONENTS:
            suite.start_component(name, chosen[name], {**backends, **(env or {})}, log_dir)
        suite.wait_serving(timeout=timeout)
    except BaseException:
        suite.stop()
        raise
    return suite


def main() -> None:
    suite = start_suite()
    print("\nlumen is up:")
    for component in suite.components.values():
        print(f"  {component.name:<11} {component.address}")
    print('\nTry: .venv/bin/lumen embed "some text"    (Ctrl-C stops the suite)\n', flush=True)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop and all(c.process.poll() is None for c in suite.components.values()):
        time.sleep(0.5)
    suite.stop()


if __name__ == "__main__":
    main()
