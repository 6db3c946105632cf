"""The SDK and the CLI over TLS and mTLS to a real gateway (its LUMEN_GATEWAY_TLS_* settings),
with certificates made in the test by the openssl CLI; the calls cross to a real nlp service."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import pytest

from lumen import AsyncClient, Client, Tls, cli, errors
from shared.model_service import ModelService
from tests.certs import needs_openssl
from tests.in_process import running_gateway
from tests.sdk.conftest import backend_addresses

pytestmark = [pytest.mark.slow, needs_openssl]


def tls_settings(certs: Path, client_ca: bool) -> dict[str, str]:
    settings = {"tls_cert_file": str(certs / "server.pem"), "tls_key_file": str(certs / "server.key")}
    if client_ca:
        settings["tls_client_ca_file"] = str(certs / "ca.pem")
    return settings


def sentiment_label(target: str, tls: Tls | None) -> str:
    """One AnalyzeText through the sync client, run in a thread (the gateway serves on this loop)."""
    with Client(target, timeout=10, tls=tls) as client:
        return client.analyze_text("What a wonderful day.", ["sentiment"]).sentiment.label


async def refused(target: str, tls: Tls | None) -> errors.LumenError:
    async with AsyncClient(target, timeout=10, tls=tls) as client:
        with pytest.raises(errors.Unavailable) as error:
            await client.analyze_text("hello", ["sentiment"])
    return error.value


async def test_tls_with_the_gateways_ca(backends: dict[str, ModelService], certs: Path) -> None:
    async with running_gateway(**backend_addresses(backends), **tls_settings(certs, client_ca=False)) as gateway:
        target = f"127.0.0.1:{gateway.port}"
        # The CA as a path (sync) and as bytes (async): both verify the gateway's certificate.
        label = await asyncio.to_thread(sentiment_label, target, Tls(root_certificates=certs / "ca.pem"))
        async with AsyncClient(target, tls=Tls(root_certificates=(certs / "ca.pem").read_bytes())) as client:
            analysis = await client.analyze_text("What a wonderful day.", ["sentiment"])
        assert analysis.sentiment.label == label != 0 and analysis.sentiment.status.code == 0
        # Plain text to a TLS port, and TLS that trusts another CA: no connection.
        await refused(target, None)
        await refused(target, Tls(root_certificates=certs / "other-ca.pem"))


async def test_mtls_needs_a_client_certificate_the_gateway_trusts(
    backends: dict[str, ModelService], certs: Path
) -> None:
    mine = Tls(certs / "ca.pem", certs / "client.pem", certs / "client.key")
    async with running_gateway(**backend_addresses(backends), **tls_settings(certs, client_ca=True)) as gateway:
        target = f"127.0.0.1:{gateway.port}"
        assert await asyncio.to_thread(sentiment_label, target, mine)
        async with AsyncClient(target, tls=mine) as client:
            assert (await client.analyze_text("Fine.", ["sentiment"])).sentiment.status.code == 0
        await refused(target, Tls(root_certificates=certs / "ca.pem"))  # no client certificate
        await refused(target, Tls(certs / "ca.pem", certs / "stranger.pem", certs / "stranger.key"))  # other CA

        def run_cli(*args: str) -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(["--address", target, "--timeout", "10", *args])
            return code, out.getvalue(), err.getvalue()

        pem = ["--ca-cert", str(certs / "ca.pem")]
        with_cert = [*pem, "--client-cert", str(certs / "client.pem"), "--client-key", str(certs / "client.key")]
        assert await asyncio.to_thread(run_cli, *with_cert, "health") == (0, "SERVING\n", "")
        code, _, err = await asyncio.to_thread(run_cli, *pem, "health")
        assert code == 1 and err.startswith("ERROR UNAVAILABLE: ")
        code, _, err = await asyncio.to_thread(run_cli, *pem, "--client-cert", str(certs / "client.pem"), "health")
        assert code == 1 and "certificate_chain and private_key go together" in err


def test_a_certificate_without_its_key_is_refused_before_connecting(certs: Path) -> None:
    with pytest.raises(ValueError, match="go together"):
        Client("127.0.0.1:1", tls=Tls(certs / "ca.pem", certificate_chain=certs / "client.pem"))
