"""Model repository: a folder of model directories, loaded and served by name.

Like Triton's and MLServer's: each sub-directory with a ``model.json`` is a
model; `load_all` loads and warms them at start; `load`/`unload` work at run
time, including on directories that appeared after start (trained models).
Every loaded model gets its own dynamic batcher.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.batcher import DynamicBatcher
from shared.device import Device
from shared.errors import FailedPrecondition, NotFound, Unavailable
from shared.model import CONFIG_FILE, Model, ModelConfig

log = logging.getLogger(__name__)

ModelFactory = Callable[[ModelConfig, str], Model]


class State(enum.Enum):
    UNLOADED = 1
    LOADING = 2
    READY = 3
    FAILED = 4


@dataclass
class Entry:
    config: ModelConfig
    state: State = State.UNLOADED
    error: str = ""
    model: Model | None = None
    batcher: DynamicBatcher[Any, Any] | None = None
    device: str = "cpu"

    async def predict(self, items: Sequence[Any]) -> list[Any]:
        if self.state is State.LOADING:  # it will be ready soon: a retry helps
            raise Unavailable(f"model {self.config.name!r} is loading")
        if self.state is not State.READY or self.batcher is None:
            raise FailedPrecondition(
                f"model {self.config.name!r} is {self.state.name.lower()}"
                f"{': ' + self.error if self.error else ''}; load it with ModelRepositoryService.LoadModel"
            )
        return await self.batcher.submit(items)


class ModelRepository:
    def __init__(self, root: Path, service: str, device: Device, factories: dict[str, ModelFactory]) -> None:
        self.root = root
        self.service = service
        self.device = device
        self.factories = factories
        self._entries: dict[str, Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def scan(self) -> dict[str, ModelConfig]:
        """Configs of every model directory now in the repository; broken ones are logged."""
        configs: dict[str, ModelConfig] = {}
        if not self.root.is_dir():
            log.warning("model repository %s does not exist", self.root)
            return configs
        for directory in sorted(p for p in self.root.iterdir() if (p / CONFIG_FILE).is_file()):
            try:
                config = ModelConfig.from_directory(directory)
            except (ValueError, OSError, KeyError) as exc:
                log.error("skipping %s: %s", directory, exc)
                continue
            configs[config.name] = config
        return configs

    async def load_all(self, only: Sequence[str] = ()) -> None:
        configs = self.scan()
        names = [n for n in configs if not only or n in only]
        for name in set(only) - set(configs):
            log.error("model %r asked for in settings is not in %s", name, self.root)
        for name in names:
            self._entries.setdefault(name, Entry(configs[name]))
        # Sequential: models on one device load faster one at a time than fighting for it.
        for name in names:
            await self.load(name, configs[name])

    async def load(self, name: str, config: ModelConfig | None = None) -> Entry:
        """Load (or reload) ``name`` from its directory; failures leave it FAILED, not raised."""
        if config is None:
            config = self.scan().get(name)
            if config is None:
                raise NotFound("model", name, "name")
        async with self._locks.setdefault(name, asyncio.Lock()):
            old = self._entries.get(name)
            entry = Entry(config, State.LOADING)
            factory = self.factories.get(config.framework)
            device = self._device_for(config)
            entry.device = device.configured
            self._entries[name] = entry if old is None or old.state is not State.READY else old
            try:
                if factory is None:
                    raise ValueError(f"no runtime for framework {config.framework!r} in the {self.service} service")
                model = factory(config, device.local)
                await asyncio.to_thread(model.load)
                await asyncio.to_thread(model.warm)
            except Exception as exc:  # a broken model must not take the service down
                log.exception("model %s failed to load", name)
                entry.state, entry.error = State.FAILED, f"{type(exc).__name__}: {exc}"
                if old is None or old.state is not State.READY:
                    self._entries[name] = entry
                return entry
            entry.model = model
            entry.batcher = DynamicBatcher(name, model.predict, config.batching)
            entry.batcher.start()
            entry.state = State.READY
            self._entries[name] = entry  # swap in: new calls go to the new model
            if old is not None and old.state is State.READY:
                await self._retire(old)
            log.info("model %s v%s ready on %s (%s)", name, config.version, device.configured, config.framework)
            return entry

    async def unload(self, name: str) -> Entry:
        entry = self._entries.get(name)
        if entry is None or entry.state is not State.READY:
            raise NotFound("loaded model", name, "name")
        async with self._locks.setdefault(name, asyncio.Lock()):
            self._entries[name] = Entry(entry.config, State.UNLOADED, device=entry.device)
            await self._retire(entry)
            return self._entries[name]

    async def close(self) -> None:
        for entry in list(self._entries.values()):
            if entry.state is State.READY:
                await self._retire(entry)

    async def _retire(self, entry: Entry) -> None:
        """Finish the calls queued for ``entry``, then free it."""
        if entry.batcher is not None:
            await entry.batcher.close()
        if entry.model is not None:
            await asyncio.to_thread(entry.model.unload)

    def _device_for(self, config: ModelConfig) -> Device:
        if config.device.strip().lower() == "cpu":
            return Device("cpu", "cpu")
        return self.device

    def entries(self, task: str = "") -> list[Entry]:
        known = {**{name: Entry(c) for name, c in self.scan().items()}, **self._entries}
        return [known[n] for n in sorted(known) if not task or known[n].config.task == task]

    def get(self, name: str, task: str, version: str = "") -> Entry:
        """The entry serving ``name`` (or the default model of ``task`` when empty)."""
        if not name:
            candidates = [e for e in self._entries.values() if e.config.task == task]
            if not candidates:
                raise NotFound(f"{task} model", "(default)", "model.name")
            candidates.sort(key=lambda e: (not e.config.default, e.state is not State.READY, e.config.name))
            entry = candidates[0]
        else:
            found = self._entries.get(name)
            if found is None or found.config.task != task:
                raise NotFound(f"{task} model", name, "model.name")
            entry = found
        if version and version != entry.config.version:
            raise NotFound(f"version of model {entry.config.name!r}", version, "model.version")
        return entry

    def all_ready(self) -> bool:
        return all(e.state is State.READY for e in self._entries.values())
