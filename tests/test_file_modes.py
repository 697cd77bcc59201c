"""Files the service writes are its user's alone: the data folder 0700, the SQLite
database and its -wal and -shm files 0600, like the development secrets beside
them. Real processes, started with a umask that would leave them readable."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_environ
from tests.servers import Servers, run_cli


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def sqlite_environ(data_dir: Path, database: Path) -> dict[str, str]:
    """SQLite at `database` whatever the suite runs on; secrets made in `data_dir`."""
    environ = make_environ(data_dir, USER_SERVICE_DATABASE_URL=f"sqlite:///{database}")
    del environ["USER_SERVICE_DATA_KEY"]
    return environ


@pytest.fixture(autouse=True)
def readable_umask() -> Iterator[None]:
    """The common default: without care, new files would be 0644, folders 0755."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


def test_a_fresh_data_folder_and_everything_in_it_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = run_cli(sqlite_environ(data, data / "users.db"), "migrate")
    assert run.returncode == 0, run.stderr
    assert mode(data) == "0o700"
    modes = {path.name: mode(path) for path in data.iterdir()}
    assert {"users.db", "data-key"} <= modes.keys()
    assert set(modes.values()) == {"0o600"}, modes


@pytest.mark.slow
def test_a_serving_database_and_its_wal_and_shm_files_are_private(
    tmp_path: Path, servers: Servers
) -> None:
    database = tmp_path / "elsewhere" / "users.db"  # outside the data folder
    server = servers.start(sqlite_environ(tmp_path, database))
    server.dev.sign_up("ann@x.io").ok()  # a write: the -wal file has pages
    files = [
        database,
        database.with_name("users.db-wal"),
        database.with_name("users.db-shm"),
    ]
    assert {path.name: mode(path) for path in files} == {
        "users.db": "0o600",
        "users.db-wal": "0o600",
        "users.db-shm": "0o600",
    }
    assert mode(database.parent) == "0o700"


def test_an_existing_folder_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    run = run_cli(sqlite_environ(tmp_path, shared / "users.db"), "migrate")
    assert run.returncode == 0, run.stderr
    assert (mode(shared), mode(shared / "users.db")) == ("0o755", "0o600")


def test_an_existing_readable_database_is_made_private(tmp_path: Path) -> None:
    database = tmp_path / "users.db"
    run_cli(sqlite_environ(tmp_path, database), "migrate")
    database.chmod(0o644)  # as earlier versions left it
    run = run_cli(sqlite_environ(tmp_path, database), "migrate")
    assert run.returncode == 0, run.stderr
    assert mode(database) == "0o600"
