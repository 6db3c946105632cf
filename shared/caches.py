"""Where the libraries a model service imports write their caches.

Hugging Face, torch, matplotlib (imported by TensorFlow and Keras helpers),
numba, Keras and TensorFlow write caches under $HOME or beside their own files
by default. Under a read-only root filesystem (deploy/k8s, compose) those
writes fail, so the `cache_dir` setting names one writable folder for all of
them. It is applied before any framework is imported; a variable already set
in the environment wins, so users can still point one library elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

# Variable -> sub-folder of cache_dir.
CACHE_VARIABLES = {
    "XDG_CACHE_HOME": "xdg",
    "HF_HOME": "huggingface",
    "TORCH_HOME": "torch",
    "MPLCONFIGDIR": "matplotlib",
    "NUMBA_CACHE_DIR": "numba",
    "KERAS_HOME": "keras",
    "TFHUB_CACHE_DIR": "tfhub",
}


def point_caches(cache_dir: str, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set every cache variable not already set to a folder under ``cache_dir``.

    Returns what was set. An empty ``cache_dir`` leaves the libraries' defaults.
    """
    env = os.environ if environ is None else environ
    if not cache_dir:
        return {}
    chosen: dict[str, str] = {}
    for variable, folder in CACHE_VARIABLES.items():
        if env.get(variable):
            continue
        path = Path(cache_dir) / folder
        path.mkdir(parents=True, exist_ok=True)
        env[variable] = chosen[variable] = str(path)
    return chosen
