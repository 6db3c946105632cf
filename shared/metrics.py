"""Prometheus metrics shared by every service, served on LUMEN_<SVC>_METRICS_PORT."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPC_TOTAL = Counter("lumen_rpc_total", "RPCs handled, by method and status code.", ["method", "code"])
RPC_LATENCY = Histogram(
    "lumen_rpc_duration_seconds",
    "Server-side RPC latency.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RPC_IN_FLIGHT = Gauge("lumen_rpc_in_flight", "RPCs being served now.")
BATCH_SIZE = Histogram(
    "lumen_batch_size", "Items per model batch.", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)
QUEUE_ITEMS = Gauge("lumen_batch_queue_items", "Items waiting for the model.", ["model"])
QUEUE_WAIT = Histogram(
    "lumen_batch_queue_wait_seconds",
    "Time a request waited before its batch ran.",
    ["model"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
# Time in the model per batch: its sum over wall time is how busy the model is (Triton's compute_infer duration).
BATCH_DURATION = Histogram(
    "lumen_batch_duration_seconds",
    "Time the model took to run one batch.",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
BATCH_REJECTED = Counter("lumen_batch_rejected_total", "Requests refused because the queue was full.", ["model"])


def serve_metrics(port: int) -> None:
    """Start the /metrics HTTP endpoint in a daemon thread when port > 0."""
    if port > 0:
        start_http_server(port)
