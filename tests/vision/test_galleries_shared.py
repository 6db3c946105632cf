"""Face galleries in one real PostgreSQL shared by two stores (two replicas' worth), with no models:
the vectors are random 128-d points, identification is by the nearest of them."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from services.vision.galleries import GalleryStore
from shared.errors import AlreadyExists, NotFound, Unavailable
from tools.state_servers import PostgresServer

pytestmark = pytest.mark.slow


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def test_enrolled_through_one_identified_through_the_other(postgres_url: str, tmp_path: Path) -> None:
    a, b = GalleryStore(tmp_path / "a", postgres_url), GalleryStore(tmp_path / "b", postgres_url)
    a.create("crew", "dlib", 128)
    with pytest.raises(AlreadyExists):
        b.create("crew", "dlib", 128)
    assert b.nearest("crew", [unit(1)], 1) == [[]]  # b caches the empty gallery
    a.enroll("crew", "ada", "Ada", [unit(1)])
    a.enroll("crew", "bob", "Bob", [unit(2)])
    [[best, _]] = b.nearest("crew", [unit(1)], 2)  # the next call on b sees a's writes
    assert (best.person_id, best.display_name) == ("ada", "Ada")
    b.delete_person("crew", "ada")
    assert [c.person_id for c in a.nearest("crew", [unit(1)], 2)[0]] == ["bob"]
    b.delete("crew")
    with pytest.raises(NotFound):
        a.nearest("crew", [unit(1)], 1)
    b.create("crew", "dlib", 128)  # same name again: nothing of the old gallery's cache survives
    assert a.nearest("crew", [unit(1)], 1) == [[]]
    assert [g.person_count for g in a.list()] == [0]


def test_replicas_starting_at_once_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    stores: list[GalleryStore] = []

    def start(i: int) -> None:
        try:
            stores.append(GalleryStore(tmp_path / str(i), postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 6
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        steps = conn.execute("SELECT step FROM lumen_migrations WHERE component = 'galleries' ORDER BY step")
        assert [r[0] for r in steps] == [1, 2]


def test_concurrent_enrolls_of_one_new_person_through_two_stores(postgres_url: str, tmp_path: Path) -> None:
    a, b = GalleryStore(tmp_path / "a", postgres_url), GalleryStore(tmp_path / "b", postgres_url)
    a.create("crew", "dlib", 128)
    errors: list[BaseException] = []

    def enroll(store: GalleryStore, seed: int) -> None:
        try:
            for i in range(10):
                store.enroll("crew", "ada", "", [unit(seed * 100 + i)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=enroll, args=(s, n)) for n, s in enumerate((a, b, a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [(p.person_id, p.face_count) for p in b.persons("crew")] == [("ada", 40)]


def test_postgres_away_unavailable_then_back_without_restart(tmp_path: Path) -> None:
    server = PostgresServer()  # its own server: this test stops it
    server.start()
    try:
        store = GalleryStore(tmp_path, server.url)
        store.create("crew", "dlib", 128)
        store.enroll("crew", "ada", "Ada", [unit(1)])
        server.stop()
        for call in (lambda: store.nearest("crew", [unit(1)], 1), lambda: store.enroll("crew", "x", "", [unit(3)])):
            with pytest.raises(Unavailable):  # refused at once: connection refused, or connect_timeout
                call()
        server.start()
        assert store.nearest("crew", [unit(1)], 1)[0][0].person_id == "ada"
        store.enroll("crew", "bob", "", [unit(2)])
        assert [p.person_id for p in store.persons("crew")] == ["ada", "bob"]
    finally:
        server.remove()


def test_a_galleries_database_of_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    """SQLite files written before galleries had a version keep their data and gain the column."""
    import sqlite3

    from services.vision.galleries import SQLITE_STEPS

    old = sqlite3.connect(tmp_path / "galleries.sqlite3")
    old.executescript(SQLITE_STEPS[0])  # the schema as it was, PRAGMA user_version still 0
    old.execute("INSERT INTO galleries (name, model, dimension) VALUES ('crew', 'dlib', 128)")
    old.execute("INSERT INTO persons (gallery, person_id, display_name) VALUES ('crew', 'ada', 'Ada')")
    old.execute("INSERT INTO faces (gallery, person_id, embedding) VALUES ('crew', 'ada', ?)", (unit(1).tobytes(),))
    old.commit()
    old.close()
    store = GalleryStore(tmp_path)
    assert store.nearest("crew", [unit(1)], 1)[0][0].person_id == "ada"
    store.enroll("crew", "bob", "", [unit(2)])
    assert [p.person_id for p in store.persons("crew")] == ["ada", "bob"]
    store.close()
    assert GalleryStore(tmp_path).get("crew").face_count == 2  # and opens again without re-applying
