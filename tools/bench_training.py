"""`make bench`'s training part: what a training job costs the serving beside it.

One recipe (tabular-dense on scikit-learn's digits, 1,797 rows x 64 features)
trains through the training service (a niced, one-thread subprocess, as the
local executor runs every job) while callers embed sentences through the
embeddings service at concurrency 8. Reported: the job's wall time, and the
embeddings throughput while it runs as a ratio to the throughput measured just
before it, on the same services (issue 12's goal: >= 0.7 on a 2-core machine).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio

from lumen.training.v1 import training_pb2 as tpb
from lumen.training.v1 import training_pb2_grpc as tpb_grpc
from tools.suite import Suite

CONCURRENCY = 8
CHUNK = 1 << 16
EPOCHS = 80  # long enough for several measuring windows
TERMINAL = {tpb.JOB_STATE_SUCCEEDED, tpb.JOB_STATE_FAILED, tpb.JOB_STATE_CANCELLED}


def digits_csv() -> bytes:
    from sklearn import datasets

    bunch = datasets.load_digits()
    out = io.StringIO()
    out.write(",".join([*(f"p{i}" for i in range(64)), "label"]) + "\n")
    for row, target in zip(bunch.data, bunch.target, strict=True):
        out.write(",".join(f"{v:g}" for v in row) + f",d{target}\n")
    return out.getvalue().encode()


async def upload(channel: grpc.aio.Channel, payload: bytes) -> str:
    async def parts() -> AsyncIterator[tpb.UploadDatasetRequest]:
        yield tpb.UploadDatasetRequest(
            spec=tpb.DatasetSpec(display_name="digits", format=tpb.DATASET_FORMAT_CSV, label_column="label")
        )
        for start in range(0, len(payload), CHUNK):
            yield tpb.UploadDatasetRequest(chunk=payload[start : start + CHUNK])

    return (await tpb_grpc.DatasetServiceStub(channel).UploadDataset(parts())).dataset.id


async def train_while_serving(training: str, embeddings: str, seconds: float) -> dict[str, Any]:
    from tools.bench import embed_load

    baseline = await embed_load(embeddings, CONCURRENCY, seconds)
    async with grpc.aio.insecure_channel(training) as channel:
        jobs = tpb_grpc.TrainingServiceStub(channel)
        dataset = await upload(channel, digits_csv())
        started = time.perf_counter()
        job = (
            await jobs.CreateTrainingJob(
                tpb.CreateTrainingJobRequest(
                    recipe="tabular-dense",
                    dataset_id=dataset,
                    model_name="bench-digits",
                    hyperparameters={"epochs": float(EPOCHS)},
                    seed=7,
                )
            )
        ).job
        during: list[dict[str, float]] = []
        while True:
            job = (await jobs.GetTrainingJob(tpb.GetTrainingJobRequest(id=job.id))).job
            if job.state in TERMINAL:
                break
            point = await embed_load(embeddings, CONCURRENCY, seconds)
            # Only windows that ran wholly while the job trained count.
            if (await jobs.GetTrainingJob(tpb.GetTrainingJobRequest(id=job.id))).job.state == tpb.JOB_STATE_RUNNING:
                during.append(point)
        wall = time.perf_counter() - started
    while_training = sum(p["per_s"] for p in during) / len(during) if during else 0.0
    return {
        "recipe": "tabular-dense",
        "dataset": "scikit-learn digits (1,797 x 64)",
        "epochs": EPOCHS,
        "state": tpb.JobState.Name(job.state),
        "heldout_accuracy": dict(job.result.metrics).get("heldout_accuracy"),
        "job_wall_s": wall,
        "embeddings_concurrency": CONCURRENCY,
        "embeddings_alone_per_s": baseline["per_s"],
        "embeddings_while_training_per_s": while_training,
        "windows_while_training": len(during),
        "ratio": while_training / baseline["per_s"] if during else None,
    }


def bench_training(suite: Suite, scratch: Path, seconds: float, threads: str) -> dict[str, Any]:
    from tools.bench import start, start_embeddings

    print("training while serving (tabular-dense on digits, embeddings at c=8)...", flush=True)
    tabular_repo = scratch / "tabular-models"
    tabular_repo.mkdir(exist_ok=True)
    embeddings = start_embeddings(suite, scratch, threads, "collections-training")
    tabular = start(suite, "tabular", {"MODEL_REPOSITORY": str(tabular_repo)}, scratch)
    training = start(
        suite,
        "training",
        {
            "DATA_DIR": str(scratch / "training"),
            "TABULAR_ADDRESS": tabular,
            "TABULAR_REPOSITORY": str(tabular_repo),
        },
        scratch,
    )
    suite.wait_serving(["embeddings", "tabular", "training"])
    result = asyncio.run(train_while_serving(training, embeddings, seconds))
    for name in ("training", "tabular", "embeddings"):
        suite.stop_component(name)
    print(
        f"  job {result['state']} in {result['job_wall_s']:.1f} s; embeddings c=8 "
        f"{result['embeddings_alone_per_s']:.0f}/s alone, {result['embeddings_while_training_per_s']:.0f}/s "
        f"while training (ratio {result['ratio']})",
        flush=True,
    )
    return result
