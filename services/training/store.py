"""Durable records of datasets and jobs.

`JobStore` is the interface the service needs; `SqliteStore` implements it
(and the dataset records) on shared.durable_sqlite, so an acknowledged write
survives kill -9. A PostgreSQL store can implement the same methods.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

from services.training.records import DatasetRecord, JobRecord
from shared.durable_sqlite import open_durable, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    request_id TEXT,
    state TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_request_id ON jobs(request_id) WHERE request_id != '';
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
"""


class JobStore(Protocol):
    def create_job(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Insert ``job``; with a request id already used, return that job and False."""
        ...

    def get_job(self, job_id: str) -> JobRecord | None: ...

    def job_for_request(self, request_id: str) -> JobRecord | None: ...

    def save_job(self, job: JobRecord) -> None: ...

    def delete_job(self, job_id: str) -> None: ...

    def list_jobs(self, state: str = "", before_seq: int = 0, limit: int = 50) -> list[JobRecord]:
        """Newest first; ``before_seq`` > 0 continues after that job (pagination)."""
        ...

    def jobs_in(self, states: tuple[str, ...]) -> list[JobRecord]:
        """Oldest first: the order the executor takes them."""
        ...


def _job(seq: int, body: str) -> JobRecord:
    return JobRecord(**{**json.loads(body), "seq": seq})


def _body(record: Any) -> str:
    raw = dataclasses.asdict(record)
    raw.pop("seq", None)
    return json.dumps(raw)


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.db: sqlite3.Connection = open_durable(path, SCHEMA)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    # datasets
    def put_dataset(self, record: DatasetRecord) -> tuple[DatasetRecord, bool]:
        """Insert ``record``; for bytes stored already, add its owners to that record and return it and False."""
        with self.lock, transaction(self.db) as db:
            row = db.execute("SELECT body FROM datasets WHERE id = ?", (record.id,)).fetchone()
            if row is not None:
                existing = DatasetRecord(**json.loads(row[0]))
                added = [o for o in record.owners if o not in existing.owners]
                if added:
                    existing.owners += added
                    db.execute("UPDATE datasets SET body = ? WHERE id = ?", (_body(existing), existing.id))
                return existing, False
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM datasets").fetchone()[0]
            db.execute("INSERT INTO datasets (id, seq, body) VALUES (?, ?, ?)", (record.id, seq, _body(record)))
            return record, True

    def get_dataset(self, dataset_id: str) -> DatasetRecord | None:
        with self.lock:
            row = self.db.execute("SELECT body FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return DatasetRecord(**json.loads(row[0])) if row else None

    def list_datasets(self, before_seq: int = 0, limit: int = 50) -> list[tuple[int, DatasetRecord]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT seq, body FROM datasets WHERE (? = 0 OR seq < ?) ORDER BY seq DESC LIMIT ?",
                (before_seq, before_seq, limit),
            ).fetchall()
        return [(seq, DatasetRecord(**json.loads(body))) for seq, body in rows]

    def dataset_bytes_of(self, owner: str) -> int:
        """Bytes of the datasets ``owner`` uploaded (each counted once)."""
        with self.lock:
            rows = self.db.execute("SELECT body FROM datasets").fetchall()
        records = (DatasetRecord(**json.loads(body)) for (body,) in rows)
        return sum(r.size_bytes for r in records if owner in r.owners)

    def delete_dataset(self, dataset_id: str) -> None:
        with self.lock, transaction(self.db) as db:
            db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))

    # jobs (JobStore)
    def create_job(self, job: JobRecord) -> tuple[JobRecord, bool]:
        with self.lock, transaction(self.db) as db:
            if job.request_id:
                row = db.execute("SELECT seq, body FROM jobs WHERE request_id = ?", (job.request_id,)).fetchone()
                if row is not None:
                    return _job(*row), False
            cursor = db.execute(
                "INSERT INTO jobs (id, request_id, state, body) VALUES (?, ?, ?, ?)",
                (job.id, job.request_id, job.state, _body(job)),
            )
            job.seq = int(cursor.lastrowid or 0)
            return job, True

    def get_job(self, job_id: str) -> JobRecord | None:
        with self.lock:
            row = self.db.execute("SELECT seq, body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(*row) if row else None

    def job_for_request(self, request_id: str) -> JobRecord | None:
        with self.lock:
            row = self.db.execute("SELECT seq, body FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
        return _job(*row) if row else None

    def save_job(self, job: JobRecord) -> None:
        with self.lock, transaction(self.db) as db:
            db.execute("UPDATE jobs SET state = ?, body = ? WHERE id = ?", (job.state, _body(job), job.id))

    def delete_job(self, job_id: str) -> None:
        with self.lock, transaction(self.db) as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def list_jobs(self, state: str = "", before_seq: int = 0, limit: int = 50) -> list[JobRecord]:
        with self.lock:
            rows = self.db.execute(
                "SELECT seq, body FROM jobs WHERE (? = '' OR state = ?) AND (? = 0 OR seq < ?) "
                "ORDER BY seq DESC LIMIT ?",
                (state, state, before_seq, before_seq, limit),
            ).fetchall()
        return [_job(*row) for row in rows]

    def jobs_in(self, states: tuple[str, ...]) -> list[JobRecord]:
        marks = ",".join("?" * len(states))
        with self.lock:
            rows = self.db.execute(
                f"SELECT seq, body FROM jobs WHERE state IN ({marks}) ORDER BY seq", states
            ).fetchall()
        return [_job(*row) for row in rows]

    def jobs_of(self, owner: str) -> list[JobRecord]:
        with self.lock:
            rows = self.db.execute("SELECT seq, body FROM jobs ORDER BY seq").fetchall()
        return [j for j in (_job(*r) for r in rows) if j.owner == owner]

    def jobs_using(self, dataset_id: str) -> list[JobRecord]:
        with self.lock:
            rows = self.db.execute("SELECT seq, body FROM jobs ORDER BY seq").fetchall()
        return [j for j in (_job(*r) for r in rows) if j.dataset_id == dataset_id]
