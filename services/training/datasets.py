"""Datasets: streamed in, validated as they arrive, stored under their sha256."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from lumen.training.v1 import training_pb2
from services.training.dataset_formats import VALIDATORS, RecordLimits
from services.training.records import DatasetRecord
from services.training.store import SqliteStore
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted


class Datasets:
    def __init__(self, store: SqliteStore, root: Path, max_bytes: int, limits: RecordLimits) -> None:
        self.store, self.root, self.max_bytes, self.limits = store, root, max_bytes, limits
        root.mkdir(parents=True, exist_ok=True)

    def path(self, dataset_id: str) -> Path:
        return self.root / dataset_id

    async def upload(
        self, parts: AsyncIterator[training_pb2.UploadDatasetRequest], owner: str = "", owner_limit: int = 0
    ) -> tuple[DatasetRecord, bool]:
        """Store the dataset streamed in ``parts``; (its record, whether those bytes were stored already).

        ``owner_limit`` > 0: the bytes of datasets ``owner`` may keep stored (its key's dataset_bytes)."""
        first = await anext(parts, None)
        if first is None or first.WhichOneof("part") != "spec":
            raise InvalidArgument("spec", "the first message must carry the dataset spec")
        spec = first.spec
        if spec.format not in VALIDATORS:
            raise InvalidArgument("spec.format", "is required (CSV, JSONL, TEXT or IMAGE_ZIP)")
        if len(spec.display_name) > 128:
            raise InvalidArgument("spec.display_name", "at most 128 characters")
        label_column = spec.label_column or "label"
        validator = VALIDATORS[spec.format](label_column, self.limits)
        digest, size = hashlib.sha256(), 0
        partial = self.root / f".upload-{uuid.uuid4().hex}"
        try:
            with partial.open("wb") as out:
                async for part in parts:
                    if part.WhichOneof("part") != "chunk":
                        raise InvalidArgument("spec", "only the first message may carry a spec")
                    size += len(part.chunk)
                    if size > self.max_bytes:
                        raise ResourceExhausted(
                            f"dataset passes max_dataset_bytes ({self.max_bytes} bytes)", subject="dataset"
                        )
                    if 0 < owner_limit < size:  # more than the key may store at all: no need to read on
                        raise self._over_limit(owner, owner_limit, size)
                    validator.feed(part.chunk)
                    digest.update(part.chunk)
                    out.write(part.chunk)
                out.flush()
                os.fsync(out.fileno())
            summary = await asyncio.to_thread(validator.finish, partial)  # a zip is checked whole: off the loop
            dataset_id = digest.hexdigest()
            if owner_limit > 0:
                # No await from here to put_dataset: two uploads of one key cannot both take the last bytes.
                existing = self.store.get_dataset(dataset_id)
                if existing is None or owner not in existing.owners:
                    self._check_room(owner, owner_limit, size)
            target = self.path(dataset_id)
            if not target.exists():
                partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        record = DatasetRecord(
            id=dataset_id,
            format=spec.format,
            label_column=label_column,
            display_name=spec.display_name,
            size_bytes=size,
            record_count=summary.records,
            columns=summary.columns,
            labels=sorted(summary.labels),
            owners=[owner] if owner else [],
        )
        stored, created = self.store.put_dataset(record)
        return stored, not created

    def _check_room(self, owner: str, limit: int, size: int) -> None:
        used = self.store.dataset_bytes_of(owner)
        if used + size > limit:
            raise self._over_limit(owner, limit, size, used)

    @staticmethod
    def _over_limit(owner: str, limit: int, size: int, used: int | None = None) -> ResourceExhausted:
        stored = f"stores {used} bytes of datasets and " if used is not None else ""
        return ResourceExhausted(
            f"key {owner!r} {stored}may store {limit} bytes (its dataset_bytes limit): this dataset "
            f"({size}{'' if used is not None else '+'} bytes) does not fit; delete datasets it no longer needs",
            subject=f"key:{owner}",
        )

    def get(self, dataset_id: str, field: str = "id") -> DatasetRecord:
        record = self.store.get_dataset(dataset_id) if dataset_id else None
        if record is None:
            raise NotFound("dataset", dataset_id, field)
        return record

    def delete(self, dataset_id: str) -> None:
        self.get(dataset_id)
        users = [j.id for j in self.store.jobs_using(dataset_id) if not j.ended]
        if users:
            raise FailedPrecondition(f"dataset {dataset_id!r} is used by unfinished job(s) {', '.join(users)}")
        self.store.delete_dataset(dataset_id)
        self.path(dataset_id).unlink(missing_ok=True)
