"""Correctness under load: concurrent mixed calls (embeddings, image classification, greedy generation)
through a real gateway to real service processes; every answer is checked against what its own input
gets alone, and none may belong to another caller. LUMEN_LOAD_CALLS scales it (`python -m
tools.load_check --calls 10000` is the full run)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tools.load_check import check, suite_for_load

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.mark.timeout(1200)
def test_no_caller_gets_anothers_answer_under_mixed_load(tmp_path: Path) -> None:
    calls = int(os.environ.get("LUMEN_LOAD_CALLS", "400"))
    with suite_for_load(tmp_path) as address:
        tally = asyncio.run(check(address, calls, concurrency=32))
    assert tally.total == calls
    assert set(tally.calls) == {"embed", "classify", "generate"}  # every kind really ran
    assert dict(tally.errors) == {}
    assert dict(tally.foreign) == {}
