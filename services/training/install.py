"""Hand a trained model to the service that serves it.

The model's files move to ``<repository>/<name>/versions/<n>/`` (a new version
n; older versions stay on disk beside it) with their own model.json, and
``<repository>/<name>/model.json`` is rewritten (atomically) to point at the
newest, so the name alone means the newest version. Then that service's
ModelRepositoryService.LoadModel loads it; the job succeeds only once the
model is READY there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from lumen.common.v1 import common_pb2, common_pb2_grpc
from services.training.recipes.base import Recipe
from services.training.records import JobRecord
from shared.backend_token import client_interceptors
from shared.errors import InvalidArgument, Unavailable
from shared.model import CONFIG_FILE, write_config

LOAD_TIMEOUT_S = 120.0


def existing_task(repository: Path, name: str) -> str | None:
    """Task of the model ``name`` in ``repository`` (by directory or by model.json name), or None."""
    if not repository.is_dir():
        return None
    for config in repository.glob(f"*/{CONFIG_FILE}"):
        try:
            raw = json.loads(config.read_text())
        except (OSError, ValueError):
            continue
        if (raw.get("name") or config.parent.name) == name:
            return str(raw.get("task", ""))
    return None


def check_name(repository: Path, recipe: Recipe, name: str) -> None:
    task = existing_task(repository, name)
    if task is not None and task != recipe.task:
        raise InvalidArgument("model_name", f"{name!r} is a {task} model of the {recipe.service} service already")


def _next_version(versions: Path) -> int:
    numbers = [int(p.name) for p in versions.iterdir() if p.name.isdigit()] if versions.is_dir() else []
    return max(numbers, default=0) + 1


def place(repository: Path, recipe: Recipe, job: JobRecord, staged: Path, output: dict[str, Any]) -> str:
    """Move the staged model in as a new version; return that version."""
    versions = repository / job.model_name / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    version = _next_version(versions)
    target = versions / str(version)
    shutil.move(str(staged), target)
    config = {
        "task": recipe.task,
        "framework": output["framework"],
        "version": str(version),
        "parameters": output["parameters"],
        "metrics": output["metrics"],
        "training": {
            "job_id": job.id,
            "recipe": job.recipe,
            "dataset_id": job.dataset_id,
            "hyperparameters": job.hyperparameters,
            "validation_split": job.validation_split,
            "seed": job.seed,
        },
    }
    (target / CONFIG_FILE).write_text(
        json.dumps({"name": job.model_name, **config, "path": output.get("path", ".")}, indent=2) + "\n"
    )
    # The name's own model.json sits two folders up: its path and file parameters point into the version.
    here = f"versions/{version}/"
    files = set(output.get("files", ()))
    parameters = {k: here + v if k in files else v for k, v in output["parameters"].items()}
    write_config(
        repository, job.model_name, {**config, "parameters": parameters, "path": here + output.get("path", ".")}
    )
    return str(version)


async def load(address: str, name: str, token_file: str = "") -> None:
    """LoadModel on the serving service; UNAVAILABLE when it cannot be reached, else its load error."""
    async with grpc.aio.insecure_channel(address, interceptors=client_interceptors(token_file)) as channel:
        stub = common_pb2_grpc.ModelRepositoryServiceStub(channel)
        try:
            reply = await stub.LoadModel(common_pb2.LoadModelRequest(name=name), timeout=LOAD_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"loading {name!r} at {address}: {exc.code().name}: {exc.details()}") from None
    if reply.model.state != common_pb2.MODEL_STATE_READY:
        raise Unavailable(f"the serving service could not load {name!r}: {reply.model.error}")
