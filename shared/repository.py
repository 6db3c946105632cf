"""Model repository: a folder of model directories, loaded and served by name.

Like Triton's and MLServer's: each sub-directory with a ``model.json`` is a
model; `load_all` loads and warms them at start; `load`/`unload` work at run
time, including on directories that appeared after start (trained models).
Only batched models get a dynamic batcher (see shared.model for the kinds).

Every call finds its model with `resolve` and holds it through the `Lease` it
returns (``with repository.resolve(...) as lease:``). A reload swaps the new
model in for new calls at once; the old one, like an unloaded one, is freed
only once the last lease on it is released, so a call never sees its model
torn down under it. Lifecycle changes of one name are serialised by a lock.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

from shared.batcher import DynamicBatcher
from shared.device import Device
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from shared.model import CONFIG_FILE, BatchedModel, Model, ModelConfig

log = logging.getLogger(__name__)

ModelFactory = Callable[[ModelConfig, str], Model]
M = TypeVar("M", bound=Model)


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
    holders: int = 0  # leases not yet released
    _idle: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def __post_init__(self) -> None:
        self._idle.set()

    def acquire(self) -> None:
        self.holders += 1
        self._idle.clear()

    def release(self) -> None:
        self.holders -= 1
        if self.holders == 0:
            self._idle.set()

    async def drained(self) -> None:
        """Returns once no lease holds this entry."""
        await self._idle.wait()

    async def predict(self, items: Sequence[Any]) -> list[Any]:
        """Through the model's dynamic batcher (batched models only)."""
        if self.batcher is None:
            raise FailedPrecondition(f"model {self.config.name!r} is not a batched model")
        return await self.batcher.submit(items)


class Lease(Generic[M]):
    """A call's hold on a ready model; the model is not freed while a lease holds it."""

    def __init__(self, entry: Entry, model: M) -> None:
        self.entry, self.model = entry, model
        self._held = True
        entry.acquire()

    async def predict(self, items: Sequence[Any]) -> list[Any]:
        return await self.entry.predict(items)

    def release(self) -> None:
        if self._held:
            self._held = False
            self.entry.release()

    def __enter__(self) -> Lease[M]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


class ModelRepository:
    def __init__(self, root: Path, service: str, device: Device, factories: dict[str, ModelFactory]) -> None:
        self.root = root
        self.service = service
        self.device = device
        self.factories = factories
        self._entries: dict[str, Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._retiring: set[asyncio.Task[None]] = set()

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

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def load(self, name: str, config: ModelConfig | None = None) -> Entry:
        """Load (or reload) ``name`` from its directory; failures leave it FAILED, not raised.

        A reload keeps the old model serving until the new one is warm, then
        swaps it in and frees the old one once its calls in flight are done."""
        if config is None:
            config = self.scan().get(name)
            if config is None:
                raise NotFound("model", name, "name")
        async with self._lock(name):
            old = self._entries.get(name)
            serving = old if old is not None and old.state is State.READY else None
            entry = Entry(config, State.LOADING)
            device = self._device_for(config)
            entry.device = device.configured
            self._entries[name] = serving or entry
            try:
                factory = self.factories.get(config.framework)
                if factory is None:
                    raise ValueError(f"no runtime for framework {config.framework!r} in the {self.service} service")
                model = factory(config, device.local)
                await asyncio.to_thread(model.load)
                await asyncio.to_thread(model.warm)
            except Exception as exc:  # a broken model must not take the service down
                log.exception("model %s failed to load", name)
                entry.state, entry.error = State.FAILED, f"{type(exc).__name__}: {exc}"
                self._entries[name] = serving or entry
                return entry
            entry.model = model
            if isinstance(model, BatchedModel):
                entry.batcher = DynamicBatcher(
                    name,
                    model.predict_prepared,
                    config.batching,
                    prepare=model.prepare if model.prepares else None,
                )
                entry.batcher.start()
            entry.state = State.READY
            self._entries[name] = entry  # swap in: new calls go to the new model
            if serving is not None:
                await self._retire(serving)
            log.info("model %s v%s ready on %s (%s)", name, config.version, device.configured, config.framework)
            return entry

    async def unload(self, name: str) -> Entry:
        """Stop new calls at once; answer when the calls in flight are done and the model is freed."""
        async with self._lock(name):  # read the entry under the lock: a load may be swapping it
            entry = self._entries.get(name)
            if entry is None or entry.state is not State.READY:
                raise NotFound("loaded model", name, "name")
            self._entries[name] = Entry(entry.config, State.UNLOADED, device=entry.device)
            await self._retire(entry)
            return self._entries[name]

    async def close(self) -> None:
        for entry in list(self._entries.values()):
            if entry.state is State.READY:
                await self._retire(entry)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _retire(self, entry: Entry) -> None:
        """Wait for every lease on ``entry``, finish its queued batches, then free it.

        Shielded: a caller that gives up (deadline) must not leave a model half freed."""
        task = asyncio.ensure_future(self._free(entry))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        await asyncio.shield(task)

    async def _free(self, entry: Entry) -> None:
        await entry.drained()
        if entry.batcher is not None:
            await entry.batcher.close()
        if entry.model is not None:
            await asyncio.to_thread(entry.model.unload)
        entry.state = State.UNLOADED

    def _device_for(self, config: ModelConfig) -> Device:
        if config.device.strip().lower() == "cpu":
            return Device("cpu", "cpu")
        return self.device

    def entries(self, task: str = "") -> list[Entry]:
        known = {**{name: Entry(c) for name, c in self.scan().items()}, **self._entries}
        return [known[n] for n in sorted(known) if not task or known[n].config.task == task]

    def resolve(
        self,
        name: str,
        version: str,
        task: str | Sequence[str],
        kind: type[M],
        *,
        field: str = "model",
        default: str = "",
        capability: str = "",
    ) -> Lease[M]:
        """The model serving a call, held: ``name`` (or, when empty, ``default`` if loaded, else
        the default model of the first task), checked for task, version, state and kind.

        NOT_FOUND naming ``<field>.name`` or ``.version`` for what is not there; INVALID_ARGUMENT
        naming ``<field>.name`` for a model of another task or one that is not a ``kind``
        (``capability`` says what it lacks); UNAVAILABLE while it loads (a retry helps);
        FAILED_PRECONDITION when it is unloaded or failed."""
        tasks = (task,) if isinstance(task, str) else tuple(task)
        if len(name) > 128:
            raise InvalidArgument(f"{field}.name", "has more than 128 characters")
        entry = self._find(name or (default if default in self._entries else ""), tasks, field)
        if version and version != entry.config.version:
            raise NotFound(f"version of model {entry.config.name!r}", version, f"{field}.version")
        label = entry.config.name
        if entry.state is State.LOADING:
            raise Unavailable(f"model {label!r} is loading")
        if entry.state is not State.READY or entry.model is None:
            raise FailedPrecondition(
                f"model {label!r} is {entry.state.name.lower()}{': ' + entry.error if entry.error else ''}; "
                "load it with ModelRepositoryService.LoadModel"
            )
        if not isinstance(entry.model, kind):
            lacks = capability or f"a {kind.__name__} interface"
            raise InvalidArgument(f"{field}.name", f"{label!r} ({entry.config.framework}) has no {lacks}")
        return Lease(entry, entry.model)

    def _find(self, name: str, tasks: tuple[str, ...], field: str) -> Entry:
        if not name:
            candidates = [e for e in self._entries.values() if e.config.task == tasks[0]]
            if not candidates:
                raise NotFound(f"{tasks[0]} model", "(default)", f"{field}.name")
            candidates.sort(key=lambda e: (not e.config.default, e.state is not State.READY, e.config.name))
            return candidates[0]
        entry = self._entries.get(name)
        if entry is None:
            what = f"{tasks[0]} model" if len(tasks) == 1 else f"{self.service} model"
            raise NotFound(what, name, f"{field}.name")
        if entry.config.task not in tasks:
            raise InvalidArgument(
                f"{field}.name",
                f"{name!r} is a {entry.config.task} model; this call needs a {' or '.join(tasks)} model",
            )
        return entry

    def all_ready(self) -> bool:
        return all(e.state is State.READY for e in self._entries.values())
