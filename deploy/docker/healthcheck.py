"""Container health check: exit 0 when the server on localhost answers SERVING.

Usage: python /usr/local/bin/healthcheck.py PORT [SERVICE]
(compose's healthcheck; Kubernetes uses its native gRPC probes instead).
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

port = sys.argv[1]
service = sys.argv[2] if len(sys.argv) > 2 else ""
with grpc.insecure_channel(f"localhost:{port}") as channel:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=3)
    except grpc.RpcError as error:
        sys.exit(f"health check failed: {error.code().name}")
sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
