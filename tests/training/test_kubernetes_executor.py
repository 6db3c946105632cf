"""The Kubernetes executor without a cluster (none can run here).

What is real: the Job it would create, rendered and validated offline
against Kubernetes 1.30's schemas (kubernetes-validate --strict, as
tests/deploy does), parsed by the official client's V1Job; the mapping from
Job status to job states; the executor's follow-up of Jobs and of the events
their pods write to the shared volume; the training worker, run as a real
process on the Job's own command line. What is not: the Kubernetes API
server. Every call goes to tests/training/fake_kubernetes.FakeJobApi, an
object with the executor's API interface, so no HTTP request, admission,
scheduling or RBAC check of a real server is exercised here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
import yaml
from kubernetes.aio.client import ApiClient, V1Job

from lumen.common.v1 import common_pb2
from lumen.tabular.v1 import tabular_pb2, tabular_pb2_grpc
from lumen.training.v1 import training_pb2 as pb
from services.training.executor_kubernetes import KubernetesExecutor
from services.training.executor_local import LocalExecutor
from services.training.jobs import Jobs
from services.training.kubernetes_api import ApiException
from services.training.kubernetes_job import QUEUE_LABEL, job_name, job_state, render, threads
from services.training.records import FAILED, QUEUED, RUNNING, SUCCEEDED
from services.training.server import make_executor
from services.training.settings import TrainingSettings
from tests.deploy.conftest import deploy_tools  # noqa: F401  (the fixture that installs kubernetes-validate)
from tests.deploy.test_manifests import validate
from tests.training.conftest import Stubs, training_service
from tests.training.data import sklearn_csv, upload_parts
from tests.training.fake_kubernetes import FakeJobApi

JOB_ID = "0123456789abcdef"


def k8s_settings(tmp: Path, **overrides: Any) -> TrainingSettings:
    return TrainingSettings(executor="kubernetes", data_dir=str(tmp / "training"), **overrides)


def job_dir(settings: TrainingSettings, job_id: str = JOB_ID) -> Path:
    folder = settings.data_path() / "jobs" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the Job it would create
def test_job_for_a_kueue_queue_renders_and_validates_offline(deploy_tools: Path, tmp_path: Path) -> None:  # noqa: F811
    settings = k8s_settings(
        tmp_path,
        kubernetes_queue="team-a",
        kubernetes_cpu="1500m",
        kubernetes_memory="6Gi",
        kubernetes_gpus=1,
        kubernetes_deadline_s=7200,
        kubernetes_image="registry.example/lumen/training:0.1.0-gpu",
    )
    folder = job_dir(settings)
    manifest = render(JOB_ID, folder, settings)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = validate(deploy_tools, path)
    assert result.returncode == 0, result.stdout + result.stderr

    assert manifest["metadata"]["name"] == job_name(JOB_ID) and manifest["metadata"]["namespace"] == "lumen"
    assert manifest["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert manifest["spec"]["suspend"] is True  # Kueue unsuspends it when it admits it
    assert manifest["spec"]["activeDeadlineSeconds"] == 7200
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/lumen/training:0.1.0-gpu"
    assert container["command"] == ["python", "-m", "services.training.worker", str(folder)]
    assert container["resources"]["requests"] == {"cpu": "1500m", "memory": "6Gi"}
    assert container["resources"]["limits"] == {"cpu": "1500m", "memory": "6Gi", "nvidia.com/gpu": 1}
    assert {"name": "LUMEN_TRAINING_WORKER_THREADS", "value": "2"} in container["env"]
    # The job folder lies on the claim the model services mount, at the path spec.json names.
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "training-data"]
    assert mount == {"name": "training-data", "mountPath": str(settings.data_path()), "subPath": "training"}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "training-data"]
    assert volume["persistentVolumeClaim"] == {"claimName": "lumen-models"}
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"


def test_job_without_a_queue_starts_at_once_and_unlabelled(deploy_tools: Path, tmp_path: Path) -> None:  # noqa: F811
    settings = k8s_settings(tmp_path)
    manifest = render(JOB_ID, job_dir(settings), settings)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert validate(deploy_tools, path).returncode == 0
    assert manifest["spec"]["suspend"] is False and QUEUE_LABEL not in manifest["metadata"]["labels"]
    assert "activeDeadlineSeconds" not in manifest["spec"]
    limits = manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "4Gi"}


async def test_the_official_client_reads_the_job_as_rendered(tmp_path: Path) -> None:
    settings = k8s_settings(tmp_path, kubernetes_queue="q")
    manifest = render(JOB_ID, job_dir(settings), settings)
    client = ApiClient()
    try:
        assert client.sanitize_for_serialization(V1Job.from_dict(manifest)) == manifest  # no field dropped
    finally:
        await client.close()


def test_a_job_folder_outside_the_volume_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render(JOB_ID, tmp_path / "elsewhere", k8s_settings(tmp_path))


@pytest.mark.parametrize(("cpu", "expected"), [("1", 1), ("2", 2), ("500m", 1), ("1.5", 2), ("2500m", 3)])
def test_threads_follow_the_pods_cpu(cpu: str, expected: int) -> None:
    assert threads(cpu) == expected


def test_a_cpu_that_is_no_quantity_is_named() -> None:
    with pytest.raises(ValueError, match="LUMEN_TRAINING_KUBERNETES_CPU"):
        threads("two")


# --- Job status to job state
def _job(spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x"}, "spec": {"suspend": False, **(spec or {})}, "status": status}


def _cond(kind: str, status: str = "True", **extra: str) -> dict[str, str]:
    return {"type": kind, "status": status, **extra}


@pytest.mark.parametrize(
    ("job", "state"),
    [
        (_job(), RUNNING),  # created, pods pending
        (_job(active=1, ready=1), RUNNING),
        (_job({"suspend": True}), QUEUED),  # waiting for Kueue
        (_job(conditions=[_cond("Suspended")]), QUEUED),  # preempted, pods stopping
        (_job(active=1, conditions=[_cond("Suspended", "False")]), RUNNING),  # admitted again
        (_job(active=1, conditions=[_cond("FailureTarget")]), RUNNING),  # pods still stopping
        (_job(active=1, conditions=[_cond("SuccessCriteriaMet")]), RUNNING),
        (_job(succeeded=1, conditions=[_cond("SuccessCriteriaMet"), _cond("Complete")]), SUCCEEDED),
        (_job(failed=3, conditions=[_cond("Failed", reason="BackoffLimitExceeded")]), FAILED),
        (_job({"suspend": True}, conditions=[_cond("Failed", reason="DeadlineExceeded")]), FAILED),
    ],
)
def test_job_status_maps_to_our_states(job: dict[str, Any], state: str) -> None:
    assert job_state(job)[0] == state


def test_a_failed_job_says_why() -> None:
    failed = _cond("Failed", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")
    state, why = job_state(_job(failed=3, conditions=[failed]))
    assert state == FAILED and "BackoffLimitExceeded" in why and "backoff limit" in why


# --- the executor, over the fake API
class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.exits: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()

    async def on_event(self, job_id: str, event: dict[str, Any]) -> None:
        self.events.append((job_id, event))

    async def on_exit(self, job_id: str, code: int, tail: str) -> None:
        await self.exits.put((job_id, code, tail))

    def kinds(self) -> list[str]:
        return [e.get("state", e["event"]) for _, e in self.events]

    async def until(self, predicate: Any) -> None:
        async with asyncio.timeout(10):
            while not predicate():  # noqa: ASYNC110  (predicates over the recorder and the fake alike)
                await asyncio.sleep(0.01)


@dataclass
class Following:
    api: FakeJobApi
    seen: Recorder
    settings: TrainingSettings
    executor: KubernetesExecutor
    folder: Path

    async def start(self) -> None:
        await self.executor.start(JOB_ID, self.folder)

    async def status(self, **status: Any) -> None:
        await self.api.set_status(job_name(JOB_ID), status)

    async def exit(self) -> tuple[str, int, str]:
        return await asyncio.wait_for(self.seen.exits.get(), 10)


@asynccontextmanager
async def following(tmp: Path, api: FakeJobApi | None = None, **overrides: Any) -> AsyncIterator[Following]:
    """A KubernetesExecutor over the fake API, its callbacks recorded; closed at the end."""
    api, seen, settings = api or FakeJobApi(), Recorder(), k8s_settings(tmp, **overrides)
    executor = KubernetesExecutor(seen.on_event, seen.on_exit, settings, api, poll_s=0.02)
    try:
        yield Following(api, seen, settings, executor, job_dir(settings))
    finally:
        await executor.close()


def write_event(folder: Path, event: dict[str, Any]) -> None:
    """A line of events.jsonl as the worker in the Job's pod appends it (services.training.worker.Events)."""
    with (folder / "events.jsonl").open("a") as events:
        events.write(json.dumps(event) + "\n")


async def test_executor_follows_a_queued_job_to_its_end(tmp_path: Path) -> None:
    async with following(tmp_path, kubernetes_queue="team-a") as f:
        write_event(f.folder, {"event": "progress", "epoch": 9})  # an earlier run's: not this Job's
        await f.start()
        (created,) = f.api.created
        assert created == render(JOB_ID, f.folder, f.settings)
        await f.seen.until(lambda: f.seen.kinds() == [QUEUED])
        await f.api.admit(job_name(JOB_ID))
        await f.status(active=1)
        await f.seen.until(lambda: f.seen.kinds() == [QUEUED, RUNNING])
        write_event(f.folder, {"event": "started", "pid": 1})
        write_event(f.folder, {"event": "progress", "epoch": 1, "total_epochs": 2, "loss": 0.5})
        await f.seen.until(lambda: len(f.seen.events) == 3)
        write_event(f.folder, {"event": "progress", "epoch": 2, "total_epochs": 2, "loss": 0.25})
        write_event(f.folder, {"event": "result", "metrics": {"accuracy": 1.0}})
        await f.status(succeeded=1, conditions=[_cond("Complete")])
        assert await f.exit() == (JOB_ID, 0, "")
        # Every line the pod wrote before it completed, the last ones too, and none of the earlier run's.
        assert [e["event"] for _, e in f.seen.events] == ["state", "state", "progress", "progress", "result"]
        assert [e["epoch"] for _, e in f.seen.events if e["event"] == "progress"] == [1, 2]
        assert JOB_ID not in f.executor.followed
    assert f.api.closed


async def test_a_failed_job_exits_with_its_reason(tmp_path: Path) -> None:
    async with following(tmp_path) as f:
        await f.start()
        failed = _cond("Failed", reason="DeadlineExceeded", message="Job was active longer than specified deadline")
        await f.status(failed=1, conditions=[failed])
        job_id, code, why = await f.exit()
        assert (job_id, code) == (JOB_ID, 1) and "DeadlineExceeded" in why


async def test_cancel_deletes_the_job_and_its_end_is_reported(tmp_path: Path) -> None:
    async with following(tmp_path) as f:
        await f.start()
        await f.executor.cancel(JOB_ID)
        assert f.api.deleted == [job_name(JOB_ID)] and not f.api.jobs
        assert await f.exit() == (JOB_ID, 1, "")  # asked for: no failure reason


async def test_a_job_deleted_by_someone_else_fails_saying_so(tmp_path: Path) -> None:
    async with following(tmp_path) as f:
        await f.start()
        await f.api.delete(job_name(JOB_ID))
        _, code, why = await f.exit()
        assert code == 1 and "was deleted" in why


async def test_after_a_restart_the_existing_job_is_followed_not_made_again(tmp_path: Path) -> None:
    api = FakeJobApi()
    async with following(tmp_path, api) as first:
        await first.start()
        await first.status(active=1)
        write_event(first.folder, {"event": "started", "pid": 1})
        write_event(first.folder, {"event": "progress", "epoch": 1})
        await first.seen.until(lambda: "progress" in [e["event"] for _, e in first.seen.events])
        first.executor.api = None  # the service stops (its client with it); the Job goes on in the cluster
    # While no one watched: the pod was evicted, a new one resumed from the checkpoint and completed.
    write_event(first.folder, {"event": "started", "pid": 2})
    write_event(first.folder, {"event": "progress", "epoch": 2, "resumed_from_epoch": 1})
    write_event(first.folder, {"event": "result", "metrics": {}})
    await first.status(succeeded=1, conditions=[_cond("Complete")])
    async with following(tmp_path, api) as second:
        await second.start()
        assert len(api.created) == 1  # the 409 was answered by following the Job
        assert await second.exit() == (JOB_ID, 0, "")
        assert [e for _, e in second.seen.events] == [
            {"event": "progress", "epoch": 2, "resumed_from_epoch": 1},
            {"event": "result", "metrics": {}},
        ]


async def test_a_closed_watch_is_listed_and_watched_again(tmp_path: Path) -> None:
    async with following(tmp_path) as f:
        await f.start()
        await f.seen.until(lambda: f.api.watches_opened == 1)
        await f.api.end_watch()
        await f.seen.until(lambda: f.api.watches_opened == 2)
        await f.status(succeeded=1, conditions=[_cond("Complete")])
        assert (await f.exit())[1] == 0


async def test_a_job_the_api_refuses_is_an_error_that_names_it(tmp_path: Path) -> None:
    api = FakeJobApi()

    async def forbidden(job: dict[str, Any]) -> None:  # e.g. the Role lacks "create" on jobs
        raise ApiException(status=403, reason="Forbidden")

    api.create = forbidden  # type: ignore[method-assign]
    async with following(tmp_path, api) as f:
        with pytest.raises(RuntimeError, match="403 Forbidden"):
            await f.start()
        assert JOB_ID not in f.executor.followed and f.executor.watcher is None


def test_the_executor_setting_chooses_the_executor(tmp_path: Path) -> None:
    jobs = Jobs.__new__(Jobs)  # only its two callbacks are needed
    assert isinstance(make_executor(TrainingSettings(data_dir=str(tmp_path)), jobs), LocalExecutor)
    assert isinstance(make_executor(k8s_settings(tmp_path), jobs, FakeJobApi()), KubernetesExecutor)
    with pytest.raises(ValueError, match="'local' or 'kubernetes'"):
        make_executor(TrainingSettings(executor="slurm"), jobs)


# --- the training service on this executor, with a real worker in the "pod"
@pytest.mark.slow
async def test_training_service_on_kubernetes_trains_through_kueue_and_serves(tmp_path: Path) -> None:
    from services.tabular import app as tabular_app
    from services.tabular.settings import TabularSettings
    from shared.model_service import start as start_model_service

    repository = tmp_path / "models" / "tabular"
    repository.mkdir(parents=True)
    tabular = await start_model_service(
        "tabular",
        TabularSettings(host="127.0.0.1", port=0, model_repository=str(repository)),
        tabular_app.FACTORIES,
        tabular_app.registrations,
    )
    api = FakeJobApi(kubelet=True)
    service = await training_service(
        tmp_path,
        job_api=api,
        executor="kubernetes",
        kubernetes_queue="team-a",
        tabular_address=f"127.0.0.1:{tabular.port}",
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stubs = Stubs(channel)
            dataset = (await stubs.datasets.UploadDataset(upload_parts(sklearn_csv("iris")))).dataset
            request = pb.CreateTrainingJobRequest(
                recipe="tabular-dense", dataset_id=dataset.id, model_name="iris-k8s",
                hyperparameters={"epochs": 3}, seed=3,
            )  # fmt: skip
            job = (await stubs.jobs.CreateTrainingJob(request)).job
            states: list[int] = []
            epochs: list[int] = []
            async for event in stubs.jobs.WatchTrainingJob(pb.WatchTrainingJobRequest(id=job.id), timeout=240):
                if not states or states[-1] != event.job.state:
                    states.append(event.job.state)
                epochs.append(event.job.progress.epoch)
                if event.job.state == pb.JOB_STATE_QUEUED and job_name(job.id) in api.jobs and not api.pods:
                    await api.admit(job_name(job.id))  # Kueue admits it
                last = event.job
        assert last.state == pb.JOB_STATE_SUCCEEDED, last.error.message
        assert states[-3:] == [pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING, pb.JOB_STATE_SUCCEEDED]
        assert max(epochs) == 3 and last.result.model_name == "iris-k8s"
        (created,) = api.created
        assert created["spec"]["suspend"] is True and created["metadata"]["labels"][QUEUE_LABEL] == "team-a"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{tabular.port}") as channel:
            reply = await tabular_pb2_grpc.TabularServiceStub(channel).Predict(
                tabular_pb2.PredictRequest(
                    model=common_pb2.ModelRef(name="iris-k8s"),
                    rows=[tabular_pb2.FeatureRow(values=[5.1, 3.5, 1.4, 0.2])],
                )
            )
        assert reply.predictions[0].status.code == 0 and reply.predictions[0].label == "setosa"
    finally:
        await service.stop(0)
        await tabular.stop(0)
