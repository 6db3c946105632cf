"""ClusterJobApi (the official kubernetes client's asyncio API) over HTTP, against a stand-in.

No Kubernetes API server can run here. An aiohttp handler on port 0 answers the four REST
calls the executor makes (POST, GET list, GET ?watch=true as a stream of JSON lines, DELETE on
/apis/batch/v1/namespaces/<ns>/jobs) with the shapes of the Kubernetes API: what is real is the
client's side (the paths, query parameters and bodies it sends, its parsing of lists and watch
events, its 409 and 404); the API server's own behaviour (validation, admission, RBAC,
resource versions beyond a counter) is not exercised.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes.aio.client import ApiClient, Configuration

from services.training.kubernetes_api import ApiException, ClusterJobApi
from services.training.kubernetes_job import SELECTOR, render
from services.training.settings import TrainingSettings

JOBS = "/apis/batch/v1/namespaces/{namespace}/jobs"


class StandIn:
    """Jobs by name, the requests seen, and the watch streams' queues."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.watchers: list[asyncio.Queue[dict[str, Any]]] = []

    def _stamp(self, job: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        job["metadata"]["resourceVersion"] = str(self.version)
        return job

    async def create(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", request.path, dict(request.query)))
        job = await request.json()
        name = job["metadata"]["name"]
        if name in self.jobs:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409}
            return web.json_response(status, status=409)
        self.jobs[name] = self._stamp({**job, "status": {}})
        return web.json_response(self.jobs[name], status=201)

    async def list_or_watch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(("GET", request.path, dict(request.query)))
        key, _, value = request.query.get("labelSelector", "").partition("=")
        if request.query.get("watch") != "true":
            items = [j for j in self.jobs.values() if j["metadata"]["labels"].get(key) == value]
            return web.json_response(
                {
                    "kind": "JobList",
                    "apiVersion": "batch/v1",
                    "metadata": {"resourceVersion": str(self.version)},
                    "items": items,
                }
            )
        stream = web.StreamResponse(headers={"Content-Type": "application/json"})
        await stream.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.watchers.append(queue)
        while (event := await queue.get()) is not None:
            await stream.write(json.dumps(event).encode() + b"\n")
        await stream.write_eof()
        return stream

    async def delete(self, request: web.Request) -> web.Response:
        self.requests.append(("DELETE", request.path, dict(request.query)))
        body = await request.json() if request.can_read_body else {}
        job = self.jobs.pop(request.match_info["name"], None)
        if job is None:
            return web.json_response(
                {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}, status=404
            )
        # Sent as a query parameter or in DeleteOptions, as clients do either.
        self.requests[-1][2].setdefault("propagationPolicy", body.get("propagationPolicy", ""))
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})

    async def event(self, kind: str, job: dict[str, Any] | None) -> None:
        for queue in self.watchers:
            await queue.put({"type": kind, "object": job} if job else None)  # type: ignore[arg-type]


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[StandIn, ClusterJobApi]]:
    stand_in = StandIn()
    app = web.Application()
    app.router.add_post(JOBS, stand_in.create)
    app.router.add_get(JOBS, stand_in.list_or_watch)
    app.router.add_delete(JOBS + "/{name}", stand_in.delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api = ClusterJobApi(ApiClient(Configuration(host=f"http://127.0.0.1:{port}")), "lumen")
    try:
        yield stand_in, api
    finally:
        await stand_in.event("", None)
        await api.close()
        await runner.cleanup()


async def test_create_list_watch_and_delete_through_the_client(cluster, tmp_path: Path) -> None:
    stand_in, api = cluster
    settings = TrainingSettings(executor="kubernetes", data_dir=str(tmp_path), kubernetes_queue="team-a")
    job = render("0123456789abcdef", tmp_path / "jobs" / "0123456789abcdef", settings)
    await api.create(job)
    method, path, _ = stand_in.requests[-1]
    assert (method, path) == ("POST", "/apis/batch/v1/namespaces/lumen/jobs")
    stored = stand_in.jobs[job["metadata"]["name"]]
    sent = {k: v for k, v in stored.items() if k != "status"}
    assert sent == {**job, "metadata": {**job["metadata"], "resourceVersion": "1"}}  # the Job as rendered
    with pytest.raises(ApiException) as taken:
        await api.create(job)
    assert taken.value.status == 409

    jobs, version = await api.list(SELECTOR)
    assert [j["metadata"]["name"] for j in jobs] == [job["metadata"]["name"]] and version == "1"
    assert jobs[0]["spec"]["suspend"] is True and jobs[0]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert stand_in.requests[-1][2]["labelSelector"] == SELECTOR

    events = api.watch(SELECTOR, version)
    first = asyncio.ensure_future(anext(events))
    while not stand_in.watchers:  # noqa: ASYNC110 (the client connects in its own time)
        await asyncio.sleep(0.01)
    query = stand_in.requests[-1][2]
    assert query["watch"] == "true" and query["resourceVersion"] == "1" and query["labelSelector"] == SELECTOR
    done = {**stored, "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
    await stand_in.event("MODIFIED", done)
    kind, seen = await asyncio.wait_for(first, 10)
    assert kind == "MODIFIED" and seen["status"]["conditions"][0]["type"] == "Complete"
    await stand_in.event("", None)  # the server ends the watch
    assert [e async for e in events] == []

    await api.delete(job["metadata"]["name"])
    assert stand_in.requests[-1][:2] == ("DELETE", f"/apis/batch/v1/namespaces/lumen/jobs/{job['metadata']['name']}")
    assert stand_in.requests[-1][2]["propagationPolicy"] == "Foreground" and not stand_in.jobs
    await api.delete(job["metadata"]["name"])  # gone already: no error
