"""A short fuzz run on every server of the suite (real processes, gateway included).

`make fuzz` runs the long one (tests/fuzz/fuzzer.py, >= 200 calls per method).
"""

from __future__ import annotations

import zlib

import pytest

from tests.fuzz.fuzzer import SHORT, fuzz_server, summary
from tools.suite import Suite

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# Per server, seconds at most (after the round that passes it ends); the suite's
# start-up is shared with the other end-to-end tests.
BUDGET_S = 10.0
CALLS_PER_METHOD = 8


@pytest.mark.parametrize("name", ["nlp", "vision", "embeddings", "gateway"])
def test_fuzz_never_internal_unknown_crash_or_hang(suite: Suite, name: str) -> None:
    component = suite.components[name]
    report = fuzz_server(
        component.address,
        CALLS_PER_METHOD,
        BUDGET_S,
        seed=zlib.crc32(name.encode()),
        sizes=SHORT,
        alive=lambda: component.process.poll() is None,
    )
    lines = list(summary(name, report))
    print("\n".join(lines))
    assert min(sum(c.values()) for c in report.codes.values()) >= 1
    assert not report.failures, "\n".join(lines)
