"""ListDatasets and ListTrainingJobs pages (AIP-158): every record once, newest first, across
insertions between pages; opaque tokens good only for the same filter; bad tokens name page_token.

The service starts no job (max_concurrent_jobs=0): every job stays QUEUED unless cancelled."""

from __future__ import annotations

import grpc
import pytest

from lumen.training.v1 import training_pb2 as pb
from tests.training.data import sklearn_csv, upload_parts


async def _refused(call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return info.value.details() or ""


async def _create(stubs, dataset: str, n: int) -> str:
    request = pb.CreateTrainingJobRequest(recipe="tabular-dense", dataset_id=dataset, model_name=f"iris-{n}")
    return (await stubs.jobs.CreateTrainingJob(request)).job.id


async def test_job_pages_hold_each_job_once_across_a_creation_between_pages(held) -> None:
    _, stubs = held
    iris = (await stubs.datasets.UploadDataset(upload_parts(sklearn_csv("iris")))).dataset.id
    ids = [await _create(stubs, iris, n) for n in range(5)]
    first = await stubs.jobs.ListTrainingJobs(pb.ListTrainingJobsRequest(page_size=2))
    assert [j.id for j in first.jobs] == ids[:2:-1] and first.next_page_token
    newer = await _create(stubs, iris, 5)  # lands before the first page: the next pages do not shift
    seen, token = [j.id for j in first.jobs], first.next_page_token
    while token:
        page = await stubs.jobs.ListTrainingJobs(pb.ListTrainingJobsRequest(page_size=2, page_token=token))
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
    assert seen == ids[::-1] and newer not in seen
    assert first.next_page_token.isascii() and not first.next_page_token.isdigit()  # opaque, not a row number


async def test_a_token_is_good_for_its_own_state_filter_only(held) -> None:
    _, stubs = held
    iris = (await stubs.datasets.UploadDataset(upload_parts(sklearn_csv("iris")))).dataset.id
    ids = [await _create(stubs, iris, n) for n in range(4)]
    await stubs.jobs.CancelTrainingJob(pb.CancelTrainingJobRequest(id=ids[1]))
    queued = pb.ListTrainingJobsRequest(state=pb.JOB_STATE_QUEUED, page_size=2)
    first = await stubs.jobs.ListTrainingJobs(queued)
    assert [j.id for j in first.jobs] == [ids[3], ids[2]]
    queued.page_token = first.next_page_token
    assert [j.id for j in (await stubs.jobs.ListTrainingJobs(queued)).jobs] == [ids[0]]
    other = pb.ListTrainingJobsRequest(state=pb.JOB_STATE_CANCELLED, page_size=2, page_token=first.next_page_token)
    details = await _refused(stubs.jobs.ListTrainingJobs(other))
    assert "page_token" in details and "other fields" in details
    unfiltered = pb.ListTrainingJobsRequest(page_size=2, page_token=first.next_page_token)
    assert "page_token" in await _refused(stubs.jobs.ListTrainingJobs(unfiltered))


@pytest.mark.parametrize("token", ["12", "not a token", "eyJ2IjoxfQ", "eyJ2IjoxLCJhZnRlciI6ImEiLCJxdWVyeSI6IiJ9"])
async def test_tokens_not_made_by_the_call_name_page_token(held, token: str) -> None:
    """A bare row number (the old tokens), garbage, JSON without the fields, a key that is no row number."""
    _, stubs = held
    assert "page_token" in await _refused(stubs.datasets.ListDatasets(pb.ListDatasetsRequest(page_token=token)))
    job_call = stubs.jobs.ListTrainingJobs(pb.ListTrainingJobsRequest(page_token=token))
    assert "page_token" in await _refused(job_call)
