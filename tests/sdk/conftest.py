"""A real gateway in this process over real nlp, embeddings and vision services (port 0), each
loading only the packaged models these tests call: VADER and py3langid (nlp), all-MiniLM-L6-v2
(embeddings), dlib's HOG face detector (vision). Certificates for TLS come from tests.certs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.server import Gateway
from shared.model_service import ModelService
from tests.certs import CLIENT, SERVER, issue, make_ca, make_certs
from tests.in_process import running_gateway, start_model_services


@pytest.fixture(scope="module")
async def backends(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, ModelService]]:
    from services.embeddings import setup_models as embeddings_models
    from services.nlp import setup_models as nlp_models
    from services.vision import setup_models as vision_models

    started = await start_model_services(
        tmp_path_factory.mktemp("sdk"),
        {
            "embeddings": embeddings_models.write_sentence_model,
            "nlp": nlp_models.setup_packaged,
            "vision": vision_models.write_face_models,
        },
        {"nlp": ["vader", "py3langid"], "vision": ["dlib-hog-face"]},
    )
    yield started
    for service in started.values():
        await service.stop(0)


def backend_addresses(backends: dict[str, ModelService]) -> dict[str, str]:
    return {f"{name}_address": f"127.0.0.1:{service.port}" for name, service in backends.items()}


@pytest.fixture(scope="module")
async def gateway(backends: dict[str, ModelService]) -> AsyncIterator[Gateway]:
    async with running_gateway(**backend_addresses(backends), default_timeout_s=60.0) as running:
        yield running


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem; server.pem/.key (localhost, 127.0.0.1); client.pem/.key; and stranger.pem/.key
    signed by another CA (a client certificate the gateway must refuse)."""
    directory = make_certs(tmp_path_factory.mktemp("certs"), {"server": SERVER, "client": CLIENT})
    make_ca(directory, "other-ca")
    issue(directory, "stranger", CLIENT, ca="other-ca")
    return directory
