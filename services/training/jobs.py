"""Training jobs: validation at creation, the queue, the executor's events,
installation of the result, and the watch streams.

Every state change is written to the store before it is announced, so a
watcher never sees a state that a restart could take back. At start,
`recover` puts jobs back where they were: CANCELLING ones end CANCELLED,
RUNNING ones start again first (their recipe resumes from the last
checkpoint), QUEUED ones wait their turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from google.rpc import code_pb2

from lumen.training.v1 import training_pb2
from services.training import install
from services.training.datasets import Datasets
from services.training.executor import Executor
from services.training.recipes import RECIPES
from services.training.records import CANCELLED, CANCELLING, FAILED, QUEUED, RUNNING, SUCCEEDED, JobRecord
from services.training.settings import TrainingSettings
from services.training.store import JobStore
from shared.errors import FailedPrecondition, InvalidArgument, LumenError, NotFound, ResourceExhausted

log = logging.getLogger(__name__)
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class Jobs:
    def __init__(self, store: JobStore, datasets: Datasets, settings: TrainingSettings) -> None:
        self.store, self.datasets, self.settings = store, datasets, settings
        self.root = settings.data_path() / "jobs"
        self.executor: Executor | None = None
        self.watchers: dict[str, set[asyncio.Queue[JobRecord]]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.running: set[str] = set()
        self._kick_lock = asyncio.Lock()

    # --- requests
    def create(
        self, request: training_pb2.CreateTrainingJobRequest, owner: str = "", owner_limit: int = 0
    ) -> JobRecord:
        recipe = RECIPES.get(request.recipe)
        if recipe is None:
            raise InvalidArgument("recipe", f"unknown recipe {request.recipe!r}; recipes: {', '.join(sorted(RECIPES))}")
        if len(request.request_id) > 128:
            raise InvalidArgument("request_id", "at most 128 characters")
        if request.request_id:
            existing = self.store.job_for_request(request.request_id)
            if existing is not None:
                return existing
        if not MODEL_NAME.match(request.model_name):
            raise InvalidArgument("model_name", "1 to 64 of a-z, 0-9 and -, starting with a letter or digit")
        split = request.validation_split or 0.2
        if not 0.05 <= split <= 0.5:
            raise InvalidArgument("validation_split", f"must be 0 (0.2) or between 0.05 and 0.5, got {split:g}")
        hyper = recipe.effective(request.hyperparameters)
        dataset = self.datasets.get(request.dataset_id, "dataset_id")
        recipe.check_dataset(dataset, self.datasets.path(dataset.id))
        install.check_name(self.settings.repository(recipe.service), recipe, request.model_name)
        if len(self.store.jobs_in((QUEUED,))) >= self.settings.max_queued_jobs:
            raise ResourceExhausted(
                f"{self.settings.max_queued_jobs} jobs are queued already (max_queued_jobs)", subject="training-queue"
            )
        if owner_limit > 0:
            mine = [j for j in self.store.jobs_in((QUEUED, RUNNING, CANCELLING)) if j.owner == owner]
            if len(mine) >= owner_limit:
                raise ResourceExhausted(
                    f"key {owner!r} has {len(mine)} unfinished training jobs; its limit is {owner_limit}",
                    subject=f"key:{owner}",
                )
        job = JobRecord(
            id=uuid.uuid4().hex[:16],
            recipe=recipe.name,
            dataset_id=dataset.id,
            hyperparameters=hyper,
            model_name=request.model_name,
            validation_split=split,
            seed=request.seed,
            request_id=request.request_id,
            owner=owner,
        )
        job, created = self.store.create_job(job)
        if created:
            self._announce(job)
            self.kick()
        return job

    def get(self, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id) if job_id else None
        if job is None:
            raise NotFound("training job", job_id, "id")
        return job

    async def cancel(self, job_id: str) -> JobRecord:
        job = self.get(job_id)
        if job.ended:
            raise FailedPrecondition(f"job {job_id!r} has ended ({job.state}); there is nothing to cancel")
        if job.state == QUEUED and job.id not in self.running:
            return self._end(job, CANCELLED, code_pb2.CANCELLED, "cancelled before it started")
        if job.state in (QUEUED, RUNNING):  # QUEUED here: submitted, waiting in the cluster's queue
            job.state = CANCELLING
            self._save(job)
            if self.executor is not None:
                asyncio.get_running_loop().create_task(self.executor.cancel(job.id))
        return job

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if not job.ended:
            raise FailedPrecondition(f"job {job_id!r} is {job.state}; cancel it first")
        self.store.delete_job(job_id)
        shutil.rmtree(self.root / job_id, ignore_errors=True)

    async def watch(self, job_id: str) -> AsyncIterator[JobRecord]:
        queue: asyncio.Queue[JobRecord] = asyncio.Queue()
        self.watchers.setdefault(job_id, set()).add(queue)
        try:
            job = self.get(job_id)
            yield job
            while not job.ended:
                job = await queue.get()
                yield job
        finally:
            self.watchers.get(job_id, set()).discard(queue)

    # --- scheduling
    async def recover(self) -> None:
        for job in self.store.jobs_in((CANCELLING,)):
            self._end(job, CANCELLED, code_pb2.CANCELLED, "cancelled (the service restarted while it stopped)")
        for job in self.store.jobs_in((RUNNING,)):
            log.info("job %s was running when the service stopped: resuming it", job.id)
            await self._launch(job)
        self.kick()

    def kick(self) -> None:
        asyncio.get_running_loop().create_task(self._kick())

    async def _kick(self) -> None:
        async with self._kick_lock:
            while len(self.running) < self.settings.max_concurrent_jobs:
                # A QUEUED job may be submitted already (a suspended Kubernetes Job waiting for Kueue).
                queued = [j for j in self.store.jobs_in((QUEUED,)) if j.id not in self.running]
                if not queued or self.executor is None:
                    return
                job = queued[0]
                job.state, job.start_time = RUNNING, time.time()
                self._save(job)
                await self._launch(job)

    async def _launch(self, job: JobRecord) -> None:
        assert self.executor is not None
        recipe = RECIPES[job.recipe]
        dataset = self.datasets.get(job.dataset_id, "dataset_id")
        job_dir = self.root / job.id
        job_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "job_id": job.id,
            "recipe": recipe.name,
            "dataset_path": str(self.datasets.path(dataset.id)),
            "format": dataset.format,
            "label_column": dataset.label_column,
            "hyperparameters": job.hyperparameters,
            "validation_split": job.validation_split,
            "seed": job.seed,
            "threads": self.settings.threads,
        }
        (job_dir / "spec.json").write_text(json.dumps(spec, indent=2))
        self.running.add(job.id)
        self.results.pop(job.id, None)
        self.errors.pop(job.id, None)
        try:
            await self.executor.start(job.id, job_dir)
        except Exception as exc:
            self.running.discard(job.id)
            log.exception("job %s could not start", job.id)
            self._end(job, FAILED, code_pb2.UNAVAILABLE, f"the executor could not start it: {exc}")

    # --- executor callbacks
    async def on_event(self, job_id: str, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "result":
            self.results[job_id] = event
            return
        if kind == "error":
            self.errors[job_id] = str(event.get("message", ""))
            return
        job = self.store.get_job(job_id)
        if job is None or job.ended:
            return
        if kind == "progress":
            job.progress = {k: v for k, v in event.items() if k != "event"}
            self._save(job)
        elif kind == "state" and event.get("state") in {QUEUED, RUNNING} - {job.state} and job.state != CANCELLING:
            # The executor's queue (Kueue) holds or admits a submitted job (never one that ended or stops).
            job.state = event["state"]
            self._save(job)

    async def on_exit(self, job_id: str, code: int, log_tail: str) -> None:
        self.running.discard(job_id)
        job = self.store.get_job(job_id)
        try:
            if job is None or job.ended:
                return
            if job.state == CANCELLING:
                self._end(job, CANCELLED, code_pb2.CANCELLED, "cancelled while running")
            elif code == 0 and job_id in self.results:
                await self._succeed(job, self.results.pop(job_id))
            else:
                reason = self.errors.pop(job_id, "") or f"the training process exited with {code}: {log_tail[-500:]}"
                if code < 0 or code == 137:
                    reason = f"the training process was killed (signal {-code if code < 0 else 9}; out of memory?)"
                self._end(job, FAILED, code_pb2.ABORTED if "NaN" in reason else code_pb2.INTERNAL, reason)
        finally:
            self.kick()

    async def _succeed(self, job: JobRecord, output: dict[str, Any]) -> None:
        recipe = RECIPES[job.recipe]
        repository = self.settings.repository(recipe.service)
        try:
            version = await asyncio.to_thread(
                install.place, repository, recipe, job, self.root / job.id / "model", output
            )
            await install.load(self.settings.address(recipe.service), job.model_name, self.settings.backend_token_file)
        except LumenError as exc:
            self._end(job, FAILED, exc.code.value[0], f"trained, but not served: {exc.message}")
            return
        except OSError as exc:
            self._end(job, FAILED, code_pb2.INTERNAL, f"trained, but the model could not be written: {exc}")
            return
        job.result = {
            "service": recipe.service,
            "model_name": job.model_name,
            "model_version": version,
            "task": recipe.task,
            "metrics": {k: float(v) for k, v in output["metrics"].items()},
        }
        self._end(job, SUCCEEDED)

    # --- state
    def _end(self, job: JobRecord, state: str, code: int = 0, message: str = "") -> JobRecord:
        job.state, job.end_time = state, time.time()
        job.error = {"code": code, "message": message} if code else None
        self._save(job)
        log.info("job %s %s%s", job.id, state, f": {message}" if message else "")
        return job

    def _save(self, job: JobRecord) -> None:
        self.store.save_job(job)
        self._announce(job)

    def _announce(self, job: JobRecord) -> None:
        for queue in self.watchers.get(job.id, ()):
            queue.put_nowait(job)
