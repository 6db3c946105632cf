"""Job requests: validation statuses, idempotent retries, pagination, cancel and watch.

The service here starts no job (max_concurrent_jobs=0), so these run without training."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from lumen.training.v1 import training_pb2 as pb
from tests.training.data import polarity_jsonl, sklearn_csv, upload_parts


async def _fails(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value.details() or ""


async def _dataset(stubs, data: bytes, fmt: int = pb.DATASET_FORMAT_CSV) -> str:
    return (await stubs.datasets.UploadDataset(upload_parts(data, fmt))).dataset.id


def _job(dataset_id: str, **fields) -> pb.CreateTrainingJobRequest:
    return pb.CreateTrainingJobRequest(
        **{"recipe": "tabular-dense", "dataset_id": dataset_id, "model_name": "iris-test", **fields}
    )


async def test_bad_requests_name_what_is_wrong(held, tmp_path) -> None:
    _, stubs = held
    iris = await _dataset(stubs, sklearn_csv("iris"))
    create = stubs.jobs.CreateTrainingJob
    details = await _fails(create(_job(iris, recipe="nope")), grpc.StatusCode.INVALID_ARGUMENT)
    assert "tabular-dense" in details and "text-lstm" in details
    await _fails(create(_job("0" * 64)), grpc.StatusCode.NOT_FOUND)
    details = await _fails(create(_job(iris, hyperparameters={"epochs": 0})), grpc.StatusCode.INVALID_ARGUMENT)
    assert "hyperparameters[epochs]" in details
    details = await _fails(create(_job(iris, hyperparameters={"layers": 3})), grpc.StatusCode.INVALID_ARGUMENT)
    assert "hyperparameters[layers]" in details
    await _fails(create(_job(iris, model_name="Bad Name")), grpc.StatusCode.INVALID_ARGUMENT)
    await _fails(create(_job(iris, validation_split=0.9)), grpc.StatusCode.INVALID_ARGUMENT)
    one_class = await _dataset(stubs, b"a,b,label\n1,2,x\n3,4,x\n")
    details = await _fails(create(_job(one_class)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "dataset_id" in details and "1 class" in details
    words = await _dataset(stubs, b"a,b,label\n1,two,x\n3,4,y\n")
    details = await _fails(create(_job(words)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "line 2, column 2" in details
    texts = await _dataset(stubs, polarity_jsonl(), pb.DATASET_FORMAT_JSONL)
    details = await _fails(create(_job(texts)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "DATASET_FORMAT_CSV" in details
    # A name already used by a model of another task in the serving repository.
    taken = tmp_path / "models" / "tabular" / "taken"
    taken.mkdir(parents=True)
    (taken / "model.json").write_text(json.dumps({"name": "taken", "task": "text-generation", "framework": "x"}))
    details = await _fails(create(_job(iris, model_name="taken")), grpc.StatusCode.INVALID_ARGUMENT)
    assert "model_name" in details and "text-generation" in details


async def test_request_id_makes_a_retry_return_the_same_job(held) -> None:
    _, stubs = held
    iris = await _dataset(stubs, sklearn_csv("iris"))
    first = await stubs.jobs.CreateTrainingJob(_job(iris, request_id="r-1", hyperparameters={"epochs": 3}))
    again = await stubs.jobs.CreateTrainingJob(_job(iris, request_id="r-1", hyperparameters={"epochs": 3}))
    other = await stubs.jobs.CreateTrainingJob(_job(iris, request_id="r-2"))
    assert first.job.id == again.job.id != other.job.id
    assert first.job.state == pb.JOB_STATE_QUEUED
    assert first.job.hyperparameters["epochs"] == 3 and first.job.hyperparameters["hidden_units"] == 32


async def test_list_filter_cancel_watch_delete(held) -> None:
    _, stubs = held
    iris = await _dataset(stubs, sklearn_csv("iris"))
    ids = [(await stubs.jobs.CreateTrainingJob(_job(iris))).job.id for _ in range(3)]
    watch = stubs.jobs.WatchTrainingJob(pb.WatchTrainingJobRequest(id=ids[0]))
    first = await watch.read()
    assert first.job.state == pb.JOB_STATE_QUEUED  # the current state comes first
    cancelled = await stubs.jobs.CancelTrainingJob(pb.CancelTrainingJobRequest(id=ids[0]))
    assert cancelled.job.state == pb.JOB_STATE_CANCELLED
    last = await asyncio.wait_for(watch.read(), 10)
    assert last.job.state == pb.JOB_STATE_CANCELLED
    assert await watch.read() == grpc.aio.EOF  # the stream ends with the job
    late = [m async for m in stubs.jobs.WatchTrainingJob(pb.WatchTrainingJobRequest(id=ids[0]))]
    assert [m.job.state for m in late] == [pb.JOB_STATE_CANCELLED]
    await _fails(
        stubs.jobs.CancelTrainingJob(pb.CancelTrainingJobRequest(id=ids[0])), grpc.StatusCode.FAILED_PRECONDITION
    )
    await _fails(
        stubs.jobs.DeleteTrainingJob(pb.DeleteTrainingJobRequest(id=ids[1])), grpc.StatusCode.FAILED_PRECONDITION
    )
    await _fails(stubs.datasets.DeleteDataset(pb.DeleteDatasetRequest(id=iris)), grpc.StatusCode.FAILED_PRECONDITION)
    queued = await stubs.jobs.ListTrainingJobs(pb.ListTrainingJobsRequest(state=pb.JOB_STATE_QUEUED, page_size=1))
    assert [j.id for j in queued.jobs] == [ids[2]] and queued.next_page_token
    rest = await stubs.jobs.ListTrainingJobs(
        pb.ListTrainingJobsRequest(state=pb.JOB_STATE_QUEUED, page_size=1, page_token=queued.next_page_token)
    )
    assert [j.id for j in rest.jobs] == [ids[1]] and not rest.next_page_token
    await stubs.jobs.DeleteTrainingJob(pb.DeleteTrainingJobRequest(id=ids[0]))
    for call in (
        stubs.jobs.GetTrainingJob(pb.GetTrainingJobRequest(id=ids[0])),
        stubs.jobs.CancelTrainingJob(pb.CancelTrainingJobRequest(id="nope")),
    ):
        await _fails(call, grpc.StatusCode.NOT_FOUND)
    recipes = await stubs.jobs.ListRecipes(pb.ListRecipesRequest())
    dense = next(r for r in recipes.recipes if r.name == "tabular-dense")
    assert dense.service == "tabular" and {h.name for h in dense.hyperparameters} >= {"epochs", "learning_rate"}


async def test_next_word_checks_its_hyperparameters_and_data(held, tmp_path) -> None:
    _, stubs = held
    corpus = await _dataset(stubs, b"the cat sat on the mat\nthe dog sat on the log\n", pb.DATASET_FORMAT_TEXT)
    create = stubs.jobs.CreateTrainingJob
    for hyper, field in (
        ({"context": 0}, "context"),
        ({"max_words": 5}, "max_words"),
        ({"lstm_units": 2.5}, "lstm_units"),
    ):
        details = await _fails(
            create(_job(corpus, recipe="next-word", hyperparameters=hyper)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert f"hyperparameters[{field}]" in details
    iris = await _dataset(stubs, sklearn_csv("iris"))
    details = await _fails(create(_job(iris, recipe="next-word")), grpc.StatusCode.INVALID_ARGUMENT)
    assert "DATASET_FORMAT_TEXT" in details
    classifier = tmp_path / "models" / "nlp" / "polarity"
    classifier.mkdir(parents=True)
    (classifier / "model.json").write_text(json.dumps({"task": "text-classification", "framework": "keras"}))
    details = await _fails(
        create(_job(corpus, recipe="next-word", model_name="polarity")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "model_name" in details and "text-classification" in details
    job = (await create(_job(corpus, recipe="next-word", model_name="cats"))).job
    assert job.hyperparameters["context"] == 10 and job.hyperparameters["learning_rate"] == pytest.approx(0.003)
    recipes = {r.name: r for r in (await stubs.jobs.ListRecipes(pb.ListRecipesRequest())).recipes}
    assert recipes["next-word"].service == "nlp"


async def test_minilm_classifier_checks_its_hyperparameters_and_data(held) -> None:
    _, stubs = held
    texts = await _dataset(stubs, polarity_jsonl(), pb.DATASET_FORMAT_JSONL)
    create = stubs.jobs.CreateTrainingJob
    for hyper, field in (
        ({"trainable_layers": 7}, "trainable_layers"),
        ({"max_length": 4}, "max_length"),
        ({"learning_rate": 0.5}, "learning_rate"),
        ({"epochs": 1.5}, "epochs"),
    ):
        details = await _fails(
            create(_job(texts, recipe="minilm-classifier", hyperparameters=hyper)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert f"hyperparameters[{field}]" in details
    corpus = await _dataset(stubs, b"the cat sat\nthe dog sat\n", pb.DATASET_FORMAT_TEXT)
    details = await _fails(create(_job(corpus, recipe="minilm-classifier")), grpc.StatusCode.INVALID_ARGUMENT)
    assert "DATASET_FORMAT_JSONL" in details
    one_class = await _dataset(
        stubs, b'{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n', pb.DATASET_FORMAT_JSONL
    )
    details = await _fails(create(_job(one_class, recipe="minilm-classifier")), grpc.StatusCode.INVALID_ARGUMENT)
    assert "1 class" in details
    job = (await create(_job(texts, recipe="minilm-classifier", model_name="polarity-minilm"))).job
    assert job.hyperparameters["epochs"] == 3 and job.hyperparameters["max_length"] == 64


async def test_training_usage_refuses_timestamps_outside_their_range(held) -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    _, stubs = held
    usage = stubs.jobs.GetTrainingUsage
    too_late = Timestamp(seconds=2**62)
    details = await _fails(usage(pb.GetTrainingUsageRequest(end_time=too_late)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "end_time" in details
    bad_nanos = Timestamp(seconds=0, nanos=-1)
    details = await _fails(usage(pb.GetTrainingUsageRequest(start_time=bad_nanos)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "start_time" in details
    reply = await usage(pb.GetTrainingUsageRequest(start_time=Timestamp(seconds=0)))
    assert reply.training_seconds == 0 and reply.jobs == 0  # nothing ran: the held service starts no job


async def test_create_checks_the_head_of_a_table_and_the_job_reads_all_of_it(tmp_path) -> None:
    """CreateTrainingJob parses at most CHECKED_CELLS feature cells (the whole of a 256 MiB table took 21 s and
    2.9 GB); a non-number past them is named by the job's own read of every row."""
    from services.training.recipes import data
    from services.training.recipes.tabular_dense import CHECKED_CELLS
    from shared.errors import InvalidArgument
    from tests.training.conftest import Stubs, training_service

    columns = 100
    head = CHECKED_CELLS // columns  # the rows CreateTrainingJob reads
    header = ",".join(f"f{j}" for j in range(columns)) + ",label\n"

    def table(bad_row: int) -> bytes:
        rows = [",".join(["1"] * columns) + f",c{n % 2}\n" for n in range(head + 10)]
        rows[bad_row] = rows[bad_row].replace("1", "one", 1)
        return (header + "".join(rows)).encode()

    service = await training_service(tmp_path, max_concurrent_jobs=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stubs = Stubs(channel)
            early = await _dataset(stubs, table(3))
            details = await _fails(stubs.jobs.CreateTrainingJob(_job(early)), grpc.StatusCode.INVALID_ARGUMENT)
            assert "line 5, column 1" in details and "'one'" in details, details
            late = await _dataset(stubs, table(head + 5))
            job = (await stubs.jobs.CreateTrainingJob(_job(late))).job
            assert job.state == pb.JOB_STATE_QUEUED
        with pytest.raises(InvalidArgument) as info:  # what the job's process reads, and fails the job with
            data.read_table(service.jobs.datasets.path(late), "label")
        assert f"line {head + 7}, column 1" in info.value.message, info.value.message
    finally:
        await service.stop(0)
