"""One SQL database behind a store: SQLite on one machine, PostgreSQL shared by replicas.

Stores write their SQL once, with ``?`` placeholders and the common subset of
both dialects; only the schema steps differ. ``transaction()`` is a write
(durable when it returns), ``read()`` a consistent read. Both backends are
blocking: stores call them from worker threads.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from shared.durable_sqlite import migrate, open_durable, transaction
from shared.errors import Unavailable

log = logging.getLogger(__name__)


class SqlBackend(Protocol):
    shared: bool  # True when other processes write the same database

    def transaction(self) -> AbstractContextManager[Any]: ...

    def read(self) -> AbstractContextManager[Any]: ...

    def is_unique_violation(self, exc: BaseException) -> bool: ...

    def close(self) -> None: ...


class SqliteBackend:
    """One connection, one lock: this process is the only writer (WAL, synchronous=FULL)."""

    shared = False

    def __init__(self, path: Path, steps: Sequence[str]) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_durable(path, "")
        migrate(self._db, steps)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._db) as db:
            yield db

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresBackend:
    shared = True

    def __init__(self, url: str, component: str, steps: Sequence[str]) -> None:
        from shared.postgres import Postgres  # psycopg only where PostgreSQL is configured

        self.pg = Postgres(url, component=component, steps=steps)
        try:
            self.pg.ensure_schema()
        except Unavailable as exc:  # serve what needs no database; the first call retries the schema
            log.warning("%s: PostgreSQL unreachable at start (%s); retrying on use", component, exc.message)

    def transaction(self) -> AbstractContextManager[Any]:
        return self.pg.transaction()

    def read(self) -> AbstractContextManager[Any]:
        return self.pg.transaction(repeatable_read=True)

    def is_unique_violation(self, exc: BaseException) -> bool:
        from shared.postgres import is_unique_violation

        return is_unique_violation(exc)

    def close(self) -> None:
        self.pg.close()


def open_backend(
    url: str, sqlite_path: Path, component: str, sqlite_steps: Sequence[str], postgres_steps: Sequence[str]
) -> SqlBackend:
    """PostgreSQL when ``url`` is set (postgresql://...), else SQLite at ``sqlite_path``."""
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"database URL must start with postgresql://, got {url.split(':', 1)[0]}:")
        return PostgresBackend(url, component, postgres_steps)
    return SqliteBackend(sqlite_path, sqlite_steps)
