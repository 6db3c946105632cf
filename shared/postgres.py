"""PostgreSQL as the shared truth of several replicas (collections, galleries).

Blocking psycopg 3 calls, run by the stores on worker threads. Why our own small
pool rather than psycopg_pool: every checkout that finds no idle connection
connects at once (bounded by ``connect_timeout``), so while the server is away a
call fails in milliseconds on loopback instead of queueing behind a reconnect
back-off, and the first call after it returns succeeds: recovery needs no
restart and no timer. A connection error drops every idle connection (they
point at the same server), so stale ones do not fail the calls after a restart.

Every failure to reach the server, a broken connection, or a statement past
``statement_timeout`` becomes `Unavailable` (gRPC UNAVAILABLE), never INTERNAL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from shared.errors import Unavailable

log = logging.getLogger(__name__)

_PING_AFTER_IDLE_S = 5.0  # an idle connection older than this is checked before use


class Tx:
    """One transaction's statements, written with SQLite's ``?`` placeholders."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.conn.execute(sql.replace("?", "%s"), params or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)


def is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.errors.UniqueViolation)


class Postgres:
    def __init__(
        self,
        url: str,
        connect_timeout_s: float = 2.0,
        statement_timeout_ms: int = 5000,
        max_idle: int = 8,
        component: str = "",
        steps: Sequence[str] = (),
    ) -> None:
        """``steps``: ``component``'s schema, applied before the first statement (and retried until it is)."""
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_ms = statement_timeout_ms
        self.max_idle = max_idle
        self._idle: list[tuple[psycopg.Connection, float]] = []
        self._lock = threading.Lock()
        self._schema: tuple[str, list[str]] | None = (component, list(steps)) if steps else None
        self._schema_lock = threading.Lock()

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, round(self.connect_timeout_s)),
            options=f"-c statement_timeout={self.statement_timeout_ms} -c lock_timeout={self.statement_timeout_ms}",
        )

    def _checkout(self) -> psycopg.Connection:
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn, since = self._idle.pop()
            if conn.closed:
                continue
            if time.monotonic() - since > _PING_AFTER_IDLE_S:
                try:
                    conn.execute("SELECT 1")
                except psycopg.Error:
                    conn.close()
                    continue
            return conn
        return self._connect()

    def _checkin(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
            return
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; failures to reach or keep the server become Unavailable."""
        try:
            conn = self._checkout()
        except psycopg.OperationalError as exc:
            self._drop_idle()
            log.warning("PostgreSQL unreachable: %s", _first_line(exc))
            raise Unavailable("the database is unreachable; retry later") from None
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            conn.close()
            self._drop_idle()
            # Host names and server messages go to the log, not to callers.
            log.warning("PostgreSQL call failed: %s", _first_line(exc))
            raise Unavailable("the database did not answer; retry later") from None
        except BaseException:
            self._checkin(conn)
            raise
        self._checkin(conn)

    @contextmanager
    def transaction(self, repeatable_read: bool = False) -> Iterator[Tx]:
        """BEGIN ... COMMIT on a pooled connection (durable on return); ROLLBACK on any exception.

        ``repeatable_read``: every statement reads the one snapshot taken at the first.
        """
        self.ensure_schema()
        with self._connection() as conn, conn.transaction():
            if repeatable_read:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield Tx(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement on its own (autocommit): one round trip."""
        self.ensure_schema()
        with self._connection() as conn:
            return Tx(conn).execute(sql, params).fetchall()

    def ensure_schema(self) -> None:
        """Apply the schema given at construction once; a server away at start is retried by the next call."""
        if self._schema is None:
            return
        with self._schema_lock:
            if self._schema is None:
                return  # type: ignore[unreachable]  # another thread applied it while this one waited
            component, steps = self._schema
            with self._connection() as conn, conn.transaction():
                _migrate(Tx(conn), component, steps)
            self._schema = None

    def close(self) -> None:
        self._drop_idle()


def _migrate(tx: Tx, component: str, steps: Sequence[str]) -> None:
    """Apply the steps of ``component``'s schema not applied yet, in order, in the caller's transaction.

    Replicas starting at once serialise on an advisory lock held until COMMIT: the
    first applies the steps, the others then find them done.
    """
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('lumen-migrations'))")
    tx.execute(
        "CREATE TABLE IF NOT EXISTS lumen_migrations ("
        "component TEXT NOT NULL, step INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
        "PRIMARY KEY (component, step))"
    )
    row = tx.execute("SELECT COALESCE(MAX(step), 0) FROM lumen_migrations WHERE component = ?", (component,)).fetchone()
    done = int(row[0]) if row else 0
    for number, step in enumerate(steps[done:], start=done + 1):
        tx.execute(step)
        tx.execute("INSERT INTO lumen_migrations (component, step) VALUES (?, ?)", (component, number))
        log.info("%s: schema step %d applied", component, number)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
