"""Face galleries in a database: SQLite on one machine, PostgreSQL shared by replicas.

One database holds every gallery, its people and their face embeddings
(float32 little-endian blobs). Each mutation is one transaction and returns
only after COMMIT: with SQLite (``<galleries_dir>/galleries.sqlite3``,
synchronous=FULL) the write-ahead log is fsynced; with PostgreSQL the server
has made it durable, and every replica sees it.

Identification reads an in-memory matrix per gallery, tagged with the
gallery's ``version``, which every mutation bumps in its transaction (that
UPDATE also row-locks the gallery, so replicas' writes to one gallery
serialise). Each identification reads the version first and rebuilds the
matrix when it moved: a person enrolled through any replica is identified by
the next call through any other (read-after-write, one indexed query per call).

Methods are blocking (the data plane calls them in a thread).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from shared.sql_backend import SqlBackend, open_backend

MAX_GALLERIES = 1000
MAX_PERSONS = 100_000
MAX_FACES_PER_PERSON = 100
MAX_ID_CHARS = 256
_GALLERY_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")

_TABLES = """
CREATE TABLE IF NOT EXISTS galleries (
    name TEXT PRIMARY KEY, model TEXT NOT NULL, dimension INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    gallery TEXT NOT NULL REFERENCES galleries(name) ON DELETE CASCADE,
    person_id TEXT NOT NULL, display_name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (gallery, person_id));
CREATE TABLE IF NOT EXISTS faces (
    id {serial}, gallery TEXT NOT NULL, person_id TEXT NOT NULL,
    embedding {blob} NOT NULL,
    FOREIGN KEY (gallery, person_id) REFERENCES persons(gallery, person_id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS faces_by_person ON faces (gallery, person_id);
"""
# Schema steps, applied once each, in order (SQLite: PRAGMA user_version; PostgreSQL: lumen_migrations).
SQLITE_STEPS = [
    _TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB"),
    "ALTER TABLE galleries ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
]
POSTGRES_STEPS = [
    _TABLES.format(serial="BIGSERIAL PRIMARY KEY", blob="BYTEA"),
    "ALTER TABLE galleries ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
]


@dataclass(frozen=True)
class GalleryInfo:
    name: str
    model: str
    dimension: int
    person_count: int
    face_count: int


@dataclass(frozen=True)
class PersonInfo:
    person_id: str
    display_name: str
    face_count: int


@dataclass(frozen=True)
class Candidate:
    person_id: str
    display_name: str
    distance: float


@dataclass
class _Index:
    """A gallery's faces in memory: row i of ``matrix`` belongs to ``owners[i]``."""

    version: int  # the gallery's version it was built from
    matrix: np.ndarray  # (faces, dimension) float32
    owners: np.ndarray  # (faces,) int index into ``people``
    people: list[tuple[str, str]]  # (person_id, display_name)


def check_gallery_name(name: str, field: str = "name") -> None:
    if not _GALLERY_NAME.match(name):
        raise InvalidArgument(field, f"must be 1 to 64 characters of a-z, 0-9, '_' or '-', got {name!r}")


def check_person_id(person_id: str, field: str = "person_id") -> None:
    if not person_id.strip() or len(person_id) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"must be 1 to {MAX_ID_CHARS} characters, not blank")


class GalleryStore:
    def __init__(self, directory: Path, database_url: str = "") -> None:
        """SQLite under ``directory``, or the PostgreSQL at ``database_url`` when set."""
        self._backend: SqlBackend = open_backend(
            database_url, directory / "galleries.sqlite3", "galleries", SQLITE_STEPS, POSTGRES_STEPS
        )
        self._indexes: dict[str, _Index] = {}
        self._index_lock = threading.Lock()

    def close(self) -> None:
        self._backend.close()

    def _transaction(self) -> Any:
        return self._backend.transaction()  # durable on exit

    def _touch(self, db: Any, name: str, field: str) -> None:
        """Bump the gallery's version (row-locking it until COMMIT), or NotFound."""
        if db.execute("UPDATE galleries SET version = version + 1 WHERE name = ?", (name,)).rowcount == 0:
            raise NotFound("gallery", name, field)

    def _gallery_row(self, db: Any, name: str, field: str) -> tuple[str, int]:
        row = db.execute("SELECT model, dimension FROM galleries WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound("gallery", name, field)
        return str(row[0]), int(row[1])

    def _info(self, db: Any, name: str, field: str = "name") -> GalleryInfo:
        model, dimension = self._gallery_row(db, name, field)
        persons = db.execute("SELECT COUNT(*) FROM persons WHERE gallery = ?", (name,)).fetchone()[0]
        faces = db.execute("SELECT COUNT(*) FROM faces WHERE gallery = ?", (name,)).fetchone()[0]
        return GalleryInfo(name, model, dimension, int(persons), int(faces))

    def create(self, name: str, model: str, dimension: int) -> GalleryInfo:
        check_gallery_name(name)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM galleries WHERE name = ?", (name,)).fetchone():
                raise AlreadyExists("gallery", name)
            count = db.execute("SELECT COUNT(*) FROM galleries").fetchone()[0]
            if count >= MAX_GALLERIES:
                raise ResourceExhausted(
                    f"there are already {count} galleries; the limit is {MAX_GALLERIES}", "galleries"
                )
            try:
                # A random first version: a gallery dropped and created again never matches the old one's cache.
                db.execute(
                    "INSERT INTO galleries (name, model, dimension, version) VALUES (?, ?, ?, ?)",
                    (name, model, dimension, secrets.randbits(40) << 20),
                )
            except Exception as exc:  # another replica created it since our SELECT
                if self._backend.is_unique_violation(exc):
                    raise AlreadyExists("gallery", name) from None
                raise
            return GalleryInfo(name, model, dimension, 0, 0)

    def delete(self, name: str) -> None:
        with self._transaction() as db:
            self._touch(db, name, "name")
            db.execute("DELETE FROM faces WHERE gallery = ?", (name,))
            db.execute("DELETE FROM persons WHERE gallery = ?", (name,))
            db.execute("DELETE FROM galleries WHERE name = ?", (name,))
            self._indexes.pop(name, None)

    def get(self, name: str, field: str = "name") -> GalleryInfo:
        with self._backend.read() as db:
            return self._info(db, name, field)

    def list(self) -> list[GalleryInfo]:
        with self._backend.read() as db:
            names = [r[0] for r in db.execute("SELECT name FROM galleries ORDER BY name").fetchall()]
            return [self._info(db, n) for n in names]

    def enroll(
        self, gallery: str, person_id: str, display_name: str, vectors: Sequence[np.ndarray]
    ) -> tuple[PersonInfo | None, int]:
        """Add ``vectors`` to the person (created if new); returns the person and how many
        vectors fitted under the per-person limit (the first ones)."""
        with self._transaction() as db:
            self._touch(db, gallery, "gallery")
            _, dimension = self._gallery_row(db, gallery, "gallery")
            for vector in vectors:
                if vector.shape != (dimension,):
                    raise InvalidArgument("gallery", f"holds {dimension}-d faces; the model gave {vector.shape}")
            row = db.execute(
                "SELECT display_name FROM persons WHERE gallery = ? AND person_id = ?", (gallery, person_id)
            ).fetchone()
            if row is None:
                if not vectors:
                    return None, 0
                persons = db.execute("SELECT COUNT(*) FROM persons WHERE gallery = ?", (gallery,)).fetchone()[0]
                if persons >= MAX_PERSONS:
                    raise ResourceExhausted(
                        f"gallery {gallery!r} holds {persons} people; the limit is {MAX_PERSONS}", gallery
                    )
                db.execute(
                    "INSERT INTO persons (gallery, person_id, display_name) VALUES (?, ?, ?)",
                    (gallery, person_id, display_name),
                )
            elif display_name:
                db.execute(
                    "UPDATE persons SET display_name = ? WHERE gallery = ? AND person_id = ?",
                    (display_name, gallery, person_id),
                )
            have = self._face_count(db, gallery, person_id)
            accepted = list(vectors[: max(0, MAX_FACES_PER_PERSON - have)])
            db.executemany(
                "INSERT INTO faces (gallery, person_id, embedding) VALUES (?, ?, ?)",
                [(gallery, person_id, np.asarray(v, dtype="<f4").tobytes()) for v in accepted],
            )
            return self._person(db, gallery, person_id), len(accepted)

    def _face_count(self, db: Any, gallery: str, person_id: str) -> int:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM faces WHERE gallery = ? AND person_id = ?", (gallery, person_id)
            ).fetchone()[0]
        )

    def _person(self, db: Any, gallery: str, person_id: str) -> PersonInfo:
        row = db.execute(
            "SELECT display_name FROM persons WHERE gallery = ? AND person_id = ?", (gallery, person_id)
        ).fetchone()
        return PersonInfo(person_id, str(row[0]), self._face_count(db, gallery, person_id))

    def delete_person(self, gallery: str, person_id: str) -> None:
        with self._transaction() as db:
            self._touch(db, gallery, "gallery")
            deleted = db.execute(
                "DELETE FROM persons WHERE gallery = ? AND person_id = ?", (gallery, person_id)
            ).rowcount
            if not deleted:
                raise NotFound("person", person_id, "person_id")
            db.execute("DELETE FROM faces WHERE gallery = ? AND person_id = ?", (gallery, person_id))

    def persons(self, gallery: str) -> list[PersonInfo]:
        with self._backend.read() as db:
            self._gallery_row(db, gallery, "gallery")
            rows = db.execute(
                "SELECT p.person_id, p.display_name, COUNT(f.id) FROM persons p "
                "LEFT JOIN faces f ON f.gallery = p.gallery AND f.person_id = p.person_id "
                "WHERE p.gallery = ? GROUP BY p.person_id, p.display_name ORDER BY p.person_id",
                (gallery,),
            ).fetchall()
            return [PersonInfo(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def _index(self, gallery: str) -> _Index:
        with self._backend.read() as db:
            row = db.execute("SELECT dimension, version FROM galleries WHERE name = ?", (gallery,)).fetchone()
            if row is None:
                self._indexes.pop(gallery, None)
                raise NotFound("gallery", gallery, "gallery")
            dimension, version = int(row[0]), int(row[1])
            index = self._indexes.get(gallery)
            if index is not None and index.version == version:
                return index
            index = self._build_index(db, gallery, dimension, version)
        with self._index_lock:
            self._indexes[gallery] = index
        return index

    def _build_index(self, db: Any, gallery: str, dimension: int, version: int) -> _Index:
        people: list[tuple[str, str]] = []
        position: dict[str, int] = {}
        for person_id, display_name in db.execute(
            "SELECT person_id, display_name FROM persons WHERE gallery = ? ORDER BY person_id", (gallery,)
        ).fetchall():
            position[person_id] = len(people)
            people.append((person_id, display_name))
        rows = db.execute("SELECT person_id, embedding FROM faces WHERE gallery = ?", (gallery,)).fetchall()
        matrix = np.zeros((len(rows), dimension), dtype=np.float32)
        owners = np.zeros(len(rows), dtype=np.int64)
        for i, (person_id, blob) in enumerate(rows):
            matrix[i] = np.frombuffer(blob, dtype="<f4")
            owners[i] = position[person_id]
        return _Index(version, matrix, owners, people)

    def nearest(self, gallery: str, queries: Sequence[np.ndarray], top_k: int) -> list[list[Candidate]]:
        """For each query vector, up to top_k people by their nearest enrolled face (Euclidean)."""
        index = self._index(gallery)
        results: list[list[Candidate]] = []
        for query in queries:
            if not index.people or not len(index.matrix):
                results.append([])
                continue
            distances = np.linalg.norm(index.matrix - np.asarray(query, dtype=np.float32), axis=1)
            best = np.full(len(index.people), np.inf)
            np.minimum.at(best, index.owners, distances)
            order = [i for i in np.argsort(best, kind="stable") if np.isfinite(best[i])][:top_k]
            results.append([Candidate(*index.people[i], float(best[i])) for i in order])
        return results
