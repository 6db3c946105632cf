"""The durable SQLite helper: a failed COMMIT rolls back and the connection keeps working; a full
disk is RESOURCE_EXHAUSTED with nothing of the write kept (a real tmpfs of a few hundred KB)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared.durable_sqlite import open_durable, transaction
from shared.errors import ResourceExhausted
from tests.shared.tmpfs import fill, small_tmpfs

SCHEMA = """
CREATE TABLE IF NOT EXISTS parents (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES parents(id) DEFERRABLE INITIALLY DEFERRED,
    body BLOB
);
"""


def count(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]


def test_a_failed_commit_rolls_back_and_later_writes_work(tmp_path: Path) -> None:
    """A deferred foreign key fails at COMMIT, which SQLite leaves open unless we roll back."""
    db = open_durable(tmp_path / "db.sqlite", SCHEMA)
    with pytest.raises(sqlite3.IntegrityError), transaction(db) as tx:
        tx.execute("INSERT INTO rows (parent, body) VALUES (42, x'00')")  # no parent 42: fails at COMMIT
    assert not db.in_transaction
    assert count(db) == 0
    with transaction(db) as tx:
        tx.execute("INSERT INTO parents (id) VALUES (1)")
        tx.execute("INSERT INTO rows (parent, body) VALUES (1, x'00')")
    assert count(db) == 1
    db.close()


def test_disk_full_is_resource_exhausted_and_nothing_half_written(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        db = open_durable(disk / "db.sqlite", SCHEMA)
        with transaction(db) as tx:
            tx.execute("INSERT INTO rows (body) VALUES (?)", (b"a" * 1000,))
        filler = fill(disk, leave_bytes=64 * 1024)
        with pytest.raises(ResourceExhausted) as raised, transaction(db) as tx:
            for _ in range(40):  # 400 KB: more than is left
                tx.execute("INSERT INTO rows (body) VALUES (?)", (b"b" * 10_000,))
        assert "full" in str(raised.value)
        assert not db.in_transaction
        assert count(db) == 1  # none of the 40 rows
        filler.unlink()  # space again: the same connection writes
        with transaction(db) as tx:
            tx.execute("INSERT INTO rows (body) VALUES (?)", (b"c" * 10_000,))
        assert count(db) == 2
        db.close()
        reopened = sqlite3.connect(disk / "db.sqlite")
        assert reopened.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 2
        reopened.close()
