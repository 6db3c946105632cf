"""Channels to the gateway (plain, TLS or mTLS) and the service stubs the SDK hands out.

A client's service attributes (``client.text``, ``client.faces``...) are the generated stubs
behind a thin proxy: each call gets the client's deadline when it names none, the API key in
its metadata, and any failure re-raised as a `lumen.errors.LumenError`. Sync clients get
`grpc` stubs, async clients `grpc.aio` ones; the typing is the generated ``.pyi``'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor

from lumen.errors import LumenError

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
PemSource = bytes | str | Path | None


def _pem(source: PemSource) -> bytes | None:
    """PEM bytes as given, or read from a file path."""
    if source is None or isinstance(source, bytes):
        return source
    return Path(source).read_bytes()


@dataclass(frozen=True)
class Tls:
    """TLS to the gateway. Each PEM is bytes or a file path.

    ``root_certificates``: the CA that signed the gateway's certificate (None: the system's roots).
    ``certificate_chain`` and ``private_key``: this client's certificate, for a gateway that
    requires one (mTLS, LUMEN_GATEWAY_TLS_CLIENT_CA_FILE). ``server_name``: the name to verify in
    the gateway's certificate when it differs from the address's host.
    """

    root_certificates: PemSource = None
    certificate_chain: PemSource = None
    private_key: PemSource = None
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("certificate_chain and private_key go together (mTLS)")
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.root_certificates),
            private_key=_pem(self.private_key),
            certificate_chain=_pem(self.certificate_chain),
        )


def channel_options(tls: Tls | None) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def open_channel(address: str, tls: Tls | None, asynchronous: bool) -> Any:
    """A grpc (or grpc.aio) channel to ``address``, over TLS when ``tls`` is given."""
    options = channel_options(tls)
    if asynchronous:
        if tls is None:
            return grpc.aio.insecure_channel(address, options=options)
        return grpc.aio.secure_channel(address, tls.credentials(), options=options)
    if tls is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, tls.credentials(), options=options)


@dataclass(frozen=True)
class CallDefaults:
    """What every call of a client gets unless it says otherwise."""

    timeout: float | None
    metadata: tuple[tuple[str, str], ...]

    def kwargs(self, timeout: float | None, metadata: Sequence[tuple[str, str]] | None) -> dict[str, Any]:
        extra = tuple(metadata or ())
        names = {key for key, _ in extra}
        return {
            "timeout": self.timeout if timeout is None else timeout,
            "metadata": extra + tuple((k, v) for k, v in self.metadata if k not in names),
        }


def _sync_method(multicallable: Any, streaming_response: bool, defaults: CallDefaults) -> Callable[..., Any]:
    if not streaming_response:

        def unary(request: Any, timeout: float | None = None, metadata: Any = None, **kwargs: Any) -> Any:
            try:
                return multicallable(request, **defaults.kwargs(timeout, metadata), **kwargs)
            except grpc.RpcError as exc:
                raise LumenError.of(exc) from None

        return unary

    def stream(request: Any, timeout: float | None = None, metadata: Any = None, **kwargs: Any) -> Iterator[Any]:
        call = multicallable(request, **defaults.kwargs(timeout, metadata), **kwargs)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise LumenError.of(exc) from None
        finally:
            call.cancel()  # the caller stopped reading early: end the call (no-op once it is done)

    return stream


def _async_method(multicallable: Any, streaming_response: bool, defaults: CallDefaults) -> Callable[..., Any]:
    if not streaming_response:
        # ``timeout`` is grpc's own call parameter (the call's deadline), kept as grpc spells it.
        async def unary(request: Any, timeout: float | None = None, metadata: Any = None, **kwargs: Any) -> Any:  # noqa: ASYNC109
            try:
                return await multicallable(request, **defaults.kwargs(timeout, metadata), **kwargs)
            except grpc.RpcError as exc:
                raise LumenError.of(exc) from None

        return unary

    async def stream(
        request: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - grpc's deadline parameter, as above
        metadata: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        call = multicallable(request, **defaults.kwargs(timeout, metadata), **kwargs)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as exc:
            raise LumenError.of(exc) from None
        finally:
            call.cancel()

    return stream


class Service:
    """A generated stub whose methods apply the client's defaults and raise LumenError."""

    def __init__(self, stub: Any, descriptor: ServiceDescriptor, defaults: CallDefaults, asynchronous: bool) -> None:
        wrap = _async_method if asynchronous else _sync_method
        for method in descriptor.methods:
            setattr(self, method.name, wrap(getattr(stub, method.name), method.server_streaming, defaults))
        self.full_name = descriptor.full_name

    def __repr__(self) -> str:
        return f"<lumen service {self.full_name}>"
