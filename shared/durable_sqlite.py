"""SQLite opened for durable acknowledgements (collections, galleries).

WAL mode with ``synchronous=FULL``: a COMMIT returns only once the write-ahead
log is fsynced, so a write acknowledged after its transaction survives kill -9
and power loss, while a transaction in flight when the process dies is rolled
back whole at the next open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def open_durable(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode with synchronous=FULL and apply ``schema``.

    Autocommit mode (transactions are explicit, see `transaction`); the
    connection may be handed to another thread, the caller serialises access.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise RuntimeError(f"{path}: SQLite refused WAL mode ({mode})")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(schema)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (durable on return), ROLLBACK on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection, steps: Sequence[str]) -> None:
    """Apply the schema steps not applied yet (counted in PRAGMA user_version), each in its transaction."""
    done = int(db.execute("PRAGMA user_version").fetchone()[0])
    for number, step in enumerate(steps[done:], start=done + 1):
        try:
            db.executescript(f"BEGIN IMMEDIATE;\n{step};\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
