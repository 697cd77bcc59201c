"""Server processes on loopback, for the tests (tests/servers.py) and the benchmark
(bench/servers.py); the service itself never imports this.

A server starts in a process group of its own (uvicorn's workers share it) on a
free port, is ready once GET /healthz answers 200, and stops with a SIGTERM and
a bounded wait, then SIGKILL to whatever is left of its group.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


class NotHealthy(Exception):
    """The server exited, or /healthz did not answer 200 in time."""

    def __init__(self, *, exited: bool, seconds: float) -> None:
        super().__init__(
            "the server exited at start-up"
            if exited
            else f"the server was not healthy after {seconds}s"
        )
        self.exited = exited
        self.seconds = seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_group(
    command: list[str], *, cwd: Path, env: dict[str, str], log_path: Path
) -> "subprocess.Popen[bytes]":
    """Start `command` in a process group of its own, its output in `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603 (the caller's own command)
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers share its process group
        )


def wait_until_healthy(
    process: "subprocess.Popen[bytes]",
    port: int,
    seconds: float,
    *,
    ready: Callable[[], bool] | None = None,
) -> None:
    """Return once GET /healthz on `port` answers 200 (and `ready()` holds); raise
    NotHealthy when the process exits first or `seconds` pass."""
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotHealthy(exited=True, seconds=seconds)
        with (
            contextlib.suppress(OSError),  # refused, timed out, or not 2xx yet
            urllib.request.urlopen(url, timeout=1.0) as response,
        ):
            if response.status == 200 and (ready is None or ready()):
                return
        time.sleep(0.1)
    raise NotHealthy(exited=False, seconds=seconds)


def stop_group(
    process: "subprocess.Popen[Any]",
    seconds: float,
    *,
    terminate_group: bool = True,
) -> None:
    """SIGTERM, up to `seconds` to exit, then SIGKILL to whatever is left of the
    process group. The SIGTERM goes to the whole group, or with
    `terminate_group=False` to the leader only (uvicorn's supervisor then stops
    its workers itself)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if terminate_group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=seconds)
    # Workers of a supervisor that exited or was killed are in its group too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=seconds)


def kill_group(process: "subprocess.Popen[Any]", seconds: float | None = None) -> None:
    """SIGKILL the whole process group at once (a crash, no shutdown) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=seconds)
