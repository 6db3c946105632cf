"""Face galleries on disk: SQLite with synchronous=FULL, so that a write the service
acknowledged survives a crash or a restart.

One database file (``<galleries_dir>/galleries.sqlite3``) holds every gallery,
its people and their face embeddings (float32 little-endian BLOBs). Each
mutation is one transaction; it returns only after COMMIT, which with
``synchronous=FULL`` has fsynced the write-ahead log. Reads for identification
use an in-memory matrix per gallery, rebuilt after that gallery changes.

Methods are blocking (the data plane calls them in a thread); one lock
serialises access to the one connection.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.durable_sqlite import open_durable, transaction
from shared.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted

MAX_GALLERIES = 1000
MAX_PERSONS = 100_000
MAX_FACES_PER_PERSON = 100
MAX_ID_CHARS = 256
_GALLERY_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS galleries (
    name TEXT PRIMARY KEY, model TEXT NOT NULL, dimension INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    gallery TEXT NOT NULL REFERENCES galleries(name) ON DELETE CASCADE,
    person_id TEXT NOT NULL, display_name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (gallery, person_id));
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT, gallery TEXT NOT NULL, person_id TEXT NOT NULL,
    embedding BLOB NOT NULL,
    FOREIGN KEY (gallery, person_id) REFERENCES persons(gallery, person_id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS faces_by_person ON faces (gallery, person_id);
"""


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
    def __init__(self, directory: Path) -> None:
        self.path = directory / "galleries.sqlite3"
        self._lock = threading.Lock()
        self._db = open_durable(self.path, _SCHEMA)
        self._indexes: dict[str, _Index] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._db) as db:  # durable on exit: synchronous=FULL
            yield db

    def _gallery_row(self, db: sqlite3.Connection, name: str, field: str) -> tuple[str, int]:
        row = db.execute("SELECT model, dimension FROM galleries WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound("gallery", name, field)
        return str(row[0]), int(row[1])

    def _info(self, db: sqlite3.Connection, name: str, field: str = "name") -> GalleryInfo:
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
            db.execute("INSERT INTO galleries (name, model, dimension) VALUES (?, ?, ?)", (name, model, dimension))
            return GalleryInfo(name, model, dimension, 0, 0)

    def delete(self, name: str) -> None:
        with self._transaction() as db:
            self._gallery_row(db, name, "name")
            db.execute("DELETE FROM faces WHERE gallery = ?", (name,))
            db.execute("DELETE FROM persons WHERE gallery = ?", (name,))
            db.execute("DELETE FROM galleries WHERE name = ?", (name,))
            self._indexes.pop(name, None)

    def get(self, name: str, field: str = "name") -> GalleryInfo:
        with self._lock:
            return self._info(self._db, name, field)

    def list(self) -> list[GalleryInfo]:
        with self._lock:
            names = [r[0] for r in self._db.execute("SELECT name FROM galleries ORDER BY name")]
            return [self._info(self._db, n) for n in names]

    def enroll(
        self, gallery: str, person_id: str, display_name: str, vectors: Sequence[np.ndarray]
    ) -> tuple[PersonInfo | None, int]:
        """Add ``vectors`` to the person (created if new); returns the person and how many
        vectors fitted under the per-person limit (the first ones)."""
        with self._transaction() as db:
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
            if accepted or display_name:
                self._indexes.pop(gallery, None)
            return self._person(db, gallery, person_id), len(accepted)

    def _face_count(self, db: sqlite3.Connection, gallery: str, person_id: str) -> int:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM faces WHERE gallery = ? AND person_id = ?", (gallery, person_id)
            ).fetchone()[0]
        )

    def _person(self, db: sqlite3.Connection, gallery: str, person_id: str) -> PersonInfo:
        row = db.execute(
            "SELECT display_name FROM persons WHERE gallery = ? AND person_id = ?", (gallery, person_id)
        ).fetchone()
        return PersonInfo(person_id, str(row[0]), self._face_count(db, gallery, person_id))

    def delete_person(self, gallery: str, person_id: str) -> None:
        with self._transaction() as db:
            self._gallery_row(db, gallery, "gallery")
            deleted = db.execute(
                "DELETE FROM persons WHERE gallery = ? AND person_id = ?", (gallery, person_id)
            ).rowcount
            if not deleted:
                raise NotFound("person", person_id, "person_id")
            db.execute("DELETE FROM faces WHERE gallery = ? AND person_id = ?", (gallery, person_id))
            self._indexes.pop(gallery, None)

    def persons(self, gallery: str) -> list[PersonInfo]:
        with self._lock:
            self._gallery_row(self._db, gallery, "gallery")
            rows = self._db.execute(
                "SELECT p.person_id, p.display_name, COUNT(f.id) FROM persons p "
                "LEFT JOIN faces f ON f.gallery = p.gallery AND f.person_id = p.person_id "
                "WHERE p.gallery = ? GROUP BY p.person_id, p.display_name ORDER BY p.person_id",
                (gallery,),
            ).fetchall()
            return [PersonInfo(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def _index(self, gallery: str) -> _Index:
        index = self._indexes.get(gallery)
        if index is not None:
            return index
        _, dimension = self._gallery_row(self._db, gallery, "gallery")
        people: list[tuple[str, str]] = []
        position: dict[str, int] = {}
        for person_id, display_name in self._db.execute(
            "SELECT person_id, display_name FROM persons WHERE gallery = ? ORDER BY person_id", (gallery,)
        ):
            position[person_id] = len(people)
            people.append((person_id, display_name))
        rows = self._db.execute("SELECT person_id, embedding FROM faces WHERE gallery = ?", (gallery,)).fetchall()
        matrix = np.zeros((len(rows), dimension), dtype=np.float32)
        owners = np.zeros(len(rows), dtype=np.int64)
        for i, (person_id, blob) in enumerate(rows):
            matrix[i] = np.frombuffer(blob, dtype="<f4")
            owners[i] = position[person_id]
        index = _Index(matrix, owners, people)
        self._indexes[gallery] = index
        return index

    def nearest(self, gallery: str, queries: Sequence[np.ndarray], top_k: int) -> list[list[Candidate]]:
        """For each query vector, up to top_k people by their nearest enrolled face (Euclidean)."""
        with self._lock:
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
