"""A stand-in for the Kubernetes API server, which cannot run here.

`FakeJobApi` implements services.training.kubernetes_api.JobApi over a dict
of Jobs: create (409 on a name taken; the official client's V1Job parses
each Job first, as ClusterJobApi does), delete, list and watch from a
resourceVersion, with the events a real server sends. Optionally it plays
kubelet too: an admitted Job's container command runs as a real process of
this machine (the real worker on the real spec.json), and its exit code sets
the Job's Complete or Failed condition (exit 1 is FailJob, as the Job's
podFailurePolicy says). Nothing here speaks HTTP: the API server, its
admission and scheduling are not exercised.
"""

from __future__ import annotations

import asyncio
import copy
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from kubernetes.aio.client import V1Job

from services.training.kubernetes_api import ApiException
from services.training.settings import ROOT


class FakeJobApi:
    def __init__(self, kubelet: bool = False) -> None:
        self.kubelet = kubelet
        self.jobs: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[int, str, dict[str, Any]]] = []  # (resourceVersion, type, job)
        self.changed = asyncio.Condition()
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.pods: dict[str, asyncio.Task[None]] = {}
        self.watch_generation = 0
        self.watches_opened = 0
        self.closed = False

    # --- JobApi
    async def create(self, job: dict[str, Any]) -> None:
        V1Job.from_dict(job)  # what the official client would send, or its error
        name = job["metadata"]["name"]
        if name in self.jobs:
            raise ApiException(status=409, reason="AlreadyExists")
        stored = copy.deepcopy(job)
        stored["status"] = {}
        self.created.append(copy.deepcopy(job))
        self.jobs[name] = stored
        await self._emit("ADDED", stored)
        if not stored["spec"].get("suspend"):
            await self._admitted(name)

    async def delete(self, name: str) -> None:
        self.deleted.append(name)
        job = self.jobs.pop(name, None)
        if job is None:
            return
        pod = self.pods.pop(name, None)
        if pod is not None:  # foreground deletion: the pods go first
            pod.cancel()
            await asyncio.gather(pod, return_exceptions=True)
        await self._emit("DELETED", job)

    async def list(self, selector: str) -> tuple[list[dict[str, Any]], str]:
        key, _, value = selector.partition("=")
        found = [copy.deepcopy(j) for j in self.jobs.values() if j["metadata"]["labels"].get(key) == value]
        return found, str(len(self.log))

    async def watch(self, selector: str, resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self.watches_opened += 1
        generation, seen = self.watch_generation, int(resource_version)
        key, _, value = selector.partition("=")
        while True:
            async with self.changed:
                await self.changed.wait_for(lambda n=seen: len(self.log) > n or self.watch_generation != generation)
            if self.watch_generation != generation:
                return  # the server closed the stream
            for _, kind, job in self.log[seen:]:
                seen += 1
                if job["metadata"]["labels"].get(key) == value:
                    yield kind, copy.deepcopy(job)

    async def close(self) -> None:
        self.closed = True
        for pod in self.pods.values():
            pod.cancel()

    # --- what the cluster does
    async def admit(self, name: str) -> None:
        """Kueue admits the Job: it is unsuspended."""
        self.jobs[name]["spec"]["suspend"] = False
        await self._emit("MODIFIED", self.jobs[name])
        await self._admitted(name)

    async def set_status(self, name: str, status: dict[str, Any]) -> None:
        self.jobs[name]["status"] = status
        await self._emit("MODIFIED", self.jobs[name])

    async def end_watch(self) -> None:
        """The server closes every open watch (a timeout, a restart)."""
        async with self.changed:
            self.watch_generation += 1
            self.changed.notify_all()

    async def _admitted(self, name: str) -> None:
        if self.kubelet:
            self.pods[name] = asyncio.get_running_loop().create_task(self._run_pod(name))

    async def _run_pod(self, name: str) -> None:
        container = self.jobs[name]["spec"]["template"]["spec"]["containers"][0]
        command = [sys.executable if container["command"][0] == "python" else container["command"][0]]
        env = {**os.environ, "PYTHONPATH": str(ROOT), **{e["name"]: e["value"] for e in container.get("env", [])}}
        process = await asyncio.create_subprocess_exec(
            *command, *container["command"][1:], cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
        )
        await self.set_status(name, {"active": 1, "ready": 1})
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        if code == 0:
            await self.set_status(name, {"succeeded": 1, "conditions": [_condition("Complete")]})
        else:
            failed = _condition("Failed", "PodFailurePolicy", f"Container train exited with {code}")
            await self.set_status(name, {"failed": 1, "conditions": [failed]})

    async def _emit(self, kind: str, job: dict[str, Any]) -> None:
        async with self.changed:
            job["metadata"]["resourceVersion"] = str(len(self.log) + 1)
            self.log.append((len(self.log) + 1, kind, copy.deepcopy(job)))
            self.changed.notify_all()


def _condition(kind: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": "True", "reason": reason, "message": message}
