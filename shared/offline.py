"""The offline environment every lumen process runs with, set in one place.

No model hub at run time: a model that is not on disk fails at once instead of
after a network wait. Applied by every server's entry point before any model
library is imported, and by the tests and tools that start processes (the
Makefile exports the same names for the set-up scripts it runs).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # libgomp's idle threads sleep instead of spinning for ~0.3 s after each parallel region:
    # a spinning worker burns the core the server's event loop (or a co-located process) needs.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def apply(environ: MutableMapping[str, str] = os.environ) -> MutableMapping[str, str]:
    """Set each offline variable the environment does not already set; the environment."""
    for key, value in OFFLINE_ENV.items():
        environ.setdefault(key, value)
    return environ
