"""Private PostgreSQL and Redis instances that a test owns, and can freeze.

Freezing (SIGSTOP) a dependency makes it accept connections and never answer,
like a hung host or a network black hole. Only instances made here are ever
frozen, never the machine's shared ones.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.conftest import service_missing
from tests.servers import free_port

START_SECONDS = 30.0


class Frozen:
    """Processes that can be stopped and continued together."""

    def pids(self) -> list[int]:
        raise NotImplementedError

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


class PrivatePostgres(Frozen):
    """A cluster of its own (`initdb`) on a free port, run as the postgres user."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.bin = _postgres_bin()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _give_to_postgres(self.folder)
        self._as_postgres(
            "initdb",
            "-D",
            str(self.folder / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.folder / "data"),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "-t",
            "120",
            "start",
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._as_postgres(
                "pg_ctl",
                "-D",
                str(self.folder / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )

    def pids(self) -> list[int]:
        """The postmaster and every one of its children."""
        postmaster = int(
            (self.folder / "data" / "postmaster.pid").read_text().split()[0]
        )
        return [postmaster, *_children(postmaster)]

    def _as_postgres(self, tool: str, *args: str) -> None:
        command = [str(Path(self.bin) / tool), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{tool} failed: {done.stdout}{done.stderr}"


class PrivateRedis(Frozen):
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server is not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while not self.answers():
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not start")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid]


def _postgres_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        service_missing("PostgreSQL's initdb is not installed")
    return str(Path(found[-1]).parent)


def _give_to_postgres(folder: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        service_missing("there is no postgres user to run a private cluster")
        raise
    for path in (folder, *folder.parents):
        if path == Path("/"):
            break
        # Let the postgres user reach its folder through the test's temporary ones.
        os.chmod(path, os.stat(path).st_mode | 0o011)  # noqa: S103  # traverse only
    os.chown(folder, user.pw_uid, user.pw_gid)


def _children(parent: int) -> list[int]:
    children = []
    for status in glob.glob("/proc/[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":\t", 1)
                for line in Path(status).read_text().splitlines()
                if ":\t" in line
            )
            if int(fields.get("PPid", "0")) == parent:
                children.append(int(status.split("/")[2]))
    return children
