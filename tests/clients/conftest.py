"""The Node, Go and C++ clients, built from protos/, and the real suite they call.

The suite is the session fixture of tests/conftest.py (real processes on free ports).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
# How to run each client once built (build/ and clients/node/dist are generated).
COMMANDS = {
    "node": ["node", str(CLIENTS / "node" / "dist" / "src" / "client.js")],
    "go": [str(ROOT / "build" / "clients" / "go" / "bin" / "lumen-client")],
    "cpp": [str(ROOT / "build" / "clients" / "cpp" / "lumen-client")],
}


@pytest.fixture(scope="session")
def toolchains() -> None:
    """Debian's Go and gRPC C++ packages and the npm packages (idempotent, quick when present)."""
    result = subprocess.run(
        ["bash", str(CLIENTS / "install-toolchains.sh")], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        pytest.skip(f"clients/install-toolchains.sh could not install the toolchains:\n{result.stderr[-2000:]}")


@pytest.fixture(scope="session", params=sorted(COMMANDS))
def client(request: pytest.FixtureRequest, toolchains: None) -> tuple[str, list[str]]:
    """(language, command) of each client, built by its own build script (skipped when up to date)."""
    language = request.param
    result = subprocess.run(["bash", str(CLIENTS / language / "build.sh")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{language} client build failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return language, COMMANDS[language]
