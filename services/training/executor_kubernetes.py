"""Kubernetes executor: each job a batch/v1 Job (services.training.kubernetes_job) in the cluster.

The Job's pod runs the same worker on the same spec.json as the local
executor, on the volume this service shares with it, and appends its events
to ``<job dir>/events.jsonl`` there: this executor reads them from that file
(progress, result, error) and follows the Job itself through one watch on
the API server (suspended: QUEUED, running, Complete, Failed, deleted).

Jobs outlive this service: on a restart, `start` of a job whose Job exists
(409 Conflict) follows that Job again instead of making another, reading its
events from the last "started" mark in the file. A restarted pod (an OOM
kill, a lost node, a Kueue preemption) resumes from the last checkpoint on
the volume like a restarted local job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.training.executor import OnEvent, OnExit
from services.training.kubernetes_api import ApiException, JobApi, connect
from services.training.kubernetes_job import SELECTOR, job_id_of, job_name, job_state, render
from services.training.records import FAILED, SUCCEEDED
from services.training.settings import TrainingSettings
from services.training.worker import EXIT_FAILED, STARTED

log = logging.getLogger(__name__)
WATCH_RETRY_S = (1.0, 30.0)  # first and longest pause before listing and watching again


@dataclass
class Followed:
    """One job whose Job this executor follows."""

    job_id: str
    events: Path
    offset: int  # bytes of events.jsonl already read
    created: bool = False  # the API server has it (a list without it means it was deleted)
    state: str = ""  # last state reported (QUEUED or RUNNING)
    cancelling: bool = False
    partial: bytes = b""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    tail: asyncio.Task[None] | None = None


class KubernetesExecutor:
    def __init__(
        self,
        on_event: OnEvent,
        on_exit: OnExit,
        settings: TrainingSettings,
        api: JobApi | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.on_event, self.on_exit, self.settings = on_event, on_exit, settings
        self.api, self.poll_s = api, poll_s
        self.followed: dict[str, Followed] = {}
        self.watcher: asyncio.Task[None] | None = None
        self.finishing: set[asyncio.Task[None]] = set()

    async def _connected(self) -> JobApi:
        if self.api is None:
            self.api = await connect(self.settings.kubernetes_namespace)
        return self.api

    # --- Executor
    async def start(self, job_id: str, job_dir: Path) -> None:
        api = await self._connected()
        manifest = render(job_id, job_dir, self.settings)
        events = job_dir / "events.jsonl"
        follow = Followed(job_id, events, _size(events))
        self.followed[job_id] = follow
        try:
            await api.create(manifest)
        except ApiException as exc:
            if exc.status != 409:
                self.followed.pop(job_id, None)
                raise RuntimeError(f"the Kubernetes API refused the Job: {exc.status} {exc.reason}") from None
            follow.offset = _last_start(events)  # made by this service before a restart: follow it again
            log.info("job %s: its Job %s exists already; following it", job_id, job_name(job_id))
        except BaseException:
            self.followed.pop(job_id, None)
            raise
        follow.created = True
        follow.tail = asyncio.get_running_loop().create_task(self._tail(follow))
        if self.watcher is None or self.watcher.done():
            self.watcher = asyncio.get_running_loop().create_task(self._watch())
        log.info("job %s submitted as Job %s/%s", job_id, self.settings.kubernetes_namespace, job_name(job_id))

    async def cancel(self, job_id: str) -> None:
        follow = self.followed.get(job_id)
        if follow is None:
            return
        follow.cancelling = True
        # Foreground: the Job is gone (DELETED) only once its pods are, so nothing writes to the job folder after.
        await (await self._connected()).delete(job_name(job_id))

    async def close(self) -> None:
        """Stop following; the Jobs go on in the cluster, and a restarted service follows them again."""
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        for task in [*self.finishing, *(f.tail for f in self.followed.values() if f.tail is not None)]:
            task.cancel()
        self.followed.clear()
        if self.api is not None:
            await self.api.close()

    # --- the Jobs, from the API server
    async def _watch(self) -> None:
        assert self.api is not None
        pause = WATCH_RETRY_S[0]
        while self.followed:
            try:
                known = {j for j, f in self.followed.items() if f.created}
                jobs, version = await self.api.list(SELECTOR)
                for job in jobs:
                    await self._update(job)
                for job_id in known - {job_id_of(j) for j in jobs}:
                    self._gone(job_id)  # deleted while no watch was open
                pause = WATCH_RETRY_S[0]
                async for kind, job in self.api.watch(SELECTOR, version):
                    if kind == "DELETED":
                        self._gone(job_id_of(job))
                    elif kind in ("ADDED", "MODIFIED"):
                        await self._update(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server away or restarting: list and watch again
                log.warning("watching training Jobs failed (%s); again in %.0f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, WATCH_RETRY_S[1])

    async def _update(self, job: dict[str, Any]) -> None:
        follow = self.followed.get(job_id_of(job))
        if follow is None or follow.stopping:
            return
        state, why = job_state(job)
        if state == SUCCEEDED:
            self._end(follow, 0, "")
        elif state == FAILED:
            self._end(follow, EXIT_FAILED, why)
        elif state != follow.state:
            follow.state = state
            await self.on_event(follow.job_id, {"event": "state", "state": state, "message": why})

    def _gone(self, job_id: str) -> None:
        follow = self.followed.get(job_id)
        if follow is not None and not follow.stopping:
            why = "" if follow.cancelling else f"its Kubernetes Job {job_name(job_id)} was deleted before it ended"
            self._end(follow, EXIT_FAILED, why)

    def _end(self, follow: Followed, code: int, why: str) -> None:
        # Its own task: installing the model (LoadModel) must not hold up the watch of the other jobs.
        follow.stopping = True
        follow.wake.set()
        task = asyncio.get_running_loop().create_task(self._finish(follow, code, why))
        self.finishing.add(task)
        task.add_done_callback(self.finishing.discard)

    async def _finish(self, follow: Followed, code: int, why: str) -> None:
        if follow.tail is not None:
            await follow.tail
        await self._read(follow)  # what the pod wrote last
        self.followed.pop(follow.job_id, None)
        await self.on_exit(follow.job_id, code, why)

    # --- the job's events, from the shared volume
    async def _tail(self, follow: Followed) -> None:
        while not follow.stopping:
            try:
                await self._read(follow)
            except Exception:
                log.exception("job %s: reading its events failed", follow.job_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(follow.wake.wait(), self.poll_s)

    async def _read(self, follow: Followed) -> None:
        chunk = await asyncio.to_thread(_read_from, follow.events, follow.offset)
        follow.offset += len(chunk)
        *lines, follow.partial = (follow.partial + chunk).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") != STARTED:
                await self.on_event(follow.job_id, event)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as events:
            events.seek(offset)
            return events.read()
    except FileNotFoundError:
        return b""


def _last_start(path: Path) -> int:
    """Offset of the last "started" event in the file (the pod now running wrote it), or 0."""
    offset, last = 0, 0
    with contextlib.suppress(FileNotFoundError), path.open("rb") as events:
        for line in events:
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                if json.loads(line).get("event") == STARTED:
                    last = offset
            offset += len(line)
    return last
