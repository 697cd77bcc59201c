"""How SQLite files are opened: WAL, foreign keys and a busy timeout on every
connection, even when another process holds the new file at that moment."""

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from peewee import Database, OperationalError

from models.db import close_database, open_database

HELD_FOR = 0.5  # seconds another process keeps a new file locked


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "service.sqlite3"
    close_database()


def pragma(db: Database, name: str) -> object:
    return db.execute_sql(f"PRAGMA {name}").fetchone()[0]  # type: ignore[no-untyped-call]


def test_a_new_file_opens_in_wal_with_foreign_keys_and_a_busy_timeout(
    sqlite_path: Path,
) -> None:
    db = open_database(f"sqlite:///{sqlite_path}", timeout=3)
    assert pragma(db, "journal_mode") == "wal"
    assert pragma(db, "foreign_keys") == 1
    assert pragma(db, "busy_timeout") == 3000


def test_a_new_file_locked_by_another_writer_is_switched_to_wal_once_it_is_free(
    sqlite_path: Path,
) -> None:
    # As when several processes start on a new file at once: SQLite refuses the
    # WAL switch at once, without waiting, while another connection holds a lock.
    holder = sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE first_writer (id INTEGER)")
    release = threading.Timer(HELD_FOR, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        db = open_database(f"sqlite:///{sqlite_path}", timeout=5)
        assert pragma(db, "journal_mode") == "wal"
        assert "first_writer" in db.get_tables()
    finally:
        release.join()
        holder.close()


def test_a_new_file_locked_past_the_timeout_raises_locked(sqlite_path: Path) -> None:
    holder = sqlite3.connect(sqlite_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            open_database(f"sqlite:///{sqlite_path}", timeout=1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
