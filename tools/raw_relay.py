"""The floor of a Python gRPC hop, for make bench: a grpc.aio server that relays every
unary call to one backend as raw bytes, with its deadline, and nothing else (no
interceptors, metadata, trailers, keys or metrics). The gateway's hop is measured against it.

    python -m tools.raw_relay PORT BACKEND_ADDRESS
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import grpc
import grpc.aio


class _Relay(grpc.GenericRpcHandler):
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.methods: dict[str, Any] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes]:
        path: str = details.method
        method = self.methods.get(path) or self.methods.setdefault(path, self.channel.unary_unary(path))

        async def relay(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            return await method(request, timeout=context.time_remaining())  # type: ignore[no-any-return]

        return grpc.unary_unary_rpc_method_handler(relay)


async def serve(port: int, backend: str) -> None:
    async with grpc.aio.insecure_channel(backend) as channel:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_Relay(channel),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
