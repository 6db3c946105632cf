"""SQLite opened for durable acknowledgements (collections, galleries).

WAL mode with ``synchronous=FULL``: a COMMIT returns only once the write-ahead
log is fsynced, so a write acknowledged after its transaction survives kill -9
and power loss, while a transaction in flight when the process dies is rolled
back whole at the next open.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shared.errors import ResourceExhausted

log = logging.getLogger(__name__)


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


# SQLite's result codes for "no space": the disk (or the file-size limit) is full, or the
# write of the WAL or of a page failed for that reason (SQLITE_IOERR_WRITE carries ENOSPC).
_FULL_CODES = {sqlite3.SQLITE_FULL, getattr(sqlite3, "SQLITE_IOERR_WRITE", 778)}


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _FULL_CODES or "disk is full" in str(exc)


def _rollback(db: sqlite3.Connection) -> None:
    # After a failed COMMIT SQLite may already have rolled back (disk full does);
    # a second ROLLBACK then fails with "no transaction is active", which is fine.
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("ROLLBACK failed; the connection stays usable once SQLite ends the transaction")


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (durable on return), ROLLBACK on any exception.

    A COMMIT that fails also rolls back, so the connection leaves the
    transaction and later writes work again; nothing of the failed one stays.
    A full disk raises ResourceExhausted (the caller may retry once space is
    freed) instead of a bare sqlite3 error.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
    except sqlite3.Error as exc:
        if _is_full(exc):
            raise ResourceExhausted(
                "the service's storage is full; nothing of this write was kept", subject="disk"
            ) from exc
        raise


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
