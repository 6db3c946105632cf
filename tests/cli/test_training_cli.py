"""`lumen train`, `lumen jobs`, `lumen recipes` and the SDK's training calls, through a real gateway
over a real training service (its jobs real worker processes) and the real services that serve the
results (tabular, embeddings), all in this process on port 0."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from gateway.server import Gateway
from lumen.client import Client
from lumen.training.v1 import training_pb2 as pb
from services.training.server import TrainingService
from shared.model_service import ModelService
from tests.cli.conftest import cli_runner
from tests.in_process import running_gateway
from tests.training.conftest import training_service
from tests.training.data import lee_corpus, sklearn_csv


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    (folder / "iris.csv").write_bytes(sklearn_csv("iris"))
    (folder / "lee.cor").write_bytes(lee_corpus())
    return folder


# --- without training (the service starts no job): requests, errors, the SDK's uploads and lists
@pytest.fixture(scope="module")
async def held(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Gateway, TrainingService]]:
    service = await training_service(tmp_path_factory.mktemp("held"), max_concurrent_jobs=0)
    async with running_gateway(training_address=f"127.0.0.1:{service.port}") as gateway:
        yield gateway, service
    await service.stop(0)


async def test_recipes_lists_each_recipe_and_its_parameters(held) -> None:
    code, out, _ = await cli_runner(held[0])("recipes")
    assert code == 0
    assert "tabular-dense:" in out and "word2vec:" in out and "--param epochs=" in out


async def test_jobs_list_get_cancel_and_their_errors(held, data: Path) -> None:
    gateway, _ = held
    run = cli_runner(gateway)

    def create() -> pb.TrainingJob:  # the SDK is blocking: off the loop that serves
        with Client(f"127.0.0.1:{gateway.port}") as client:
            dataset = client.upload_dataset(data / "iris.csv").dataset
            return client.create_training_job("tabular-dense", dataset.id, "iris-held")

    job = await asyncio.to_thread(create)
    code, out, _ = await run("jobs", "list", "--state", "queued")
    assert code == 0 and job.id in out and "QUEUED" in out
    code, out, _ = await run("--json", "jobs", "get", job.id)
    assert code == 0 and json.loads(out)["state"] == "JOB_STATE_QUEUED"
    code, out, _ = await run("jobs", "cancel", job.id)
    assert code == 0 and out.startswith(f"job {job.id} CANCELLED")
    code, out, err = await run("jobs", "cancel", job.id)
    assert code == 1 and out == "" and err.startswith("ERROR FAILED_PRECONDITION: ")
    code, out, _ = await run("jobs", "watch", job.id, "--quiet")  # ended: at once, and not a success
    assert code == 1 and "CANCELLED" in out
    code, _, err = await run("jobs", "get", "nope")
    assert code == 1 and err.strip() == "ERROR NOT_FOUND: training job 'nope' not found (id)"
    code, out, _ = await run("jobs", "delete", job.id)
    assert code == 0 and job.id not in (await run("jobs", "list"))[1]


async def test_train_refusals_are_one_line_naming_the_field(held, data: Path, tmp_path: Path) -> None:
    run = cli_runner(held[0])
    code, _, err = await run("train", "no-such-recipe", data / "iris.csv", "--name", "x")
    last = err.strip().splitlines()[-1]  # after the upload's bar
    assert code == 1 and last.startswith("ERROR INVALID_ARGUMENT: ") and last.endswith("(field: recipe)")
    assert "tabular-dense" in last  # the recipes there are
    code, _, err = await run("train", "tabular-dense", data / "iris.csv", "--name", "x", "--param", "epochs=0")
    assert code == 1 and "hyperparameters[epochs]" in err
    code, _, err = await run("train", "tabular-dense", data / "iris.csv", "--name", "x", "--param", "epochs")
    assert code == 1 and "NAME=NUMBER" in err
    (tmp_path / "iris.xls").write_bytes(b"")
    code, _, err = await run("train", "tabular-dense", tmp_path / "iris.xls", "--name", "x")
    assert code == 1 and "no dataset format for '.xls'" in err  # before anything is uploaded


async def test_sdk_uploads_a_folder_of_class_folders_as_an_image_zip(held, tmp_path: Path) -> None:
    gateway, _ = held
    for label, shade in (("dark", 30), ("light", 220)):
        (tmp_path / "images" / label).mkdir(parents=True)
        for n in range(3):
            Image.new("L", (8, 8), shade + n).save(tmp_path / "images" / label / f"{n}.png")
    sent: list[tuple[int, int]] = []

    def calls() -> None:  # the SDK is blocking: off the loop that serves
        with Client(f"127.0.0.1:{gateway.port}") as client:
            reply = client.upload_dataset(tmp_path / "images", on_sent=lambda done, total: sent.append((done, total)))
            assert reply.dataset.format == pb.DATASET_FORMAT_IMAGE_ZIP and reply.dataset.record_count == 6
            assert list(reply.dataset.labels) == ["dark", "light"]
            assert sent and sent[-1][0] == sent[-1][1]  # every byte reported
            assert reply.dataset.id in [d.id for d in client.list_datasets().datasets]
            assert client.upload_dataset(tmp_path / "images").already_existed  # zipped the same way again
            with pytest.raises(ValueError, match="need a format"):
                client.upload_dataset(b"a,label\n1,x\n")

    await asyncio.to_thread(calls)


# --- real training: the services that serve the results
@pytest.fixture(scope="module")
async def serving(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    from services.embeddings import app as embeddings_app
    from services.embeddings.settings import EmbeddingsSettings
    from services.tabular import app as tabular_app
    from services.tabular.settings import TabularSettings
    from shared.model_service import start

    root = tmp_path_factory.mktemp("serving")
    for name in ("tabular", "embeddings"):
        (root / "models" / name).mkdir(parents=True)
    common = {"host": "127.0.0.1", "port": 0}
    services: dict[str, ModelService] = {
        "tabular": await start(
            "tabular",
            TabularSettings(**common, model_repository=str(root / "models" / "tabular")),
            tabular_app.FACTORIES,
            tabular_app.registrations,
        ),
        "embeddings": await start(
            "embeddings",
            EmbeddingsSettings(
                **common,
                model_repository=str(root / "models" / "embeddings"),
                collections_dir=str(root / "collections"),
            ),
            embeddings_app.FACTORIES,
            embeddings_app.registrations,
        ),
    }
    addresses = {f"{name}_address": f"127.0.0.1:{s.port}" for name, s in services.items()}
    training = await training_service(root, **addresses)
    try:
        async with running_gateway(
            **addresses, training_address=f"127.0.0.1:{training.port}", default_timeout_s=60.0
        ) as gateway:
            yield gateway
    finally:
        await training.stop(0)
        for service in services.values():
            await service.stop(0)


@pytest.mark.slow
async def test_train_tabular_dense_then_jobs_commands(serving: Gateway, data: Path) -> None:
    run = cli_runner(serving)
    args = ("train", "tabular-dense", data / "iris.csv", "--name", "iris-cli", "--param", "epochs=30", "--seed", "3")
    code, out, err = await run(*args)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith("job ") and " SUCCEEDED in " in lines[0] and "tabular-dense -> iris-cli" in lines[0]
    assert "  served: iris-cli version 1 by tabular (tabular-classification)" in lines
    assert any(line.startswith("  held-out: heldout_accuracy ") for line in lines), out
    (sample,) = [line for line in lines if line.startswith("  sample: ")]
    # The served model's answer on iris's first row (labelled setosa): a class of iris and its probability.
    predicted = sample.split(" -> ")[1].split()[0]
    assert sample.startswith("  sample: [5.1, 3.5, 1.4, 0.2] -> ") and predicted in {
        "setosa",
        "versicolor",
        "virginica",
    }
    assert sample.endswith("(labelled setosa)")
    # The bars went to stderr: the upload in bytes, then epochs of 30 with the loss.
    assert "uploading" in err and "/30" in err and "loss=" in err
    job_id = lines[0].split()[1]

    code, out, _ = await run("--json", "jobs", "list", "--state", "succeeded")
    assert code == 0 and job_id in [j["id"] for j in json.loads(out)["jobs"]]
    code, out, _ = await run("jobs", "watch", job_id)  # a late watcher gets the final state at once
    assert code == 0 and out.startswith(f"job {job_id} SUCCEEDED")

    code, out, _ = await run("--json", *args[:-2], "--seed", "4")  # the same name again: a new version
    assert code == 0
    job, prediction = json.loads(out)
    assert job["result"]["modelVersion"] == "2" and prediction["model"]["version"] == "2"


@pytest.mark.slow
async def test_train_word2vec_on_a_corpus_file_is_served_for_similar_words(serving: Gateway, data: Path) -> None:
    code, out, err = await cli_runner(serving)(
        "train", "word2vec", data / "lee.cor", "--name", "lee-words", "--param", "epochs=3", "--quiet"
    )
    assert code == 0, out + err
    assert "  served: lee-words version 1 by embeddings (word-embedding)" in out and err == ""
    (sample,) = [line for line in out.splitlines() if line.startswith("  sample: ")]
    word, neighbours = sample.removeprefix("  sample: ").split(" ~ ")
    assert len(neighbours.split(", ")) == 5 and word not in neighbours.split(", ")


@pytest.mark.slow
async def test_async_client_trains_with_the_same_calls(serving: Gateway, data: Path) -> None:
    """AsyncClient has the training operations too: train() awaited, progress pushed as it trains."""
    from lumen.aio import AsyncClient

    seen: list[int] = []
    async with AsyncClient(f"127.0.0.1:{serving.port}", timeout=120) as client:
        job = await client.train(
            "tabular-dense", data / "iris.csv", "iris-async", {"epochs": 3}, on_progress=lambda j: seen.append(j.state)
        )
        assert job.state == pb.JOB_STATE_SUCCEEDED, job.error.message
        assert seen[-1] == pb.JOB_STATE_SUCCEEDED and pb.JOB_STATE_RUNNING in seen
        assert (await client.get_training_job(job.id)).result.model_name == "iris-async"
        page = await client.list_training_jobs("succeeded", page_size=1)
        assert len(page.jobs) == 1 and page.next_page_token  # iris-cli's jobs ran before
