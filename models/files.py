"""The SQLite database's files, private to the service's user like its secrets.

`make_sqlite_files_private(url)` runs before SQLite opens the file; nothing here
connects or knows the tables.
"""

import contextlib
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
# SQLite gives each of these the mode of the database file when it makes them.
COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL names; None for other databases and memory."""
    if not url.startswith("sqlite"):
        return None
    path = urlsplit(url).path[1:]  # sqlite:///rel/x.db and sqlite:////abs/x.db
    if not path or path == ":memory:":
        return None
    return Path(path)


def make_sqlite_files_private(url: str) -> None:
    """Create the database file 0600, in a folder created 0700, before SQLite does.

    SQLite makes its -wal and -shm files with the database file's mode, so they
    are 0600 too. A folder that exists is left as it is (the operator chose
    it); files of the database that exist lose what group and others may do.
    """
    path = sqlite_file(url)
    if path is None:
        return
    if not path.parent.exists():
        path.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for file in (path, *(path.with_name(path.name + end) for end in COMPANIONS)):
        _take_away_group_and_others(file)


def _take_away_group_and_others(file: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # -wal and -shm come and go
        status = file.stat()
        if status.st_uid == os.getuid() and status.st_mode & 0o077:
            file.chmod(stat.S_IMODE(status.st_mode) & ~0o077)
